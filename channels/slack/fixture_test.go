package slack_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/slack"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/internal/testslack"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(testredis.Main(m)) }

const signingSecret = "test-signing-secret-0123456789"

// Slack users of the shipped roster (configs/owners.yaml), found by e-mail.
var slackUsers = map[string]string{
	"anna.devries@example.nl":    "UANNA",
	"bas.jansen@example.nl":      "UBAS",
	"chloe.bakker@example.nl":    "UCHLOE",
	"joost.visser@example.nl":    "UJOOST",
	"fatima.elamrani@example.nl": "UFATIMA",
	"sanne.mulder@example.nl":    "USANNE",
	// In the Slack workspace but not on the roster.
	"stranger@example.org": "USTRANGER",
}

// reachAll lets staff write to every customer who left a way back: by
// e-mail when they left an address, else by their own channel, except a
// webhook's (the daemon's senders decide this in production).
type reachAll struct{}

func (reachAll) Reach(c router.Complaint) (router.Channel, error) {
	switch {
	case c.Customer.Email != "":
		return router.ChannelEmail, nil
	case c.Channel == router.ChannelWebhook:
		return "", errors.New("the customer left no address, and a webhook cannot be answered")
	}
	return c.Channel, nil
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

type fixture struct {
	t      *testing.T
	ctx    context.Context
	rdb    redis.UniversalClient
	keys   queue.Keys
	store  *queue.Store
	router *router.Router
	slack  *slack.Slack
	ws     *testslack.Workspace
	http   *httptest.Server
	// delivered counts outbox entries already handed to Notify.
	delivered int

	mu        sync.Mutex
	permanent []string
}

type option func(*slack.Config)

func newFixture(t *testing.T, opts ...option) *fixture {
	t.Helper()
	rdb, keys := testredis.Client(t)
	store := queue.NewStore(rdb, keys, 0)
	roster, err := configs.LoadRoster("../../configs/owners.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := configs.LoadRouting("../../configs/routing.yaml", roster)
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(router.Config{Store: store, Directory: roster, Rules: rules, ReopenWindow: 14 * 24 * time.Hour, Reachability: reachAll{}, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: context.Background(), rdb: rdb, keys: keys, store: store, router: r}
	f.ws = testslack.New(t, slackUsers)
	cfg := slack.Config{
		BotToken: "xoxb-test", SigningSecret: signingSecret, APIURL: f.ws.URL(),
		Complaints: r, State: store.State("slack"), Pace: time.Millisecond,
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Categories: []string{"delivery", "billing", "other"},
		OnPermanentError: func(code string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.permanent = append(f.permanent, code)
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	f.slack, err = slack.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.slack.Wait)
	return f
}

// route puts a customer message on a complaint, as the inbound consumer does.
func (f *fixture) route(msg router.Message) router.Outcome {
	f.t.Helper()
	if msg.ID == "" {
		msg.ID = string(msg.Channel) + "-" + msg.SourceID
	}
	if msg.ReceivedAt.IsZero() {
		msg.ReceivedAt = time.Now()
	}
	out, err := f.router.Route(f.ctx, msg)
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// pending returns the notifications committed since the last call, in order,
// straight from the outbox stream.
func (f *fixture) pending() []router.Notification {
	f.t.Helper()
	entries, err := f.rdb.XRange(f.ctx, f.keys.Outbox(), "-", "+").Result()
	if err != nil {
		f.t.Fatal(err)
	}
	var out []router.Notification
	for _, e := range entries[f.delivered:] {
		o, err := queue.DecodeOutgoing([]byte(e.Values["data"].(string)))
		if err != nil {
			f.t.Fatal(err)
		}
		if o.Notification != nil {
			out = append(out, *o.Notification)
		}
	}
	f.delivered = len(entries)
	return out
}

// deliver hands every pending notification to the Slack notifier, as the
// outbox does, and fails the test on an error.
func (f *fixture) deliver() []router.Notification {
	f.t.Helper()
	ns := f.pending()
	for _, n := range ns {
		if err := f.slack.Notify(f.ctx, n); err != nil {
			f.t.Fatalf("notify %s: %v", n.ID, err)
		}
	}
	return ns
}

func (f *fixture) complaint(id string) (router.Complaint, []router.Entry) {
	f.t.Helper()
	c, tl, err := f.router.Complaint(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return c, tl
}

func (f *fixture) permanentCodes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.permanent...)
}

func isRetryAfter(err error) (time.Duration, bool) {
	var ra *router.RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

func blocksContain(p testslack.Post, s string) bool { return strings.Contains(p.Blocks, s) }
