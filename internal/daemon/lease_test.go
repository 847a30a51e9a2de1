package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
)

// workers counts who is doing the leased work, and the most at any moment.
type workers struct {
	mu      sync.Mutex
	active  map[string]bool
	maxSeen int
}

func (w *workers) run(name string) func(context.Context) {
	return func(ctx context.Context) {
		w.mu.Lock()
		w.active[name] = true
		w.maxSeen = max(w.maxSeen, len(w.active))
		w.mu.Unlock()
		<-ctx.Done()
		w.mu.Lock()
		delete(w.active, name)
		w.mu.Unlock()
	}
}

func (w *workers) who() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for n := range w.active {
		out = append(out, n)
	}
	return out
}

// flaky is a lease store that can be cut off from Redis.
type flaky struct {
	leases
	down atomic.Bool
}

func (f *flaky) HoldLease(ctx context.Context, k, holder string, ttl time.Duration) (bool, error) {
	if f.down.Load() {
		return false, errors.New("dial tcp: connection refused")
	}
	return f.leases.HoldLease(ctx, k, holder, ttl)
}

func (f *flaky) ReleaseLease(ctx context.Context, k, holder string) error {
	if f.down.Load() {
		return errors.New("dial tcp: connection refused")
	}
	return f.leases.ReleaseLease(ctx, k, holder)
}

func TestLeasedWorkRunsOnExactlyOneReplicaAndIsTakenOver(t *testing.T) {
	rdb, keys := testredis.Client(t)
	state := queue.NewStore(rdb, keys, 0).State("email")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const ttl = 600 * time.Millisecond
	w := &workers{active: map[string]bool{}}

	start := func(name string, store leases) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); runLeased(ctx, store, "lease:mailbox:support", name, ttl, log, w.run(name)) }()
		return func() { cancel(); <-done }
	}

	// Two replicas: exactly one reads the mailbox.
	cutOff := &flaky{leases: state}
	stopA := start("replica-a", cutOff)
	testkit.WaitFor(t, "replica-a to hold the lease", func() bool { return len(w.who()) == 1 })
	stopB := start("replica-b", state)
	defer stopB()

	// A replica cut off from Redis stops its work before its lease can run
	// out, and the other takes over once it has.
	cutOff.down.Store(true)
	testkit.WaitFor(t, "replica-b to take over from the cut-off replica", func() bool {
		who := w.who()
		return len(who) == 1 && who[0] == "replica-b"
	})
	stopA()

	// A replica that died without releasing: its lease runs out, then the
	// waiting replica takes over.
	stopB()
	if ok, err := state.HoldLease(context.Background(), "lease:mailbox:support", "dead-replica", ttl); err != nil || !ok {
		t.Fatalf("dead replica's lease: %v %v", ok, err)
	}
	stopC := start("replica-c", state)
	defer stopC()
	testkit.WaitFor(t, "replica-c to take over after the dead replica's lease ran out", func() bool {
		who := w.who()
		return len(who) == 1 && who[0] == "replica-c"
	})

	// A clean stop releases at once for the next replica.
	stopD := start("replica-d", state)
	defer stopD()
	stopC()
	testkit.WaitFor(t, "replica-d to take over after a clean stop", func() bool {
		who := w.who()
		return len(who) == 1 && who[0] == "replica-d"
	})

	if w.maxSeen != 1 {
		t.Errorf("at one moment %d replicas read the same mailbox; the lease must keep it to one", w.maxSeen)
	}
}
