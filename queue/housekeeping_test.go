package queue_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/redis/go-redis/v9"
)

func consumerNames(t *testing.T, rdb redis.UniversalClient, stream, group string) map[string]int64 {
	t.Helper()
	cs, err := rdb.XInfoConsumers(context.Background(), stream, group).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, c := range cs {
		out[c.Name] = c.Pending
	}
	return out
}

// TestGoneConsumersAreRemovedButNeverWithPendingWork: consumers that replicas
// left behind are removed once idle with nothing pending; one that still
// holds an entry stays until that entry was taken over and handled, so no
// pending work is ever lost.
func TestGoneConsumersAreRemovedButNeverWithPendingWork(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	stream, group := e.keys.Inbound(), queue.RouterGroup
	// A fresh start: no stream, then no group yet. Nothing to remove, and
	// no error (it was logged as a failed maintenance at every first start).
	fresh := queue.NewConsumer(e.rdb, e.keys, queue.ConsumerConfig{Stream: stream, Group: group, Name: "fresh", ExpireIdle: time.Second,
		Handler: func(context.Context, *queue.Delivery) error { return nil }})
	if removed, err := fresh.RemoveGoneConsumers(ctx); err != nil || len(removed) != 0 {
		t.Fatalf("on a fresh Redis: removed %v, %v; want nothing and no error", removed, err)
	}
	e.enqueue(webhookMsg("held-by-a-dead-replica", "a@example.com", "my parcel is lost"))
	if err := e.rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	// A replica read the entry and died; another died with nothing in hand.
	if _, err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "dead-with-work", Streams: []string{stream, ">"}, Count: 10}).Result(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.XGroupCreateConsumer(ctx, stream, group, "dead-idle").Err(); err != nil {
		t.Fatal(err)
	}
	const expire = 400 * time.Millisecond
	time.Sleep(expire + 100*time.Millisecond)

	// Only the idle one with nothing pending goes; the one holding work stays.
	c := queue.NewConsumer(e.rdb, e.keys, queue.ConsumerConfig{Stream: stream, Group: group, Name: "probe", ExpireIdle: expire,
		Handler: func(context.Context, *queue.Delivery) error { return nil }})
	removed, err := c.RemoveGoneConsumers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"dead-idle"}) {
		t.Fatalf("removed %v, want only dead-idle", removed)
	}
	if got := consumerNames(t, e.rdb, stream, group); got["dead-with-work"] != 1 {
		t.Fatalf("consumers %v: the one holding an entry must stay with it pending", got)
	}

	// A live replica takes the entry over and handles it once; then the dead
	// consumer, now empty, is removed by the replica's own housekeeping,
	// while the live replica's consumers stay.
	var handled atomic.Int32
	var mu sync.Mutex
	var told []string
	e.run(queue.ConsumerConfig{Stream: stream, Group: group, Name: "live", Workers: 2,
		ReclaimIdle: 300 * time.Millisecond, ExpireIdle: expire,
		Handler:           func(context.Context, *queue.Delivery) error { handled.Add(1); return nil },
		OnConsumerRemoved: func(name string) { mu.Lock(); told = append(told, name); mu.Unlock() },
	})
	testkit.WaitFor(t, "the dead replica's entry handled and its consumer removed", func() bool {
		_, still := consumerNames(t, e.rdb, stream, group)["dead-with-work"]
		return handled.Load() == 1 && !still
	})
	// Another live replica on the quiet stream: on Redis before 7.2 its
	// consumer looks idle, but its replica keeps marking it as seen.
	e.run(queue.ConsumerConfig{Stream: stream, Group: group, Name: "other", ExpireIdle: expire,
		Handler: func(context.Context, *queue.Delivery) error { handled.Add(1); return nil }})
	// Several rounds of housekeeping later, the live consumers are all there.
	time.Sleep(4 * expire)
	got := consumerNames(t, e.rdb, stream, group)
	for _, live := range []string{"live-0", "live-1", "other-0"} {
		if _, ok := got[live]; !ok {
			t.Fatalf("consumers %v: live consumer %s was removed", got, live)
		}
	}
	if handled.Load() != 1 {
		t.Fatalf("handled %d times, want exactly once", handled.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(told, "dead-with-work") {
		t.Fatalf("removals reported %v", told)
	}
}

// TestGoneConsumerHousekeepingRunsOnTheEmbeddedRedis: the try-it-out mode
// must not log errors from it.
func TestGoneConsumerHousekeepingRunsOnTheEmbeddedRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	keys, _ := queue.NewKeys("emb")
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, keys.Inbound(), "g", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XGroupCreateConsumer(ctx, keys.Inbound(), "g", "someone").Err(); err != nil {
		t.Fatal(err)
	}
	c := queue.NewConsumer(rdb, keys, queue.ConsumerConfig{Stream: keys.Inbound(), Group: "g", Name: "x", ExpireIdle: time.Millisecond,
		Handler: func(context.Context, *queue.Delivery) error { return nil }})
	if _, err := c.RemoveGoneConsumers(ctx); err != nil {
		t.Fatal(err)
	}
}
