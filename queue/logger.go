package queue

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Logger receives go-redis's own log lines (a failed dial in the pool, a
// cluster refresh that failed), which it otherwise prints as plain text on
// stderr whatever the daemon's log format.
type Logger interface {
	Printf(ctx context.Context, format string, v ...any)
}

// SetLogger sends go-redis's log lines to l, for the whole process.
func SetLogger(l Logger) { redis.SetLogger(l) }
