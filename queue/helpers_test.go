package queue_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(testredis.Main(m)) }

type env struct {
	t     *testing.T
	rdb   redis.UniversalClient
	keys  queue.Keys
	store *queue.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rdb, keys := testredis.Client(t)
	return &env{t: t, rdb: rdb, keys: keys, store: queue.NewStore(rdb, keys, 0)}
}

func (e *env) enqueue(m router.Message) string {
	e.t.Helper()
	id, _, err := e.store.Enqueue(context.Background(), m)
	if err != nil {
		e.t.Fatalf("enqueue: %v", err)
	}
	return id
}

func webhookMsg(source, email, body string) router.Message {
	return router.Message{Channel: router.ChannelWebhook, SourceID: source, Customer: router.Customer{Email: email}, Body: body, ReceivedAt: time.Now()}
}

// run starts a consumer and stops it when the test ends.
func (e *env) run(cfg queue.ConsumerConfig) {
	e.t.Helper()
	if cfg.Block == 0 {
		cfg.Block = 100 * time.Millisecond // quick shutdown and retry promotion in tests
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := queue.NewConsumer(e.rdb, e.keys, cfg)
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

func (e *env) xlen(stream string) int64 {
	n, err := e.rdb.XLen(context.Background(), stream).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// testRouter is a router over the env's store with n owners in one team, big
// enough capacity, and the given clock.
func (e *env) testRouter(owners int) *router.Router {
	e.t.Helper()
	var os []router.Owner
	for i := range owners {
		os = append(os, router.Owner{ID: fmt.Sprintf("owner%02d", i), Name: "Owner", Email: "o@example.com", Teams: []string{"support"}, Capacity: 1000, Active: true})
	}
	roster, err := router.NewRoster([]router.Team{{ID: "support"}}, os)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := router.New(router.Config{Store: e.store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}, ReopenWindow: 24 * time.Hour})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// routeWebhooks routes n webhook messages through r, the i-th from
// customer(i), a few milliseconds apart (distinct creation times), and
// returns the complaint each landed on.
func (e *env) routeWebhooks(r *router.Router, n int, customer func(i int) string) []string {
	e.t.Helper()
	ids := make([]string, 0, n)
	for i := range n {
		out, err := r.Route(context.Background(), router.Message{ID: fmt.Sprintf("M-%02d", i), Channel: router.ChannelWebhook, SourceID: fmt.Sprint(i),
			Customer: router.Customer{Email: customer(i)}, Body: fmt.Sprintf("my order is late (%d)", i), ReceivedAt: time.Now()})
		if err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, out.ComplaintID)
		time.Sleep(2 * time.Millisecond)
	}
	return ids
}
