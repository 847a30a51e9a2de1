package queue_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

func TestEnqueueIsIdempotentPerChannelAndSource(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first, dup, err := e.store.Enqueue(ctx, webhookMsg("order-form-17", "a@example.com", "broken"))
	if err != nil || dup {
		t.Fatalf("first enqueue: %v dup=%v", err, dup)
	}
	again, dup, err := e.store.Enqueue(ctx, webhookMsg("order-form-17", "a@example.com", "broken, sent twice"))
	if err != nil || !dup || again != first {
		t.Fatalf("second enqueue: id %s dup=%v err=%v; want duplicate of %s", again, dup, err, first)
	}
	other := webhookMsg("order-form-17", "a@example.com", "same source id, other channel")
	other.Channel = router.ChannelEmail
	if _, dup, _ := e.store.Enqueue(ctx, other); dup {
		t.Fatal("the same source id on another channel must not count as a duplicate")
	}
	long := webhookMsg(strings.Repeat("x", 5000), "", "a sender with very long ids")
	e.enqueue(long)
	if _, dup, _ := e.store.Enqueue(ctx, long); !dup {
		t.Fatal("long source ids must deduplicate too")
	}
	// A literal id spelling the hashed form of the long one is another
	// message, not its duplicate.
	sum := sha256.Sum256([]byte(long.SourceID))
	lookalike := webhookMsg("sha256:"+hex.EncodeToString(sum[:]), "", "an id that looks hashed")
	if _, dup, _ := e.store.Enqueue(ctx, lookalike); dup {
		t.Fatal("a literal sha256:<hex> source id was taken for the duplicate of a long id")
	}
	// What must hold: no inbound message is duplicated or lost.
	if n := e.xlen(e.keys.Inbound()); n != 4 {
		t.Fatalf("inbound stream holds %d entries, want 4", n)
	}
}

func TestEnqueueFailsWhenRedisIsDown(t *testing.T) {
	rdb, err := queue.Connect("redis://127.0.0.1:1/0")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := queue.NewKeys("down")
	s := queue.NewStore(rdb, keys, 0)
	if _, _, err := s.Enqueue(context.Background(), webhookMsg("x", "", "y")); err == nil {
		t.Fatal("enqueue must report an error when Redis is unreachable, never pretend success")
	}
}

func TestHandledEntriesAreAcknowledgedAndDeleted(t *testing.T) {
	e := newEnv(t)
	var handled atomic.Int32
	e.run(queue.ConsumerConfig{Stream: e.keys.Inbound(), Group: "g", Name: "c", Workers: 2,
		Handler: func(ctx context.Context, d *queue.Delivery) error { handled.Add(1); return nil }})
	for i := range 20 {
		e.enqueue(webhookMsg(fmt.Sprint(i), "", "x"))
	}
	testkit.WaitFor(t, "20 entries handled and deleted", func() bool { return handled.Load() == 20 && e.xlen(e.keys.Inbound()) == 0 })
	pending, _ := e.rdb.XPending(context.Background(), e.keys.Inbound(), "g").Result()
	if pending.Count != 0 {
		t.Fatalf("%d entries still pending", pending.Count)
	}
}

func TestPoisonMessageIsDeadLetteredAfterMaxAttemptsWhileOthersFlow(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	attempts := map[string]int{}
	var deadLettered atomic.Int32
	e.run(queue.ConsumerConfig{
		Stream: e.keys.Inbound(), Group: "g", Name: "c", MaxAttempts: 3,
		Backoff: func(int) time.Duration { return 20 * time.Millisecond },
		Handler: func(ctx context.Context, d *queue.Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			if strings.Contains(string(d.Data), "poison") {
				attempts["poison"]++
				if d.Attempt != attempts["poison"]-1 {
					t.Errorf("delivery says attempt %d, handler saw %d before", d.Attempt, attempts["poison"]-1)
				}
				// The handler knows its last attempt: it must not leave a
				// passing failure to a retry that never comes.
				if last := router.LastAttempt(ctx); last != (attempts["poison"] == 3) {
					t.Errorf("attempt %d of 3 marked as the last: %v", attempts["poison"], last)
				}
				return errors.New("cannot handle this one")
			}
			attempts["good"]++
			return nil
		},
		OnDeadLetter: func(ctx context.Context, d *queue.Delivery, cause error) { deadLettered.Add(1) },
	})
	e.enqueue(webhookMsg("p", "", "poison"))
	for i := range 10 {
		e.enqueue(webhookMsg(fmt.Sprint(i), "", "fine"))
	}
	testkit.WaitFor(t, "the poison message in the dead letters", func() bool { return e.xlen(e.keys.DeadLetters()) == 1 })
	testkit.WaitFor(t, "good messages handled", func() bool { mu.Lock(); defer mu.Unlock(); return attempts["good"] == 10 })
	dl, err := e.store.DeadLetters(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if dl[0].Attempts != 3 || !strings.Contains(dl[0].Error, "cannot handle") || !strings.Contains(dl[0].Data, "poison") || dl[0].Stream != e.keys.Inbound() {
		t.Fatalf("dead letter = %+v, want 3 attempts, the error and the original data", dl[0])
	}
	mu.Lock()
	if attempts["poison"] != 3 {
		t.Errorf("poison handled %d times, want exactly MaxAttempts=3", attempts["poison"])
	}
	mu.Unlock()
	if deadLettered.Load() != 1 {
		t.Errorf("OnDeadLetter called %d times, want 1", deadLettered.Load())
	}
	// Nothing lost: the poison entry is gone from the stream only because it is in the dead letters.
	if e.xlen(e.keys.Inbound()) != 0 {
		t.Errorf("inbound still holds entries")
	}
}

func TestPermanentErrorIsDeadLetteredAtOnce(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	e.run(queue.ConsumerConfig{Stream: e.keys.Inbound(), Group: "g", Name: "c", MaxAttempts: 5,
		Handler: func(ctx context.Context, d *queue.Delivery) error {
			calls.Add(1)
			return router.Permanent(errors.New("malformed"))
		}})
	e.enqueue(webhookMsg("p", "", "x"))
	testkit.WaitFor(t, "dead letter", func() bool { return e.xlen(e.keys.DeadLetters()) == 1 })
	if calls.Load() != 1 {
		t.Fatalf("handler called %d times for a permanent error, want 1", calls.Load())
	}
}

func TestRetryAfterDelaysTheRetry(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	e.run(queue.ConsumerConfig{Stream: e.keys.Outbox(), Group: "g", Name: "c",
		Backoff: func(int) time.Duration { return time.Millisecond },
		Handler: func(ctx context.Context, d *queue.Delivery) error {
			if calls.Add(1) == 1 {
				return router.RetryAfter(errors.New("rate limited"), time.Hour)
			}
			return nil
		}})
	before := time.Now()
	e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: e.keys.Outbox(), Values: []string{"data", "{}", "attempt", "0"}})
	delayed := e.keys.Delayed(e.keys.Outbox())
	testkit.WaitFor(t, "the entry to wait for its retry", func() bool { return e.rdb.ZCard(context.Background(), delayed).Val() == 1 })
	z, _ := e.rdb.ZRangeWithScores(context.Background(), delayed, 0, 0).Result()
	if due := time.UnixMilli(int64(z[0].Score)); due.Before(before.Add(59 * time.Minute)) {
		t.Fatalf("retry due at %s, want about an hour after %s (the server's Retry-After)", due, before)
	}
	if calls.Load() != 1 || e.xlen(e.keys.Outbox()) != 0 {
		t.Fatalf("the entry must wait in the delayed set, not be retried at once")
	}
}

func TestDeadLetterCanBeRetried(t *testing.T) {
	e := newEnv(t)
	var fail atomic.Bool
	fail.Store(true)
	var done atomic.Int32
	e.run(queue.ConsumerConfig{Stream: e.keys.Inbound(), Group: "g", Name: "c", MaxAttempts: 1,
		Handler: func(ctx context.Context, d *queue.Delivery) error {
			if fail.Load() {
				return errors.New("downstream broken")
			}
			done.Add(1)
			return nil
		}})
	e.enqueue(webhookMsg("p", "", "x"))
	testkit.WaitFor(t, "dead letter", func() bool { return e.xlen(e.keys.DeadLetters()) == 1 })
	dl, _ := e.store.DeadLetters(context.Background(), 1)
	fail.Store(false)
	if err := e.store.RetryDeadLetter(context.Background(), dl[0].ID); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "retried entry handled", func() bool { return done.Load() == 1 })
	if e.xlen(e.keys.DeadLetters()) != 0 {
		t.Fatal("a retried dead letter must leave the dead letters")
	}
	if err := e.store.RetryDeadLetter(context.Background(), dl[0].ID); !errors.Is(err, queue.ErrNoDeadLetter) {
		t.Fatalf("second retry: %v, want ErrNoDeadLetter (retry happens once)", err)
	}
}

func TestCrashedConsumersEntriesAreTakenOverAndRoutedOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.testRouter(3)
	for i := range 30 {
		e.enqueue(webhookMsg(fmt.Sprint(i), fmt.Sprintf("c%d@example.com", i%7), "my order is late"))
	}
	// A consumer reads everything and dies without acknowledging.
	if err := e.rdb.XGroupCreateMkStream(ctx, e.keys.Inbound(), queue.RouterGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	read, err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: queue.RouterGroup, Consumer: "crashed", Streams: []string{e.keys.Inbound(), ">"}, Count: 100}).Result()
	if err != nil || len(read[0].Messages) != 30 {
		t.Fatalf("crashed consumer read %v, %v", read, err)
	}
	var routed atomic.Int32
	e.run(queue.ConsumerConfig{
		Stream: e.keys.Inbound(), Group: queue.RouterGroup, Name: "survivor", ReclaimIdle: 300 * time.Millisecond,
		Handler: routeHandler(r, &routed),
	})
	testkit.WaitFor(t, "all 30 taken over and routed", func() bool { return e.xlen(e.keys.Inbound()) == 0 })
	rep, err := e.store.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// What must hold: every message is on exactly one complaint, none twice.
	if rep.Messages != 30 || len(rep.Problems) > 0 {
		t.Fatalf("audit: %d messages on complaints (want 30), problems %v", rep.Messages, rep.Problems)
	}
}

func TestConsumerRecreatesItsGroupAfterRedisLostData(t *testing.T) {
	e := newEnv(t)
	var handled atomic.Int32
	e.run(queue.ConsumerConfig{Stream: e.keys.Inbound(), Group: "g", Name: "c", Block: 50 * time.Millisecond,
		Handler: func(ctx context.Context, d *queue.Delivery) error { handled.Add(1); return nil }})
	e.enqueue(webhookMsg("1", "", "x"))
	testkit.WaitFor(t, "first handled", func() bool { return handled.Load() == 1 })
	// Redis restarted without persistence: the stream and its group are gone.
	e.rdb.Del(context.Background(), e.keys.Inbound())
	time.Sleep(100 * time.Millisecond)
	e.enqueue(webhookMsg("2", "", "x"))
	testkit.WaitFor(t, "message after data loss handled", func() bool { return handled.Load() == 2 })
}

func TestShutdownFinishesTheEntryInHand(t *testing.T) {
	e := newEnv(t)
	started := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	c := queue.NewConsumer(e.rdb, e.keys, queue.ConsumerConfig{Stream: e.keys.Inbound(), Group: "g", Name: "c",
		Handler: func(hctx context.Context, d *queue.Delivery) error {
			close(started)
			<-release
			if hctx.Err() != nil {
				return hctx.Err()
			}
			finished.Store(true)
			return nil
		}})
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	e.enqueue(webhookMsg("1", "", "x"))
	<-started
	cancel() // SIGTERM while the handler is busy
	close(release)
	<-done
	if !finished.Load() {
		t.Fatal("the handler's context was cancelled by shutdown; in-flight work must finish")
	}
	if n := e.xlen(e.keys.Inbound()); n != 0 {
		t.Fatalf("the finished entry was not acknowledged (%d left)", n)
	}
}

// routeHandler decodes inbound entries and routes them, counting successes.
func routeHandler(r *router.Router, routed *atomic.Int32) queue.Handler {
	return func(ctx context.Context, d *queue.Delivery) error {
		msg, err := decodeMessage(d.Data)
		if err != nil {
			return router.Permanent(err)
		}
		if _, err := r.Route(ctx, msg); err != nil {
			return err
		}
		routed.Add(1)
		return nil
	}
}

func TestConcurrentRoutersKeepEveryInvariant(t *testing.T) {
	if testing.Short() {
		t.Skip("concurrency soak")
	}
	e := newEnv(t)
	ctx := context.Background()
	const messages, customers, routers = 2000, 300, 4
	// Customers write about a few threads each; follow-ups to one thread race
	// each other across the routers.
	rng := rand.New(rand.NewPCG(1, 2))
	threadsOf := map[int]int{}
	for i := range messages {
		cust := rng.IntN(customers)
		m := webhookMsg(fmt.Sprintf("m%d", i), fmt.Sprintf("customer%d@example.com", cust), "Where is my order?")
		if rng.IntN(4) > 0 { // most messages continue one of the customer's threads
			if threadsOf[cust] == 0 || rng.IntN(3) == 0 {
				threadsOf[cust]++
			}
			m.ThreadKeys = []string{fmt.Sprintf("webhook:c%d-t%d", cust, rng.IntN(threadsOf[cust])+1)}
		}
		e.enqueue(m)
	}
	var routed atomic.Int32
	for i := range routers {
		r := e.testRouter(8)
		e.run(queue.ConsumerConfig{Stream: e.keys.Inbound(), Group: queue.RouterGroup, Name: fmt.Sprintf("router%d", i), Workers: 2, Handler: routeHandler(r, &routed)})
	}
	testkit.WaitFor(t, "all messages routed", func() bool { return e.xlen(e.keys.Inbound()) == 0 })
	rep, err := e.store.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// What must hold: every message on exactly one complaint; every complaint
	// has exactly one owner whose load counts it; one complaint per thread.
	if rep.Messages != messages {
		t.Errorf("%d messages on complaints, want %d", rep.Messages, messages)
	}
	for _, p := range rep.Problems {
		t.Error(p)
	}
	threads, _ := e.rdb.HGetAll(ctx, e.keys.Threads()).Result()
	perComplaint := map[string]int{}
	for _, c := range threads {
		perComplaint[c]++
	}
	for c, n := range perComplaint {
		if n != 1 {
			t.Errorf("%s holds %d thread keys; each thread must have its own complaint", c, n)
		}
	}
	if routed.Load() != messages {
		t.Errorf("routed %d, want %d", routed.Load(), messages)
	}
	if e.xlen(e.keys.DeadLetters()) != 0 {
		t.Errorf("dead letters: %d", e.xlen(e.keys.DeadLetters()))
	}
}

// A consumer that stalls (SIGSTOP, a long pause) while it holds a read batch
// has those entries taken over by another; when it wakes up it must not handle
// again what the other already handled. Found by the fault suite's SIGSTOP
// scenario: each such entry notified staff a second time.
func TestStalledConsumerDoesNotRedoItsTakenOverBatch(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.enqueue(webhookMsg(fmt.Sprint(i), "", "x"))
	}
	var mu sync.Mutex
	handled := map[string][]string{} // entry → consumers that handled it
	stalled, wake := make(chan struct{}), make(chan struct{})
	var once sync.Once
	record := func(who string) queue.Handler {
		return func(ctx context.Context, d *queue.Delivery) error {
			mu.Lock()
			handled[d.ID] = append(handled[d.ID], who)
			mu.Unlock()
			if who == "sleepy" {
				once.Do(func() { close(stalled); <-wake })
			}
			return nil
		}
	}
	count := func(who string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, hs := range handled {
			for _, h := range hs {
				if h == who {
					n++
				}
			}
		}
		return n
	}
	idle := 400 * time.Millisecond
	e.run(queue.ConsumerConfig{Stream: e.keys.Inbound(), Group: "g", Name: "sleepy", ReclaimIdle: idle, Handler: record("sleepy")})
	<-stalled // sleepy holds all five, handling the first
	hctx, stopHelper := context.WithCancel(context.Background())
	helperDone := make(chan struct{})
	go func() {
		_ = queue.NewConsumer(e.rdb, e.keys, queue.ConsumerConfig{Stream: e.keys.Inbound(), Group: "g", Name: "helper",
			ReclaimIdle: idle, Block: 100 * time.Millisecond, Handler: record("helper")}).Run(hctx)
		close(helperDone)
	}()
	testkit.WaitFor(t, "the helper to take over all five", func() bool { return count("helper") == 5 })
	stopHelper()
	<-helperDone
	// A marker only sleepy can read, after it is done with its old batch.
	e.enqueue(webhookMsg("marker", "", "x"))
	close(wake)
	testkit.WaitFor(t, "sleepy to read on past its old batch", func() bool { return e.xlen(e.keys.Inbound()) == 0 && count("sleepy") >= 2 })
	mu.Lock()
	defer mu.Unlock()
	twice := 0
	for id, hs := range handled {
		if len(hs) > 1 {
			twice++
			t.Logf("entry %s handled by %v", id, hs)
		}
	}
	// What must hold: only the entry sleepy was in the middle of is handled
	// twice (unavoidable); the four it had not started are handled once.
	if twice != 1 {
		t.Fatalf("%d entries handled twice; only the one in hand may be", twice)
	}
}

// When Redis fails while a batch is being handled, the consumer stops the
// batch at the first entry it cannot acknowledge, when that entry's work
// must not be done twice (AckNow: a mail to a customer): handling the rest
// would do work that is done again when they are redelivered.
func TestBatchStopsAtTheFirstEntryItCannotAcknowledge(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.enqueue(webhookMsg(fmt.Sprint(i), "", "x"))
	}
	ctx := context.Background()
	var handled atomic.Int32
	var logs testkit.LockedBuffer
	e.run(queue.ConsumerConfig{Stream: e.keys.Inbound(), Group: "g", Name: "c", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Handler: func(hctx context.Context, d *queue.Delivery) error {
			d.AckNow = true
			if handled.Add(1) == 1 {
				// Redis turns against us while the first entry is handled:
				// the stream is replaced, so its acknowledgement fails.
				if err := e.rdb.Rename(ctx, e.keys.Inbound(), e.keys.Inbound()+":away").Err(); err != nil {
					t.Error(err)
				}
				e.rdb.Set(ctx, e.keys.Inbound(), "not a stream", 0)
			}
			return nil
		}})
	testkit.WaitFor(t, "the consumer to hit the failure on its next read", func() bool { return strings.Contains(logs.String(), "queue read failed") })
	if n := handled.Load(); n != 1 {
		t.Fatalf("%d entries handled although the first could not be acknowledged; want 1", n)
	}
}

// Entries whose handlers may run again safely are acknowledged a batch at a
// time, with the next read. When that acknowledgement fails, what must
// hold: nothing more is handled until it succeeds, then every entry is
// acknowledged; none is handled twice and none is left pending.
func TestBatchAcknowledgementsThatFailAreRetriedNotRedone(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.enqueue(webhookMsg(fmt.Sprint(i), "", "x"))
	}
	ctx := context.Background()
	var mu sync.Mutex
	handled := map[string]int{}
	var logs testkit.LockedBuffer
	away := e.keys.Inbound() + ":away"
	e.run(queue.ConsumerConfig{Stream: e.keys.Inbound(), Group: "g", Name: "c", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Handler: func(hctx context.Context, d *queue.Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			if handled[d.ID]++; len(handled) == 1 && handled[d.ID] == 1 {
				// Redis turns against us while the batch is handled: the
				// stream is replaced, so its acknowledgement fails.
				if err := e.rdb.Rename(ctx, e.keys.Inbound(), away).Err(); err != nil {
					t.Error(err)
				}
				e.rdb.Set(ctx, e.keys.Inbound(), "not a stream", 0)
			}
			return nil
		}})
	testkit.WaitFor(t, "the acknowledgement to fail", func() bool { return strings.Contains(logs.String(), "queue read failed") })
	mu.Lock()
	if len(handled) != 5 {
		t.Errorf("%d entries handled before the acknowledgement; want the batch of 5", len(handled))
	}
	mu.Unlock()
	// Redis is back.
	if err := e.rdb.Del(ctx, e.keys.Inbound()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.Rename(ctx, away, e.keys.Inbound()).Err(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "every entry acknowledged and removed", func() bool {
		n, err := e.rdb.XLen(ctx, e.keys.Inbound()).Result()
		p, perr := e.rdb.XPending(ctx, e.keys.Inbound(), "g").Result()
		return err == nil && perr == nil && n == 0 && p.Count == 0
	})
	mu.Lock()
	defer mu.Unlock()
	for id, n := range handled {
		if n != 1 {
			t.Errorf("entry %s handled %d times, want once", id, n)
		}
	}
}

// Listing a few open complaints out of many returns exactly the newest, by
// creation time, whatever the size of the open index. (With 100k open
// complaints the list used to load every one of them to return 50; the
// benchmark report found it.)
func TestListingTheNewestOpenComplaintsOutOfMany(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	roster, err := router.NewRoster([]router.Team{{ID: "support"}}, []router.Owner{
		{ID: "ann", Name: "Ann", Email: "ann@example.com", Teams: []string{"support"}, Capacity: 1000, Active: true},
		{ID: "bob", Name: "Bob", Email: "bob@example.com", Teams: []string{"support"}, Capacity: 1000, Active: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	r, err := router.New(router.Config{Store: e.store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"},
		Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var opened []router.Outcome
	for i := range 40 {
		now = now.Add(time.Minute)
		msg := webhookMsg(fmt.Sprint(i), fmt.Sprintf("c%d@example.com", i), "my order is late")
		msg.ID = queue.NewMessageID(now)
		out, err := r.Route(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		opened = append(opened, out)
	}
	// The newest is closed: it must not count toward the five.
	if _, err := r.Close(ctx, opened[39].ComplaintID, "ann", "solved", ""); err != nil {
		t.Fatal(err)
	}
	got, err := r.Complaints(ctx, router.Filter{Status: router.StatusOpen, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range got {
		ids = append(ids, c.ID)
	}
	want := []string{opened[38].ComplaintID, opened[37].ComplaintID, opened[36].ComplaintID, opened[35].ComplaintID, opened[34].ComplaintID}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("newest 5 open = %v, want %v", ids, want)
	}
	owner := opened[30].Owner
	mine, err := r.Complaints(ctx, router.Filter{Status: router.StatusOpen, Owner: owner, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	var wantMine, gotMine []string
	for i := 38; i >= 0 && len(wantMine) < 3; i-- {
		if opened[i].Owner == owner {
			wantMine = append(wantMine, opened[i].ComplaintID)
		}
	}
	for _, c := range mine {
		gotMine = append(gotMine, c.ID)
	}
	if fmt.Sprint(gotMine) != fmt.Sprint(wantMine) {
		t.Fatalf("%s's newest 3 open = %v, want %v", owner, gotMine, wantMine)
	}
}
