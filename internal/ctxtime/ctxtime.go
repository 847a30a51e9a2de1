// Package ctxtime waits for a while unless a context ends first: the backoffs,
// paces and pauses of every package wait this one way.
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx ends, whichever comes first; it returns
// ctx.Err() when ctx ended first and nil when d passed.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
