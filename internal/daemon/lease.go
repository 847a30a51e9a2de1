package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// leases is what runLeased needs of the store.
type leases interface {
	HoldLease(ctx context.Context, k, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, k, holder string) error
}

// runLeased runs work only while this replica holds the lease key, so that of
// several replicas exactly one does it at a time (polling one IMAP mailbox).
// The lease is renewed every ttl/3. When a renewal fails or the lease was
// lost, work is stopped before the lease can have expired, so a replica that
// cannot reach Redis gives way rather than overlapping with its successor;
// idempotent ingest covers what an overlap could still repeat. When work
// returns (or ctx ends) the lease is released for another replica at once.
func runLeased(ctx context.Context, store leases, key, holder string, ttl time.Duration, log *slog.Logger, work func(ctx context.Context)) {
	every := ttl / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	waiting := false
	for {
		held, err := store.HoldLease(ctx, key, holder, ttl)
		switch {
		case held:
			log.Info("lease taken: this replica does the work", "lease", key, "holder", holder)
			holdWhileWorking(ctx, store, key, holder, ttl, log, work)
			release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := store.ReleaseLease(release, key, holder); err != nil {
				log.Warn("could not release the lease; it runs out by itself", "lease", key, "err", err)
			}
			cancel()
			waiting = false
		case ctx.Err() != nil:
			// Shutting down: a failed attempt says nothing about who holds
			// the lease.
			return
		case err != nil:
			log.Warn("cannot take the lease; retrying", "lease", key, "err", err)
		case !waiting:
			log.Info("another replica holds the lease; standing by", "lease", key)
			waiting = true
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// holdWhileWorking runs work and renews the lease until either ends.
func holdWhileWorking(ctx context.Context, store leases, key, holder string, ttl time.Duration, log *slog.Logger, work func(ctx context.Context)) {
	workCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() { defer close(done); work(workCtx) })
	// Stop the work, then wait for it: the lease is released only after.
	defer func() { stop(); wg.Wait() }()
	renewed := time.Now()
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-workCtx.Done():
			return
		case <-tick.C:
		}
		held, err := store.HoldLease(ctx, key, holder, ttl)
		switch {
		case err == nil && held:
			renewed = time.Now()
		case err == nil:
			log.Warn("lease lost to another replica; stopping", "lease", key)
			return
		case time.Since(renewed) > ttl*2/3:
			log.Warn("cannot renew the lease in time; stopping before it can run out", "lease", key, "err", err)
			return
		default:
			log.Warn("renewing the lease failed; retrying", "lease", key, "err", err)
		}
	}
}
