package router_test

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(testredis.Main(m)) }

// fakeClock is a settable clock for tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// desk is a router on a real Redis with a small roster:
// team "support" (anna nl+en cap 3, bas nl cap 3, chloe en cap 3), team
// "billing" (daan cap 1), team "dormant" (emma, inactive).
type desk struct {
	t      *testing.T
	router *router.Router
	store  *queue.Store
	rdb    redis.UniversalClient
	clock  *fakeClock
	seq    int
}

func newDesk(t *testing.T, mutate ...func(*[]router.Owner)) *desk {
	t.Helper()
	return newDeskWith(t, nil, mutate...)
}

// newDeskWith builds a desk whose router can write to customers through reach.
func newDeskWith(t *testing.T, reach router.Reachability, mutate ...func(*[]router.Owner)) *desk {
	t.Helper()
	rdb, keys := testredis.Client(t)
	store := queue.NewStore(rdb, keys, 0)
	owners := []router.Owner{
		{ID: "anna", Name: "Anna", Email: "anna@example.nl", Teams: []string{"support"}, Languages: []string{"nl", "en"}, Capacity: 3, Active: true},
		{ID: "bas", Name: "Bas", Email: "bas@example.nl", Teams: []string{"support"}, Languages: []string{"nl"}, Capacity: 3, Active: true},
		{ID: "chloe", Name: "Chloe", Email: "chloe@example.com", Teams: []string{"support"}, Languages: []string{"en"}, Capacity: 3, Active: true},
		{ID: "daan", Name: "Daan", Email: "daan@example.nl", Teams: []string{"billing"}, Capacity: 1, Active: true},
		{ID: "emma", Name: "Emma", Email: "emma@example.nl", Teams: []string{"dormant"}, Capacity: 5, Active: false},
	}
	for _, m := range mutate {
		m(&owners)
	}
	roster, err := router.NewRoster([]router.Team{{ID: "support", Lead: "chloe"}, {ID: "billing"}, {ID: "dormant"}}, owners)
	if err != nil {
		t.Fatal(err)
	}
	rules := &router.Rules{DefaultTeam: "support", Rules: []router.Rule{
		{Name: "billing", Team: "billing", Keywords: []string{"invoice", "factuur"}},
		{Name: "dormant", Team: "dormant", Keywords: []string{"museum"}},
	}}
	clock := &fakeClock{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	r, err := router.New(router.Config{Store: store, Directory: roster, Rules: rules, ReopenWindow: 14 * 24 * time.Hour, Reachability: reach, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	d := &desk{t: t, router: r, store: store, rdb: rdb, clock: clock}
	t.Cleanup(d.checkFigures)
	return d
}

// checkFigures: whatever the test did, the figures the store keeps with
// every commit (per-owner open and overdue, promises) are what the open
// complaints themselves say.
func (d *desk) checkFigures() {
	ctx := context.Background()
	open, err := d.store.OpenComplaints(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	var owners []string
	for _, o := range d.router.Directory().Owners() {
		owners = append(owners, o.ID)
	}
	for _, at := range []time.Time{d.clock.Now(), d.clock.Now().Add(30 * 24 * time.Hour)} {
		want := router.FiguresOf(open, owners, at)
		got, err := d.store.OpenFigures(ctx, owners, at)
		if err != nil {
			d.t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			d.t.Errorf("indexed figures at %s = %+v, the open complaints say %+v", at, got, want)
		}
	}
}

// msg builds a webhook message from customer with the given body.
func (d *desk) msg(email, body string) router.Message {
	d.seq++
	return router.Message{
		ID: fmt.Sprintf("M-%d", d.seq), Channel: router.ChannelWebhook, SourceID: fmt.Sprintf("src-%d", d.seq),
		Customer: router.Customer{Email: email}, Body: body, ReceivedAt: d.clock.Now(),
	}
}

func (d *desk) route(m router.Message) router.Outcome {
	d.t.Helper()
	out, err := d.router.Route(context.Background(), m)
	if err != nil {
		d.t.Fatalf("routing %s: %v", m.ID, err)
	}
	return out
}

func (d *desk) complaint(id string) (router.Complaint, []router.Entry) {
	d.t.Helper()
	c, tl, err := d.router.Complaint(context.Background(), id)
	if err != nil {
		d.t.Fatalf("loading %s: %v", id, err)
	}
	return c, tl
}

func (d *desk) load(owner string) int {
	d.t.Helper()
	l, err := d.store.OwnerLoads(context.Background(), []string{owner})
	if err != nil {
		d.t.Fatal(err)
	}
	return l[owner].Open
}

func events(tl []router.Entry, typ router.EventType) []router.Event {
	var out []router.Event
	for _, e := range tl {
		if e.Event != nil && e.Event.Type == typ {
			out = append(out, *e.Event)
		}
	}
	return out
}

// outbox decodes every entry waiting in the outbox.
func (d *desk) outbox() []router.Outgoing {
	d.t.Helper()
	entries, err := d.rdb.XRange(context.Background(), d.store.Keys().Outbox(), "-", "+").Result()
	if err != nil {
		d.t.Fatal(err)
	}
	out := make([]router.Outgoing, 0, len(entries))
	for _, e := range entries {
		o, err := queue.DecodeOutgoing([]byte(e.Values["data"].(string)))
		if err != nil {
			d.t.Fatalf("outbox entry %s: %v", e.ID, err)
		}
		out = append(out, o)
	}
	return out
}

// toCustomer lists what the outbox holds for customers.
func (d *desk) toCustomer() []router.CustomerMessage {
	var out []router.CustomerMessage
	for _, o := range d.outbox() {
		if o.Customer != nil {
			out = append(out, *o.Customer)
		}
	}
	return out
}

func messageCount(tl []router.Entry) int {
	n := 0
	for _, e := range tl {
		if e.Message != nil {
			n++
		}
	}
	return n
}
