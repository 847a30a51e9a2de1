package slack

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/ctxtime"
	"github.com/forgetmenot/forgetmenot/router"
)

// pacer spaces the messages posted to one Slack channel (Slack allows about
// one per second per channel, with short bursts). It paces this process;
// replicas that together exceed the rate get 429s, whose Retry-After the
// outbox honours.
type pacer struct {
	every time.Duration
	mu    sync.Mutex
	next  map[string]time.Time
}

func newPacer(every time.Duration) *pacer {
	return &pacer{every: every, next: map[string]time.Time{}}
}

var errPaced = errors.New("slack: pacing posts to this channel")

// wait blocks until the channel may take another message and reserves the
// slot. When the caller's deadline comes first it returns a RetryAfter error
// without reserving, so the outbox tries again later.
func (p *pacer) wait(ctx context.Context, channel string) error {
	p.mu.Lock()
	now := time.Now()
	at := p.next[channel]
	if at.Before(now) {
		at = now
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(at) {
		p.mu.Unlock()
		return router.RetryAfter(errPaced, at.Sub(now))
	}
	p.next[channel] = at.Add(p.every)
	// Forget channels that have been quiet, so the map does not grow.
	if len(p.next) > 1024 {
		for ch, t := range p.next {
			if t.Before(now) {
				delete(p.next, ch)
			}
		}
	}
	p.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		return ctxtime.Sleep(ctx, d)
	}
	return nil
}
