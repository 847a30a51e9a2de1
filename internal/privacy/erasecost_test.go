package privacy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// scanCounter counts the full scans of the once-keys (a SCAN from cursor 0
// matching the once prefix) the client sends.
type scanCounter struct {
	prefix string
	mu     sync.Mutex
	scans  int
}

func (c *scanCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *scanCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		return next(ctx, cmd)
	}
}

func (c *scanCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *scanCounter) count(cmd redis.Cmder) {
	args := cmd.Args()
	if len(args) < 4 || !strings.EqualFold(cmd.Name(), "scan") || fmt.Sprint(args[1]) != "0" {
		return
	}
	for i := 2; i+1 < len(args); i++ {
		if strings.EqualFold(fmt.Sprint(args[i]), "match") && fmt.Sprint(args[i+1]) == c.prefix+"*" {
			c.mu.Lock()
			c.scans++
			c.mu.Unlock()
			return
		}
	}
}

func (c *scanCounter) n() int { c.mu.Lock(); defer c.mu.Unlock(); return c.scans }

// watch counts what rdb sends. On a Redis Cluster a namespace's scans go
// to the master of its slot through that node's own client, past the
// cluster client's hooks, so the counter watches every node's client (and
// only those: a command through the cluster client reaches a node's too).
func (c *scanCounter) watch(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		rdb.AddHook(c)
		return
	}
	cc.OnNewNode(func(node *redis.Client) { node.AddHook(c) })
	if err := cc.ForEachShard(context.Background(), func(_ context.Context, node *redis.Client) error {
		node.AddHook(c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

var _ redis.Hook = (*scanCounter)(nil)

// Erasing a customer scans the once-keys once for all their complaints, not
// once per complaint: the scan reads every once-key of the namespace, so a
// customer with k complaints must not cost k scans.
func TestEraseScansTheOnceKeysOncePerCustomer(t *testing.T) {
	t.Run("redis", func(t *testing.T) { eraseScansOnceKeysOnce(t, newWorld(t, false)) })
	t.Run("cluster", func(t *testing.T) {
		rdb, keys := testredis.ClusterClient(t, testredis.StartCluster(t))
		eraseScansOnceKeysOnce(t, newWorldIn(t, newEnvOn(t, rdb, keys), false))
	})
}

func eraseScansOnceKeysOnce(t *testing.T, w *world) {
	ctx := context.Background()
	counter := &scanCounter{prefix: w.keys.OncePrefix()}
	counter.watch(t, w.rdb)
	res, err := w.service(t, nil).Erase(ctx, EraseRequest{Customer: "jan@voorbeeld.nl", Reason: "request", Actor: "anna", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Complaints) < 3 {
		t.Fatalf("the test needs a customer with several complaints; Jan has %v", res.Complaints)
	}
	if got := counter.n(); got != 1 {
		t.Errorf("erasing %d complaints scanned the once-keys %d times; want once", len(res.Complaints), got)
	}
	w.settle()
	if got := traces(w.dump(), janNeedles); len(got) > 0 {
		t.Errorf("after the erasure Jan is still in:\n%s", strings.Join(got, "\n"))
	}
	w.checkInvariants()
}

// The retention round scans the once-keys once per page of expired
// complaints, not once per complaint, and still erases each of them.
func TestRetentionScansTheOnceKeysOncePerBatch(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	t0 := e.clock.Now()
	var ids []string
	for i := range 4 {
		id := e.complaintOf(e.enqueue(router.Message{Channel: router.ChannelWebhook, SourceID: fmt.Sprintf("src-oud%d", i),
			Customer: router.Customer{Name: "Klant", Email: fmt.Sprintf("oud%d@klant.example", i)}, Body: "Klacht"})).ID
		c, err := e.store.Complaint(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.router.CloseWith(ctx, id, c.Owner, router.Closing{Resolution: "opgelost", Category: "delivery"}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	e.settle()
	const day = 24 * time.Hour
	e.clock.Set(t0.Add(800 * day))
	counter := &scanCounter{prefix: e.keys.OncePrefix()}
	counter.watch(t, e.rdb)
	s, err := New(Config{Store: e.store, Closer: e.router, Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.EraseExpired(ctx, 730*day, 10)
	if err != nil || n != len(ids) {
		t.Fatalf("erased %d of %d: %v", n, len(ids), err)
	}
	if got := counter.n(); got != 1 {
		t.Errorf("erasing %d expired complaints scanned the once-keys %d times; want once", n, got)
	}
	erased, err := e.store.WhichErased(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !erased[id] {
			t.Errorf("%s is not erased", id)
		}
	}
	e.settle()
	e.checkInvariants()
}
