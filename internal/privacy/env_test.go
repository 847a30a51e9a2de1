package privacy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/email"
	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/channels/slack"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/internal/testslack"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(testredis.Main(m)) }

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// reach answers every customer through their complaint's channel, or e-mail.
type reach struct{}

func (reach) Reach(c router.Complaint) (router.Channel, error) {
	if c.Channel == router.ChannelWebhook && c.Customer.Email != "" {
		return router.ChannelEmail, nil
	}
	return c.Channel, nil
}

// env is a store, a router and its two consumers on a real Redis namespace.
type env struct {
	t      *testing.T
	rdb    redis.UniversalClient
	keys   queue.Keys
	store  *queue.Store
	router *router.Router
	clock  *clock
	// slack is the real Slack channel against a Slack double: notifications
	// go through it as in production.
	slack     *slack.Slack
	workspace *testslack.Workspace
	// mail is the real e-mail channel's sender against a real SMTP server:
	// replies and acknowledgements to customers with an address go there.
	mail  *email.Sender
	smtp  *emailtest.SMTP
	mu    sync.Mutex
	notes []router.Notification
	sent  int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rdb, keys := testredis.Client(t)
	return newEnvOn(t, rdb, keys)
}

// newEnvOn is newEnv on a given client and namespace: a cluster's, say.
func newEnvOn(t *testing.T, rdb redis.UniversalClient, keys queue.Keys) *env {
	t.Helper()
	e := &env{t: t, rdb: rdb, keys: keys, store: queue.NewStore(rdb, keys, 0),
		clock: &clock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}}
	owners := []router.Owner{
		{ID: "anna", Name: "Anna", Email: "anna@shop.example", Teams: []string{"support"}, Capacity: 100, Active: true},
		{ID: "bas", Name: "Bas", Email: "bas@shop.example", Teams: []string{"support"}, Capacity: 100, Active: true},
	}
	roster, err := router.NewRoster([]router.Team{{ID: "support", Lead: "anna"}}, owners)
	if err != nil {
		t.Fatal(err)
	}
	e.router, err = router.New(router.Config{Store: e.store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"},
		ReopenWindow: 24 * time.Hour, Reachability: reach{}, Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.workspace = testslack.New(t, map[string]string{"anna@shop.example": "UANNA", "bas@shop.example": "UBAS"})
	e.slack, err = slack.New(slack.Config{BotToken: "xoxb-test", APIURL: e.workspace.URL(), Complaints: e.router,
		State: e.store.State("slack"), Pace: time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.smtp = emailtest.StartSMTP(t, nil)
	tpl, err := email.LoadTemplates("../../configs/email-templates", "en")
	if err != nil {
		t.Fatal(err)
	}
	e.mail, err = email.NewSender(email.SMTPConfig{Host: e.smtp.Host, Port: e.smtp.Port, TLS: email.TLSNone, From: "Klantenservice <support@winkel.example>"},
		tpl, e.store.State("email"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, c := range []*queue.Consumer{
		queue.NewConsumer(rdb, keys, queue.ConsumerConfig{Stream: keys.Inbound(), Group: queue.RouterGroup, Name: "r1",
			Block: 50 * time.Millisecond, MaxAttempts: 3, ReclaimIdle: 5 * time.Second, Handler: e.route}),
		queue.NewConsumer(rdb, keys, queue.ConsumerConfig{Stream: keys.Outbox(), Group: queue.DeliveryGroup, Name: "r1",
			Block: 50 * time.Millisecond, MaxAttempts: 3, ReclaimIdle: 5 * time.Second, Handler: e.deliver}),
	} {
		wg.Go(func() { _ = c.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return e
}

func (e *env) route(ctx context.Context, d *queue.Delivery) error {
	msg, err := queue.DecodeMessage(d.Data)
	if err != nil {
		return router.Permanent(err)
	}
	_, err = e.router.Route(ctx, msg)
	return err
}

// deliver records notifications and "sends" customer messages the way the
// e-mail channel reports them (address, Message-ID thread key).
func (e *env) deliver(ctx context.Context, d *queue.Delivery) error {
	out, err := queue.DecodeOutgoing(d.Data)
	if err != nil {
		return router.Permanent(err)
	}
	if n := out.Notification; n != nil {
		if err := e.slack.Notify(ctx, *n); err != nil {
			return err
		}
		e.mu.Lock()
		e.notes = append(e.notes, *n)
		e.mu.Unlock()
		return nil
	}
	m := *out.Customer
	e.mu.Lock()
	e.sent++
	k := e.sent
	e.mu.Unlock()
	_ = k
	sent := router.Sent{Via: string(m.Complaint.Channel)}
	if via, _ := (reach{}).Reach(m.Complaint); via == router.ChannelEmail || m.Complaint.Customer.Email != "" {
		var err error
		if sent, err = e.mail.Send(ctx, m); err != nil {
			return err
		}
	}
	return e.router.RecordSent(ctx, m, sent)
}

func (e *env) enqueue(m router.Message) string {
	e.t.Helper()
	if m.ReceivedAt.IsZero() {
		m.ReceivedAt = e.clock.Now()
	}
	id, _, err := e.store.Enqueue(context.Background(), m)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// settle waits until both streams are empty of unhandled work.
func (e *env) settle() {
	e.t.Helper()
	ctx := context.Background()
	testkit.WaitFor(e.t, "the queue to drain", func() bool {
		for _, s := range []struct{ stream, group string }{{e.keys.Inbound(), queue.RouterGroup}, {e.keys.Outbox(), queue.DeliveryGroup}} {
			n, err := e.rdb.XLen(ctx, s.stream).Result()
			if err != nil || n > 0 {
				return false
			}
		}
		return true
	})
}

func (e *env) complaintOf(messageID string) router.Complaint {
	e.t.Helper()
	var c router.Complaint
	testkit.WaitFor(e.t, "message "+messageID+" to be routed", func() bool {
		id, ok, err := e.store.MessageComplaint(context.Background(), messageID)
		if err != nil || !ok {
			return false
		}
		c, err = e.store.Complaint(context.Background(), id)
		return err == nil
	})
	return c
}

// dump is every key of the namespace with its whole content, type-aware.
// On a cluster it looks on every master, not only where the namespace
// should be.
func (e *env) dump() map[string]string {
	e.t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	found, err := testredis.ScanKeys(ctx, e.rdb, e.keys.Pattern())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, k := range found {
		typ, err := e.rdb.Type(ctx, k).Result()
		if err != nil {
			e.t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = e.rdb.Get(ctx, k).Result()
		case "hash":
			v, err = e.rdb.HGetAll(ctx, k).Result()
		case "list":
			v, err = e.rdb.LRange(ctx, k, 0, -1).Result()
		case "set":
			var m []string
			m, err = e.rdb.SMembers(ctx, k).Result()
			sort.Strings(m)
			v = m
		case "zset":
			v, err = e.rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "stream":
			v, err = e.rdb.XRange(ctx, k, "-", "+").Result()
		case "none":
			continue
		default:
			e.t.Fatalf("key %s has type %s, which the dump does not know", k, typ)
		}
		if err != nil && err != redis.Nil {
			e.t.Fatal(err)
		}
		b, _ := json.Marshal(v)
		out[k] = string(b)
	}
	return out
}

// traces lists every key whose name or content holds one of the needles.
func traces(dump map[string]string, needles []string) []string {
	var out []string
	for k, v := range dump {
		for _, n := range needles {
			ln := strings.ToLower(n)
			// Content is JSON: look at it raw and with its escapes undone.
			if strings.Contains(strings.ToLower(k), ln) || strings.Contains(strings.ToLower(v), ln) ||
				strings.Contains(strings.ToLower(strings.ReplaceAll(v, `\"`, `"`)), ln) {
				out = append(out, fmt.Sprintf("%s holds %q", k, n))
			}
		}
	}
	sort.Strings(out)
	return out
}

// checkInvariants: every open complaint has exactly one owner, is in that
// owner's open set and no other's, and every open set member is open.
func (e *env) checkInvariants() {
	e.t.Helper()
	ctx := context.Background()
	// The store's own audit: owners, loads, every message on exactly one
	// complaint and indexed there, every thread key pointing somewhere.
	rep, err := e.store.Audit(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range rep.Problems {
		// A merge copies the merged complaint's messages onto the survivor,
		// which Store.Audit counts as a message on two complaints (so it is
		// before any erasure too): not the erasure's doing.
		var msg, a, b string
		if n, _ := fmt.Sscanf(p, "message %s is on %s and on %s", &msg, &a, &b); n == 3 {
			ca, _ := e.store.Complaint(ctx, a)
			cb, _ := e.store.Complaint(ctx, b)
			if ca.MergedInto == b || cb.MergedInto == a {
				continue
			}
		}
		e.t.Errorf("invariant: %s", p)
	}
	open, err := e.rdb.ZRange(ctx, e.keys.OpenComplaints(), 0, -1).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	inOwnerSets := map[string]string{}
	for _, o := range []string{"anna", "bas"} {
		ids, err := e.rdb.SMembers(ctx, e.keys.OwnerOpen(o)).Result()
		if err != nil {
			e.t.Fatal(err)
		}
		for _, id := range ids {
			if prev, dup := inOwnerSets[id]; dup {
				e.t.Errorf("%s is open for both %s and %s", id, prev, o)
			}
			inOwnerSets[id] = o
		}
	}
	if len(inOwnerSets) != len(open) {
		e.t.Errorf("%d open complaints but %d in owners' open sets", len(open), len(inOwnerSets))
	}
	for _, id := range open {
		c, err := e.store.Complaint(ctx, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if c.Status != router.StatusOpen || c.Owner == "" || inOwnerSets[id] != c.Owner {
			e.t.Errorf("open complaint %s: status %s, owner %q, in the open set of %q", id, c.Status, c.Owner, inOwnerSets[id])
		}
	}
}
