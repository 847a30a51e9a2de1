package queue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// A block of complaint ids lives in process memory for as long as it lasts
// (hours at low traffic). When Redis loses the INCRBY that reserved it (a
// failover with asynchronous replication, a restore from an older
// snapshot), another process reserves the same ids again. What must hold:
// no new complaint overwrites another (a routed message would be on no
// complaint); the id taken makes the process plan again under an id of a
// fresh block.
func TestAReservedIDTakenMeanwhileNeverOverwritesAComplaint(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	roster, err := router.NewRoster([]router.Team{{ID: "support"}}, []router.Owner{{ID: "ann", Name: "Ann", Email: "ann@example.com", Teams: []string{"support"}, Capacity: 10, Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	newRouter := func(store *queue.Store) *router.Router {
		r, err := router.New(router.Config{Store: store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	storeA, storeB := e.store, queue.NewStore(e.rdb, e.keys, 0)
	a, b := newRouter(storeA), newRouter(storeB)
	msg := func(i int) router.Message {
		return router.Message{ID: fmt.Sprintf("M-%d", i), Channel: router.ChannelWebhook, SourceID: fmt.Sprint(i),
			Customer: router.Customer{Email: fmt.Sprintf("c%d@example.com", i)}, Body: fmt.Sprintf("body %d", i), ReceivedAt: time.Now()}
	}
	// Process A opens a complaint: it reserves C-1001..C-1020.
	outA1, err := a.Route(ctx, msg(1))
	if err != nil {
		t.Fatal(err)
	}
	// Failover: the new primary had not yet received the INCRBY (nor the
	// first complaint). Simulated by dropping both.
	if err := e.rdb.Del(ctx, e.keys.ComplaintSeq(), e.keys.Complaint(outA1.ComplaintID)).Err(); err != nil {
		t.Fatal(err)
	}
	// A keeps handing out its block; B reserves "its" block from the counter.
	outA2, err := a.Route(ctx, msg(2))
	if err != nil {
		t.Fatal(err)
	}
	var outB []router.Outcome
	for i := 3; i <= 4; i++ {
		o, err := b.Route(ctx, msg(i))
		if err != nil {
			t.Fatalf("route %d: %v", i, err)
		}
		outB = append(outB, o)
	}
	seen := map[string]string{outA2.ComplaintID: "M-2"}
	for i, o := range outB {
		if prev, dup := seen[o.ComplaintID]; dup {
			c, _ := storeA.Complaint(ctx, o.ComplaintID)
			t.Errorf("M-%d was put on %s, which already holds %s: both commits succeeded, the complaint now says customer %q; %s is on no complaint",
				i+3, o.ComplaintID, prev, c.CustomerKey, prev)
		}
		seen[o.ComplaintID] = fmt.Sprintf("M-%d", i+3)
	}
}

// The commit script (claim, pieces) and the acknowledgements pipelined with
// a blocking read work on the embedded Redis (miniredis and gopher-lua) as
// on Redis: every message routed once, every entry acknowledged and removed.
func TestEmbeddedCommitAndBatchedAcks(t *testing.T) {
	emb, err := queue.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	rdb, err := queue.Connect(emb.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	keys, err := queue.NewKeys("rv")
	if err != nil {
		t.Fatal(err)
	}
	store := queue.NewStore(rdb, keys, 0)
	ctx := context.Background()
	roster, err := router.NewRoster([]router.Team{{ID: "support"}}, []router.Owner{{ID: "ann", Name: "Ann", Email: "ann@example.com", Teams: []string{"support"}, Capacity: 1, Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(router.Config{Store: store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}})
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int32
	cctx, cancel := context.WithCancel(ctx)
	c := queue.NewConsumer(rdb, keys, queue.ConsumerConfig{Stream: keys.Inbound(), Group: queue.RouterGroup, Name: "e", Workers: 2, Block: 300 * time.Millisecond,
		Handler: func(hctx context.Context, d *queue.Delivery) error {
			var m router.Message
			if err := json.Unmarshal(d.Data, &m); err != nil {
				return err
			}
			_, err = r.Route(hctx, m)
			handled.Add(1)
			return err
		}})
	done := make(chan struct{})
	go func() { _ = c.Run(cctx); close(done) }()
	for i := range 5 {
		if _, _, err := store.Enqueue(ctx, webhookMsg(fmt.Sprint(i), fmt.Sprintf("c%d@example.com", i), "x")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for handled.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	n, _ := rdb.XLen(ctx, keys.Inbound()).Result()
	p, _ := rdb.XPending(ctx, keys.Inbound(), queue.RouterGroup).Result()
	if handled.Load() != 5 || n != 0 || (p != nil && p.Count != 0) {
		t.Errorf("handled %d, stream length %d, pending %+v", handled.Load(), n, p)
	}
	counts, _ := rdb.HGetAll(ctx, keys.OpenCounts()).Result()
	t.Logf("open counts %v", counts)
}

// An entry whose handler succeeded is acknowledged with its batch. Entries
// are read together, so with slow handlers (each within its ReclaimIdle/2
// timeout) an entry handled early could pass ReclaimIdle unacknowledged and
// be taken over by a maintenance loop (of any replica) though nothing
// crashed. What must hold: no entry is handled again after it was handled
// successfully.
func TestHandledEntriesAreAcknowledgedBeforeTheyCouldBeTakenOver(t *testing.T) {
	e := newEnv(t)
	for i := range 4 {
		e.enqueue(webhookMsg(fmt.Sprint(i), "", "x"))
	}
	const idle = 400 * time.Millisecond
	var mu sync.Mutex
	finished := map[string]time.Time{}
	var twice []string
	var calls int
	e.run(queue.ConsumerConfig{Stream: e.keys.Inbound(), Group: "g", Name: "c", ReclaimIdle: idle,
		Handler: func(hctx context.Context, d *queue.Delivery) error {
			mu.Lock()
			calls++
			slow := calls > 1
			if at, ok := finished[d.ID]; ok {
				twice = append(twice, fmt.Sprintf("%s (handled successfully %v earlier)", d.ID, time.Since(at).Round(time.Millisecond)))
			}
			mu.Unlock()
			if slow {
				time.Sleep(idle/2 - 20*time.Millisecond) // slow (Slack, SMTP), within the handler timeout
			}
			mu.Lock()
			finished[d.ID] = time.Now()
			mu.Unlock()
			return nil
		}})
	testkit.WaitFor(t, "every entry handled and acknowledged", func() bool {
		n, err := e.rdb.XLen(context.Background(), e.keys.Inbound()).Result()
		return err == nil && n == 0
	})
	time.Sleep(idle)
	mu.Lock()
	defer mu.Unlock()
	for _, s := range twice {
		t.Errorf("entry %s handled again after it had been handled successfully", s)
	}
}
