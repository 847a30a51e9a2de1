package queue

import (
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Connect builds a client from a redis:// or rediss:// URL (password and
// database number in the URL). It does not dial: the daemon starts even while
// Redis is away, reports not-ready, and catches up when it returns.
func Connect(url string) (redis.UniversalClient, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.DialTimeout = 3 * time.Second
	opt.ReadTimeout = 5 * time.Second
	opt.WriteTimeout = 5 * time.Second
	opt.MaxRetries = 1
	return redis.NewClient(opt), nil
}

// Embedded is an in-process, in-memory Redis (miniredis) so forgetmenot can be
// tried with nothing installed. Its data is gone when the process ends.
type Embedded struct {
	srv *miniredis.Miniredis
}

// StartEmbedded starts the in-memory Redis on a loopback port.
func StartEmbedded() (*Embedded, error) {
	srv := miniredis.NewMiniRedis()
	if err := srv.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("starting embedded redis: %w", err)
	}
	return &Embedded{srv: srv}, nil
}

// URL is the address to connect to.
func (e *Embedded) URL() string { return "redis://" + e.srv.Addr() }

// Close stops the server; its data is lost.
func (e *Embedded) Close() { e.srv.Close() }
