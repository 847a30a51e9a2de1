package forum_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/forgetmenot/forgetmenot/channels/forum"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(testredis.Main(m)) }

const secret = "discourse-secret-0123456789"

type fixture struct {
	t    *testing.T
	rdb  redis.UniversalClient
	keys queue.Keys
	url  string
}

func newFixture(t *testing.T, filter forum.Filter, options ...func(*forum.Config)) *fixture {
	t.Helper()
	rdb, keys := testredis.Client(t)
	store := queue.NewStore(rdb, keys, 0)
	cfg := forum.Config{Queue: store, State: store.State("forum"), Secret: secret, Filter: filter, MaxBytes: 64 << 10}
	for _, o := range options {
		o(&cfg)
	}
	srv := httptest.NewServer(forum.New(cfg))
	t.Cleanup(srv.Close)
	return &fixture{t: t, rdb: rdb, keys: keys, url: srv.URL}
}

// deliver sends body as Discourse does: the event header, a fresh event id
// (every retry gets a new one) and the signature of the raw body.
func (f *fixture) deliver(event string, body []byte, signature string) (int, map[string]any) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(forum.EventHeader, event)
	req.Header.Set("X-Discourse-Event-Type", strings.SplitN(event, "_", 2)[0])
	req.Header.Set("X-Discourse-Event-Id", testredis.Namespace())
	if signature != "" {
		req.Header.Set(forum.SignatureHeader, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (f *fixture) send(event, fixtureName string) (int, map[string]any) {
	f.t.Helper()
	body := load(f.t, fixtureName)
	return f.deliver(event, body, forum.Sign(body, secret))
}

// queued returns the inbound messages in the stream.
func (f *fixture) queued() []router.Message {
	f.t.Helper()
	entries, err := f.rdb.XRange(context.Background(), f.keys.Inbound(), "-", "+").Result()
	if err != nil {
		f.t.Fatal(err)
	}
	var out []router.Message
	for _, e := range entries {
		var m router.Message
		if err := json.Unmarshal([]byte(e.Values["data"].(string)), &m); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func load(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignatureIsRequiredAndChecked(t *testing.T) {
	f := newFixture(t, forum.Filter{})
	body := load(t, "post_created_first.json")
	for _, tc := range []struct {
		name, signature string
	}{
		{"missing", ""},
		{"not sha256=", "sha1=abcdef"},
		{"not hex", "sha256=zz"},
		{"other secret", forum.Sign(body, "another-secret-0123456789")},
		{"other body", forum.Sign(append([]byte(" "), body...), secret)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := f.deliver("post_created", body, tc.signature)
			if code != http.StatusUnauthorized || out["error"] == "" {
				t.Fatalf("status %d %v, want 401 with a reason", code, out)
			}
		})
	}
	if n := len(f.queued()); n != 0 {
		t.Fatalf("%d messages queued from refused requests, want 0", n)
	}
}

func TestFirstPostOfATopicIsOneMessageWhateverTheOrderAndRetries(t *testing.T) {
	orders := map[string][][2]string{
		"topic first": {{"topic_created", "topic_created.json"}, {"post_created", "post_created_first.json"}},
		"post first":  {{"post_created", "post_created_first.json"}, {"topic_created", "topic_created.json"}},
	}
	filters := map[string]forum.Filter{
		"category":    {Categories: []string{"support"}},
		"tag":         {Tags: []string{"Complaint"}},
		"no filter":   {},
		"category id": {Categories: []string{"7"}},
	}
	for on, order := range orders {
		for fn, filter := range filters {
			t.Run(on+"/"+fn, func(t *testing.T) {
				f := newFixture(t, filter)
				// Discourse retries with a new event id: every delivery twice.
				for _, ev := range append(order, order...) {
					if code, out := f.send(ev[0], ev[1]); code/100 != 2 {
						t.Fatalf("%s: %d %v", ev[0], code, out)
					}
				}
				got := f.queued()
				if len(got) != 1 {
					t.Fatalf("%d messages queued, want exactly 1 for the first post: %+v", len(got), got)
				}
				m := got[0]
				if m.Channel != router.ChannelForum || m.SourceID != "post:90211" || len(m.ThreadKeys) != 1 || m.ThreadKeys[0] != "forum:topic:4711" {
					t.Errorf("message keys: %s %s %v", m.Channel, m.SourceID, m.ThreadKeys)
				}
				if m.Customer.ID != "233" || m.Customer.Name != "Marloes van Dijk" || m.Metadata[forum.MetaUsername] != "marloes" || m.Subject != "Order 104-2233 arrived broken" || !strings.Contains(m.Body, "jug inside is broken") {
					t.Errorf("message content: %+v", m)
				}
				if m.Metadata[forum.MetaTopicID] != "4711" || m.Metadata[forum.MetaPostNumber] != "1" {
					t.Errorf("metadata %v must say where to answer", m.Metadata)
				}
			})
		}
	}
}

func TestWhichPostsAreCustomerMessages(t *testing.T) {
	f := newFixture(t, forum.Filter{Categories: []string{"support"}, Staff: []string{"Anna"}})
	withEmail := func(body []byte) []byte {
		var p map[string]map[string]any
		_ = json.Unmarshal(body, &p)
		p["post"]["email"] = "marloes@example.nl"
		b, _ := json.Marshal(p)
		return b
	}
	renamed := func(user string) []byte {
		var p map[string]map[string]any
		_ = json.Unmarshal(load(t, "post_created_reply.json"), &p)
		p["post"]["username"], p["post"]["id"] = user, 99999
		b, _ := json.Marshal(p)
		return b
	}
	for _, tc := range []struct {
		name    string
		event   string
		body    []byte
		queued  bool
		ignored string
	}{
		{"ping", "ping", load(t, "ping.json"), false, "ping"},
		{"customer reply", "post_created", load(t, "post_created_reply.json"), true, ""},
		{"customer with email", "post_created", withEmail(load(t, "post_created_first.json")), true, ""},
		{"staff flag", "post_created", load(t, "post_created_staff.json"), false, "staff"},
		{"configured staff username", "post_created", renamed("anna"), false, "staff"},
		{"other category", "post_created", load(t, "post_created_other_category.json"), false, "not in a complaint category"},
		{"unhandled event", "post_edited", load(t, "post_created_reply.json"), false, "not handled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.queued())
			code, out := f.deliver(tc.event, tc.body, forum.Sign(tc.body, secret))
			if code/100 != 2 {
				t.Fatalf("status %d %v: Discourse must get a 2xx for every authentic event, or it retries", code, out)
			}
			queued := len(f.queued()) > before
			if queued != tc.queued {
				t.Fatalf("queued = %v, want %v (%v)", queued, tc.queued, out)
			}
			if ig, _ := out["ignored"].(string); tc.ignored != "" && !strings.Contains(ig, tc.ignored) {
				t.Errorf("ignored = %q, want it to say %q", ig, tc.ignored)
			}
		})
	}
	msgs := f.queued()
	if last := msgs[len(msgs)-1]; last.Customer.Email != "marloes@example.nl" {
		t.Errorf("customer email %q: the history must link forum and e-mail complaints when Discourse gives the address", last.Customer.Email)
	}
	if msgs[0].Metadata[forum.MetaPostNumber] != "3" || msgs[0].ThreadKeys[0] != "forum:topic:4711" {
		t.Errorf("a reply threads by topic: %+v", msgs[0])
	}
}

func TestBadInputIsRefusedClearly(t *testing.T) {
	f := newFixture(t, forum.Filter{})
	for _, tc := range []struct {
		name  string
		event string
		body  string
		code  int
	}{
		{"not JSON", "post_created", `{"post": `, http.StatusBadRequest},
		{"post event without post", "post_created", `{"topic": {"id": 3}}`, http.StatusBadRequest},
		{"post without id", "post_created", `{"post": {"topic_id": 3, "raw": "hi"}}`, http.StatusBadRequest},
		{"too large", "post_created", `{"post": {"raw": "` + strings.Repeat("x", 70<<10) + `"}}`, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			code, out := f.deliver(tc.event, body, forum.Sign(body, secret))
			if code != tc.code || out["error"] == "" {
				t.Fatalf("status %d %v, want %d with an error", code, out, tc.code)
			}
		})
	}
	if n := len(f.queued()); n != 0 {
		t.Fatalf("%d queued, want 0", n)
	}
}

func TestRedisDownAnswers503NeverSuccess(t *testing.T) {
	rdb, _ := queue.Connect("redis://127.0.0.1:1/0")
	keys, _ := queue.NewKeys("down")
	store := queue.NewStore(rdb, keys, 0)
	srv := httptest.NewServer(forum.New(forum.Config{Queue: store, State: store.State("forum"), Secret: secret}))
	defer srv.Close()
	for _, ev := range [][2]string{{"post_created", "post_created_first.json"}, {"topic_created", "topic_created.json"}} {
		body := load(t, ev[1])
		req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader(body))
		req.Header.Set(forum.EventHeader, ev[0])
		req.Header.Set(forum.SignatureHeader, forum.Sign(body, secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: status %d, want 503 with Retry-After so Discourse retries", ev[0], resp.StatusCode)
		}
	}
}

// racingState runs topic_created at the worst moment for post_created: after
// post_created has read the topic decision (none yet) and before it writes the
// waiting first post.
type racingState struct {
	forum.State
	once      sync.Once
	interpose func()
}

func (s *racingState) Get(ctx context.Context, k string) (string, bool, error) {
	v, found, err := s.State.Get(ctx, k)
	if k == "topic:4711" {
		s.once.Do(s.interpose)
	}
	return v, found, err
}

func TestFirstPostIsQueuedWhenTopicCreatedRunsBetweenItsReadAndWrite(t *testing.T) {
	// Every acknowledged message is stored: a tagged topic's first post that
	// loses the race with topic_created is still queued exactly once (and the
	// first post of a topic that is no complaint is not), and no waiting
	// record is left behind to expire unseen.
	for _, tc := range []struct {
		name   string
		tags   []string
		queued int
	}{
		{"complaint tag", []string{"complaint"}, 1},
		{"no complaint tag", []string{"warranty"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb, keys := testredis.Client(t)
			store := queue.NewStore(rdb, keys, 0)
			state := &racingState{State: store.State("forum")}
			h := forum.New(forum.Config{Queue: store, State: state, Secret: secret, Filter: forum.Filter{Tags: tc.tags}})
			deliver := func(event, fixtureName string) {
				body := load(t, fixtureName)
				req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
				req.Header.Set(forum.EventHeader, event)
				req.Header.Set(forum.SignatureHeader, forum.Sign(body, secret))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code/100 != 2 {
					t.Errorf("%s: %d %s", event, rec.Code, rec.Body)
				}
			}
			state.interpose = func() { deliver("topic_created", "topic_created.json") }
			deliver("post_created", "post_created_first.json")

			f := &fixture{t: t, rdb: rdb, keys: keys}
			got := f.queued()
			if len(got) != tc.queued || (len(got) == 1 && got[0].SourceID != "post:90211") {
				t.Fatalf("queued %+v, want %d message(s) for the first post", got, tc.queued)
			}
			if v, found, err := state.Get(context.Background(), "waiting:4711"); err != nil || found {
				t.Fatalf("waiting record %q found=%v err=%v, want none", v, found, err)
			}
		})
	}
}
