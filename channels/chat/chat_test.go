package chat_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/forgetmenot/forgetmenot/channels/chat"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/internal/texts"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(testredis.Main(m)) }

// shippedTexts are the texts in configs/chat-templates.
func shippedTexts(t testing.TB) *texts.Set {
	t.Helper()
	tx, err := texts.Load(configs.ShippedChatTemplates(), texts.Options{Fallback: "en", Required: chat.RequiredTexts, Sample: chat.SampleTextData})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

type history struct {
	mu    sync.Mutex
	convs map[string][]chat.Conversation
}

func (h *history) Conversations(ctx context.Context, key string) ([]chat.Conversation, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.convs[key], nil
}

type fixture struct {
	t      *testing.T
	rdb    redis.UniversalClient
	keys   queue.Keys
	srv    *chat.Server
	url    string
	hist   *history
	cancel context.CancelFunc
}

func newFixture(t *testing.T, mutate func(*chat.Config)) *fixture {
	t.Helper()
	rdb, keys := testredis.Client(t)
	store := queue.NewStore(rdb, keys, 0)
	h := &history{convs: map[string][]chat.Conversation{}}
	cfg := chat.Config{Queue: store, State: store.State("chat"), History: h, Texts: shippedTexts(t), MaxMessageBytes: 200, RatePerMinute: 5, IPRatePerMinute: 50,
		OwnerName: func(id string) string { return map[string]string{"anna": "Anna de Vries", "bas": "Bas Jansen"}[id] }}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := chat.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for p, hd := range s.Routes() {
		mux.Handle(p, hd)
	}
	ts := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; ts.Close() })
	<-s.Ready()
	return &fixture{t: t, rdb: rdb, keys: keys, srv: s, url: ts.URL, hist: h, cancel: cancel}
}

type conn struct {
	t *testing.T
	c *websocket.Conn
}

func (f *fixture) dial(origin string) (*conn, *http.Response, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(f.url, "http")+"/chat/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, resp, err
	}
	cn := &conn{t: f.t, c: c}
	f.t.Cleanup(func() { c.CloseNow() })
	return cn, resp, nil
}

// open connects and says hello; it returns the welcome frame.
func (f *fixture) open(token string) (*conn, map[string]any) {
	f.t.Helper()
	c, _, err := f.dial(f.url)
	if err != nil {
		f.t.Fatal(err)
	}
	c.send(map[string]any{"type": "hello", "token": token})
	w := c.read()
	if w["type"] != "welcome" {
		f.t.Fatalf("first frame %v, want welcome", w)
	}
	return c, w
}

func (c *conn) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *conn) read() map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.c.Read(ctx)
	if err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func (f *fixture) queued() []router.Message {
	f.t.Helper()
	entries, _ := f.rdb.XRange(context.Background(), f.keys.Inbound(), "-", "+").Result()
	var out []router.Message
	for _, e := range entries {
		var m router.Message
		_ = json.Unmarshal([]byte(e.Values["data"].(string)), &m)
		out = append(out, m)
	}
	return out
}

func TestMessageIsStoredOnceBeforeItIsAcknowledged(t *testing.T) {
	f := newFixture(t, nil)
	c, w := f.open("")
	token, _ := w["token"].(string)
	if len(token) < 32 {
		t.Fatalf("welcome %v: a new visitor must get a random session token", w)
	}
	msg := map[string]any{"type": "message", "id": "m1", "text": "  My order never arrived.  ", "name": "Jan", "email": "jan@example.nl"}
	c.send(msg)
	ack := c.read()
	if ack["type"] != "ack" || ack["id"] != "m1" || ack["duplicate"] == true || !strings.HasPrefix(ack["message_id"].(string), "M-") {
		t.Fatalf("ack %v", ack)
	}
	// The widget resends what it has no ack for, after a reconnect: same id.
	c2, w2 := f.open(token)
	if w2["token"] != token {
		t.Fatalf("a returning visitor keeps the session: got token %v", w2["token"])
	}
	c2.send(msg)
	if again := c2.read(); again["duplicate"] != true || again["message_id"] != ack["message_id"] {
		t.Fatalf("resend: %v, want the same message marked duplicate", again)
	}
	got := f.queued()
	if len(got) != 1 {
		t.Fatalf("%d messages stored, want exactly 1", len(got))
	}
	m, session := got[0], chat.SessionID(token)
	if m.Channel != router.ChannelChat || m.SourceID != session+":m1" || m.ThreadKeys[0] != "chat:"+session || m.Customer.ID != session {
		t.Errorf("stored %+v, want keyed by session digest %s", m, session)
	}
	if m.Body != "My order never arrived." || m.Customer.Email != "jan@example.nl" || m.Customer.Name != "Jan" {
		t.Errorf("stored %+v", m)
	}
	if strings.Contains(m.SourceID+m.Customer.ID+strings.Join(m.ThreadKeys, ""), token) {
		t.Errorf("the visitor's secret token must not be stored: %+v", m)
	}
}

func TestBadInputGetsClearErrorFrames(t *testing.T) {
	f := newFixture(t, nil)
	c, _ := f.open("")
	for _, tc := range []struct {
		name  string
		frame any
		code  string
	}{
		{"too long", map[string]any{"type": "message", "id": "a", "text": strings.Repeat("x", 201)}, "too_long"},
		{"empty", map[string]any{"type": "message", "id": "b", "text": "   "}, "empty"},
		{"no id", map[string]any{"type": "message", "text": "hi"}, "bad_frame"},
		{"bad email", map[string]any{"type": "message", "id": "c", "text": "hi", "email": "not-an-address"}, "bad_email"},
		{"unknown type", map[string]any{"type": "shout"}, "bad_frame"},
		{"not JSON", "<b>hi</b>", "bad_frame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, ok := tc.frame.(string); ok {
				_ = c.c.Write(context.Background(), websocket.MessageText, []byte(s))
			} else {
				c.send(tc.frame)
			}
			e := c.read()
			if e["type"] != "error" || e["code"] != tc.code || e["error"] == "" {
				t.Fatalf("got %v, want error %s with a reason", e, tc.code)
			}
		})
	}
	if n := len(f.queued()); n != 0 {
		t.Fatalf("%d stored from bad input, want 0", n)
	}
}

func TestRateLimitPerSessionAndPerIP(t *testing.T) {
	f := newFixture(t, func(c *chat.Config) { c.RatePerMinute, c.IPRatePerMinute = 3, 4 })
	c, _ := f.open("")
	for i := range 4 {
		c.send(map[string]any{"type": "message", "id": "s" + string(rune('a'+i)), "text": "again"})
		r := c.read()
		if i < 3 && r["type"] != "ack" {
			t.Fatalf("message %d: %v, want ack", i, r)
		}
		if i == 3 && (r["code"] != "rate_limited" || !strings.Contains(r["error"].(string), "this chat")) {
			t.Fatalf("message 4: %v, want rate_limited for the session", r)
		}
	}
	// A new session from the same address: the per-IP limit (4; 3 used, the refused one not counted).
	c2, _ := f.open("")
	c2.send(map[string]any{"type": "message", "id": "x1", "text": "hi"})
	if r := c2.read(); r["type"] != "ack" {
		t.Fatalf("%v", r)
	}
	c2.send(map[string]any{"type": "message", "id": "x2", "text": "hi"})
	if r := c2.read(); r["code"] != "rate_limited" || !strings.Contains(r["error"].(string), "network address") {
		t.Fatalf("%v, want the per-IP limit", r)
	}
	if n := len(f.queued()); n != 4 {
		t.Fatalf("%d stored, want 4 (only those acknowledged)", n)
	}
}

func TestOriginIsChecked(t *testing.T) {
	f := newFixture(t, func(c *chat.Config) { c.AllowedOrigins = []string{"https://shop.example.com", "*.example.org"} })
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{f.url, true}, // the daemon's own pages
		{"https://shop.example.com", true},
		{"https://help.example.org", true},
		{"https://evil.example", false},
		{"http://shop.example.com", false}, // scheme matters for full origins
	} {
		_, resp, err := f.dial(tc.origin)
		if tc.ok != (err == nil) {
			t.Errorf("origin %s: err %v, want allowed=%v", tc.origin, err, tc.ok)
		}
		if !tc.ok && resp != nil && resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %s: status %d, want 403", tc.origin, resp.StatusCode)
		}
	}
}

// mailer stands in for the e-mail channel.
type mailer struct {
	mu   sync.Mutex
	sent []router.CustomerMessage
}

func (m *mailer) Send(ctx context.Context, msg router.CustomerMessage) (router.Sent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return router.Sent{Ref: "<x@support>"}, nil
}

func replyTo(token, email string, kind router.CustomerMessageKind) router.CustomerMessage {
	s := chat.SessionID(token)
	in := router.Message{Channel: router.ChannelChat, SourceID: s + ":m1", Metadata: map[string]string{chat.MetaSession: s}}
	return router.CustomerMessage{ID: "C-1001:v3:" + string(kind), Kind: kind, At: time.Now().UTC(), OwnerName: "Anna de Vries", AuthorName: "Anna de Vries",
		Complaint: router.Complaint{ID: "C-1001", Channel: router.ChannelChat, Customer: router.Customer{ID: s, Email: email}},
		Body:      "We send a new one today.", InReplyTo: &in}
}

func TestRepliesReachEveryOpenWindowOrTheInboxOrTheHistory(t *testing.T) {
	f := newFixture(t, func(c *chat.Config) { c.PresenceTTL = 3 * time.Second })
	mail := &mailer{}
	snd := f.srv.Sender(func() chat.CustomerSender { return mail })
	a1, w := f.open("")
	token := w["token"].(string)
	a2, _ := f.open(token)
	other, _ := f.open("")

	ctx := context.Background()
	sent, err := snd.Send(ctx, replyTo(token, "jan@example.nl", router.ToCustomerReply))
	if err != nil || sent.Via != "chat" || sent.Skipped != "" {
		t.Fatalf("sent %+v %v, want live via chat", sent, err)
	}
	line := a1.read()
	if line["type"] != "line" || line["line"].(map[string]any)["text"] != "We send a new one today." || line["line"].(map[string]any)["author"] != "Anna de Vries" {
		t.Fatalf("window 1 got %v", line)
	}
	if l2 := a2.read(); l2["line"].(map[string]any)["id"] != line["line"].(map[string]any)["id"] {
		t.Fatalf("window 2 got %v, want the same line", l2)
	}
	other.send(map[string]any{"type": "ping"})
	if r := other.read(); r["type"] != "pong" {
		t.Fatalf("another session's window got %v, want nothing of this session", r)
	}
	if len(mail.sent) != 0 {
		t.Fatalf("e-mailed while the visitor is connected")
	}

	// The visitor closes both windows: the next reply goes by e-mail.
	a1.c.Close(websocket.StatusNormalClosure, "")
	a2.c.Close(websocket.StatusNormalClosure, "")
	testkit.WaitFor(t, "the reply to go by e-mail once the visitor left", func() bool {
		sent, err := snd.Send(ctx, replyTo(token, "jan@example.nl", router.ToCustomerReply))
		return err == nil && sent.Via == "email"
	})
	// Without an address it waits in the history, and says so.
	sent, err = snd.Send(ctx, replyTo(token, "", router.ToCustomerReply))
	if err != nil || sent.Via != "chat" || !strings.Contains(sent.Skipped, "history") {
		t.Fatalf("no address: %+v %v", sent, err)
	}
	// A complaint without a chat session cannot be answered here at all.
	bad := replyTo(token, "", router.ToCustomerReply)
	bad.InReplyTo, bad.References = nil, nil
	if _, err := snd.Send(ctx, bad); !router.IsPermanent(err) {
		t.Fatalf("no session: %v, want permanent", err)
	}
}

func TestHistoryShowsWhatTheVisitorWasToldAndNothingInternal(t *testing.T) {
	f := newFixture(t, nil)
	token := strings.Repeat("k", 43)
	s := chat.SessionID(token)
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	msg := router.Message{ID: "M-1", Channel: router.ChannelChat, SourceID: s + ":m1", Body: "<img src=x onerror=alert(1)>", Customer: router.Customer{Name: "Jan"}}
	f.hist.convs["chat:"+s] = []chat.Conversation{{
		Complaint: router.Complaint{ID: "C-1001"},
		Timeline: []router.Entry{
			{At: at, Message: &msg},
			{At: at, Event: &router.Event{Type: router.EventOpened, Actor: "router", Reason: "new conversation"}},
			{At: at, Event: &router.Event{Type: router.EventAssigned, Actor: "router", Owner: "anna", Reason: "least loaded"}},
			{At: at.Add(time.Minute), Event: &router.Event{Type: router.EventNote, Actor: "anna", Owner: "anna", Text: "customer sounds angry"}},
			{At: at.Add(2 * time.Minute), Event: &router.Event{Type: router.EventReplied, Actor: "bas", Owner: "anna", Text: "Sorry! A new one is on its way."}},
			{At: at.Add(3 * time.Minute), Event: &router.Event{Type: router.EventSent, Actor: "router", Owner: "anna",
				Details: map[string]string{"kind": "reply", "via": "chat"}}},
			// Closed while the visitor was away: the satisfaction question
			// waits here for them (said_at: when it was said, as the live
			// line's id has it).
			{At: at.Add(5 * time.Minute), Event: &router.Event{Type: router.EventSent, Actor: "router", Owner: "anna", Reason: "not sent: the visitor left the chat",
				Text: "How satisfied are you? 5 - https://support.example/csat/C-1001/5", Details: map[string]string{"kind": "csat", "via": "chat", "said_at": "2026-11-23T10:04:00.5Z"}}},
		},
	}}
	_, w := f.open(token)
	hist, _ := w["history"].([]any)
	var texts []string
	for _, h := range hist {
		l := h.(map[string]any)
		texts = append(texts, l["from"].(string)+": "+l["text"].(string))
	}
	want := []string{
		"visitor: <img src=x onerror=alert(1)>", // raw text; the widget renders it as text
		"system: Anna de Vries is now handling your question (reference C-1001) and will answer here.",
		"staff: Sorry! A new one is on its way.",
		"staff: How satisfied are you? 5 - https://support.example/csat/C-1001/5",
	}
	if strings.Join(texts, "\n") != strings.Join(want, "\n") {
		t.Fatalf("history:\n%s\nwant:\n%s", strings.Join(texts, "\n"), strings.Join(want, "\n"))
	}
	if id := hist[0].(map[string]any)["id"]; id != "m1" {
		t.Errorf("visitor line id %v, want the widget's own id m1", id)
	}
	if a := hist[2].(map[string]any)["author"]; a != "Bas Jansen for Anna de Vries" {
		t.Errorf("reply signed %v", a)
	}
	// A Dutch page signs the colleague's answer in Dutch.
	nl, _, err := f.dial(f.url)
	if err != nil {
		t.Fatal(err)
	}
	nl.send(map[string]any{"type": "hello", "token": token, "lang": "nl"})
	if w := nl.read(); w["type"] != "welcome" || w["history"].([]any)[2].(map[string]any)["author"] != "Bas Jansen namens Anna de Vries" {
		t.Errorf("on a Dutch page the reply is signed %v, want Bas Jansen namens Anna de Vries", w["history"].([]any)[2])
	}
	if id := hist[3].(map[string]any)["id"]; id != "csat@2026-11-23T10:04:00.5Z" {
		t.Errorf("satisfaction question's id %v, want the live line's (csat@ the moment it was said)", id)
	}
}

func TestWidgetAndDemoAreServed(t *testing.T) {
	f := newFixture(t, nil)
	for path, want := range map[string]string{"/chat/widget.js": "text/javascript", "/chat/demo": "text/html"} {
		resp, err := http.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	b, _ := os.ReadFile("static/widget.js")
	if strings.Contains(string(b), "innerHTML") || strings.Contains(string(b), "insertAdjacentHTML") {
		t.Error("the widget must set text with textContent only")
	}
}
