package chat_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/forgetmenot/forgetmenot/channels/chat"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/router"
)

// withServerTimeouts runs the chat behind an http.Server with the daemon's
// kind of header and read timeouts (shortened).
func withServerTimeouts(f *fixture, header, read time.Duration) string {
	mux := http.NewServeMux()
	for p, h := range f.srv.Routes() {
		mux.Handle(p, h)
	}
	ts := httptest.NewUnstartedServer(mux)
	ts.Config.ReadHeaderTimeout, ts.Config.ReadTimeout, ts.Config.WriteTimeout = header, read, read
	ts.Start()
	f.t.Cleanup(ts.Close)
	return strings.TrimPrefix(ts.URL, "http://")
}

// closedWithin reads from conn until the server closes it, and reports how
// long that took (a generous ceiling makes a hung server fail the test).
func closedWithin(t *testing.T, conn net.Conn, ceiling time.Duration) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(ceiling))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %s (read so far: %q)", ceiling, b)
	}
	return time.Since(start), string(b)
}

func TestSlowOrPartialUpgradeRequestsAreClosedWithinTheServerTimeouts(t *testing.T) {
	f := newFixture(t, nil)
	addr := withServerTimeouts(f, time.Second, 2*time.Second)
	handshake := "GET /chat/ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	for _, tc := range []struct {
		name, request string
		within        time.Duration // the server's timeout that must cut it
		status        string
	}{
		// The reported attack: a body announced and never sent. A handshake
		// has no body, so it is refused at once.
		{"body announced, never sent", handshake + "Content-Length: 200000\r\n\r\n", 2 * time.Second, "400"},
		{"headers never finished", handshake, time.Second, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.request); err != nil {
				t.Fatal(err)
			}
			took, answer := closedWithin(t, conn, tc.within+5*time.Second)
			t.Logf("closed after %s", took)
			if tc.status != "" && !strings.HasPrefix(answer, "HTTP/1.1 "+tc.status) {
				t.Fatalf("answer %q, want %s", answer, tc.status)
			}
		})
	}
}

func TestSilentSocketsAreClosedWithAReasonAfterTheHelloAndIdleTimeouts(t *testing.T) {
	f := newFixture(t, func(c *chat.Config) { c.HelloTimeout, c.IdleTimeout = 300*time.Millisecond, time.Second })
	read := func(c *conn) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		for {
			if _, _, err := c.c.Read(ctx); err != nil {
				return err
			}
		}
	}
	// Upgraded, never a hello.
	silent, _, err := f.dial(f.url)
	if err != nil {
		t.Fatal(err)
	}
	if err := read(silent); websocket.CloseStatus(err) != chat.StatusHelloTimeout {
		t.Fatalf("silent socket ended with %v, want close %d", err, chat.StatusHelloTimeout)
	}
	// Said hello, then nothing: no frames, no pings.
	idle, _ := f.open("")
	err = read(idle)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != chat.StatusIdle || !strings.Contains(ce.Reason, "without activity") {
		t.Fatalf("idle socket ended with %v, want close %d with a reason", err, chat.StatusIdle)
	}
	// Pings keep a socket alive past the idle timeout.
	alive, _ := f.open("")
	for range 4 {
		time.Sleep(400 * time.Millisecond)
		alive.send(map[string]any{"type": "ping"})
		if r := alive.read(); r["type"] != "pong" {
			t.Fatalf("ping answered %v", r)
		}
	}
}

func TestNewSessionsPerAddressAreLimitedButReturningVisitorsAreNot(t *testing.T) {
	f := newFixture(t, func(c *chat.Config) { c.SessionsPerIPPerMinute = 2 })
	_, w := f.open("")
	token := w["token"].(string)
	f.open("")
	c, _, err := f.dial(f.url)
	if err != nil {
		t.Fatal(err)
	}
	c.send(map[string]any{"type": "hello"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err = c.c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != chat.StatusTooManySessions || !strings.Contains(ce.Reason, "too many new chats") {
		t.Fatalf("third new session: %v, want close %d with a reason", err, chat.StatusTooManySessions)
	}
	if _, w := f.open(token); w["token"] != token {
		t.Fatalf("a returning visitor must still get in: %v", w)
	}
	// A made-up token is well-formed, but no visitor of ours holds it: it
	// counts as a new chat, or anyone could open chats without limit.
	madeUp, _, err := f.dial(f.url)
	if err != nil {
		t.Fatal(err)
	}
	madeUp.send(map[string]any{"type": "hello", "token": strings.Repeat("A", 43)})
	_, _, err = madeUp.c.Read(ctx)
	if !errors.As(err, &ce) || ce.Code != chat.StatusTooManySessions {
		t.Fatalf("a new session with a made-up token: %v, want close %d", err, chat.StatusTooManySessions)
	}
}

func TestConnectionCapsRefuseBeforeTheUpgradeAndStatusSaysWhy(t *testing.T) {
	f := newFixture(t, func(c *chat.Config) { c.MaxConnectionsPerIP = 3 })
	for range 3 {
		if _, _, err := f.dial(f.url); err != nil {
			t.Fatal(err)
		}
	}
	_, resp, err := f.dial(f.url)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth socket from one address: %v %v, want 429", err, resp)
	}
	if st := status(t, f.url, ""); st["state"] != "busy" || !strings.Contains(st["detail"], "at most 3") {
		t.Fatalf("status %v, want busy", st)
	}
}

func status(t *testing.T, base, origin string) map[string]string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/chat/status", nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("the status must be readable from any page (CORS)")
	}
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out
}

func TestOriginsAreNormalisedAtLoadAndARefusedPageIsToldWhyAndLoggedOnce(t *testing.T) {
	for _, bad := range []string{"https://shop.example.com/chat", "ftp://shop.example.com", "https://shop.example.com?x=1", "shop.example.com/x"} {
		if _, err := chat.New(chat.Config{Texts: shippedTexts(t), AllowedOrigins: []string{bad}}); err == nil {
			t.Errorf("origin %q accepted, want an error at load", bad)
		}
	}
	logs := &testkit.LockedBuffer{}
	f := newFixture(t, func(c *chat.Config) {
		c.AllowedOrigins = []string{"https://shop.example.com/", "HTTPS://Help.Example.NET:443", "http://dev.example.com:8080"}
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"https://shop.example.com", true}, // configured with a trailing slash
		{"https://help.example.net", true}, // configured with upper case and the default port
		{"http://dev.example.com:8080", true},
		{"http://dev.example.com", false},
		{"https://evil.example", false},
	} {
		_, resp, err := f.dial(tc.origin)
		if tc.ok != (err == nil) {
			t.Errorf("origin %s: err %v, want allowed=%v", tc.origin, err, tc.ok)
		}
		if !tc.ok && (resp == nil || resp.StatusCode != http.StatusForbidden) {
			t.Errorf("origin %s: %v, want 403", tc.origin, resp)
		}
	}
	for range 5 { // a widget retrying
		_, _, _ = f.dial("https://evil.example")
	}
	if st := status(t, f.url, "https://evil.example"); st["state"] != "not_enabled" {
		t.Fatalf("status for a refused page: %v", st)
	}
	if st := status(t, f.url, "https://shop.example.com"); st["state"] != "ok" {
		t.Fatalf("status for an allowed page: %v", st)
	}
	if n := strings.Count(logs.String(), "origin=https://evil.example"); n != 1 {
		t.Fatalf("the refused origin was logged %d times, want once a minute:\n%s", n, logs)
	}
}

// receipts records seen receipts.
type receipts struct {
	mu   sync.Mutex
	seen []string
}

func (r *receipts) RecordSeen(ctx context.Context, complaintID, ref string, via router.Channel) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, complaintID+" "+ref+" "+string(via))
	return nil
}

func (r *receipts) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func TestSeenReceiptsNameOnlyLinesShownToTheSessionAndLiveRepliesAreWatched(t *testing.T) {
	rec := &receipts{}
	f := newFixture(t, func(c *chat.Config) { c.Receipts, c.UnseenAfter = rec, 10*time.Minute })
	mail := &mailer{}
	snd := f.srv.Sender(func() chat.CustomerSender { return mail })
	c, w := f.open("")
	token := w["token"].(string)

	sent, err := snd.Send(context.Background(), replyTo(token, "jan@example.nl", router.ToCustomerReply))
	if err != nil || sent.Unseen == nil || sent.Unseen.After != 10*time.Minute || sent.Unseen.Via != router.ChannelEmail {
		t.Fatalf("sent %+v %v: a live reply to a visitor with an address is watched", sent, err)
	}
	line := c.read()["line"].(map[string]any)
	id := line["id"].(string)
	other := router.SaidRef(router.ToCustomerReply, time.Now().Add(-time.Hour))
	c.send(map[string]any{"type": "seen", "ids": []string{id, other, id}})
	c.send(map[string]any{"type": "ping"})
	c.read() // the pong: the receipt was handled before it
	if got := rec.list(); len(got) != 1 || got[0] != "C-1001 "+id+" chat" {
		t.Fatalf("receipts %v, want exactly the line shown to this session", got)
	}
	// No address: nothing to fall back on, but still watched, so that the
	// timeline says when it stays unseen (the owner must not take it for
	// read); the router records that there is no address to send it to.
	if sent, _ := snd.Send(context.Background(), replyTo(token, "", router.ToCustomerReply)); sent.Unseen == nil {
		t.Fatalf("sent %+v: a live reply to a visitor without an address must be watched too", sent)
	}
	// The fallback itself goes by e-mail, once, whether or not the visitor is here.
	fb := replyTo(token, "jan@example.nl", router.ToCustomerReply)
	fb.Fallback = router.ChannelEmail
	if sent, err := snd.Send(context.Background(), fb); err != nil || sent.Via != "email" {
		t.Fatalf("fallback: %+v %v, want e-mailed", sent, err)
	}
	if len(mail.sent) != 1 {
		t.Fatalf("%d e-mails, want 1", len(mail.sent))
	}
}

func TestTextsFollowThePageLanguageAndTheVisitorsTimeZone(t *testing.T) {
	f := newFixture(t, func(c *chat.Config) {
		c.Expect = func() router.Expectation {
			return router.Expectation{FirstResponse: router.Span{Hours: 2 * time.Hour}, Working: true}
		}
	})
	token := strings.Repeat("n", 43)
	s := chat.SessionID(token)
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	f.hist.convs["chat:"+s] = []chat.Conversation{{
		Complaint: router.Complaint{ID: "C-1001", Language: "en"},
		Timeline: []router.Entry{
			{At: at, Event: &router.Event{Type: router.EventAssigned, Actor: "router", Owner: "anna"}},
			{At: at.Add(time.Minute), Event: &router.Event{Type: router.EventPromised, Actor: "anna", Owner: "anna", Text: "We bellen de vervoerder.",
				Details: map[string]string{"by": "2026-11-24T15:30:00Z", "via": "chat"}}},
		},
	}}
	c, _, err := f.dial(f.url)
	if err != nil {
		t.Fatal(err)
	}
	c.send(map[string]any{"type": "hello", "token": token, "lang": "nl-BE", "zone": "Europe/Amsterdam"})
	w := c.read()
	if w["lang"] != "nl" || w["greeting"] != "Hallo! Waarmee kunnen we u helpen?" || w["expect"] != "We antwoorden meestal binnen 2 uur." {
		t.Fatalf("welcome %v, want Dutch greeting and answer time", w)
	}
	hist := w["history"].([]any)
	ack := hist[0].(map[string]any)["text"].(string)
	promise := hist[1].(map[string]any)["text"].(string)
	if ack != "Anna de Vries behandelt uw vraag (referentie C-1001) en antwoordt hier." {
		t.Errorf("acknowledgement %q", ack)
	}
	// 15:30 UTC is 16:30 in Amsterdam, on a Tuesday.
	if promise != "We bellen de vervoerder.\nU hoort uiterlijk dinsdag 24 november 16:30 van ons." {
		t.Errorf("promise %q", promise)
	}
	// A bad zone or an unknown language falls back to UTC and English.
	c2, _, _ := f.dial(f.url)
	c2.send(map[string]any{"type": "hello", "token": token, "lang": "xx", "zone": "../../etc/passwd"})
	w2 := c2.read()
	if p := w2["history"].([]any)[1].(map[string]any)["text"].(string); !strings.Contains(p, "You will hear from us by Tuesday 24 November 15:30") {
		t.Errorf("fallback promise %q", p)
	}
}

func TestWidgetCarriesTheTextsOfEveryLanguage(t *testing.T) {
	f := newFixture(t, nil)
	resp, err := http.Get(f.url + "/chat/widget.js")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(bufio.NewReader(resp.Body))
	for _, want := range []string{`"not_enabled":"Deze chat is niet ingeschakeld voor deze site."`, `"open":"Discutez avec nous"`, `"send":"Senden"`, "MAX_BYTES = 200;"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("widget.js lacks %s", want)
		}
	}
}

func TestGreetingSaysWhenTheTeamIsBackInTheVisitorsZone(t *testing.T) {
	back := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC) // Monday 09:00 in Amsterdam
	f := newFixture(t, func(c *chat.Config) {
		c.Expect = func() router.Expectation { return router.Expectation{Working: false, Back: back} }
	})
	for _, tc := range []struct{ lang, zone, want string }{
		{"nl", "Europe/Amsterdam", "terug op maandag 09:00"},
		{"de", "Europe/Berlin", "ab Montag, 09:00 Uhr"},
		{"en", "America/New_York", "back Monday 03:00"},
		{"fr", "Europe/Paris", "de retour lundi à 09:00"},
	} {
		c, _, err := f.dial(f.url)
		if err != nil {
			t.Fatal(err)
		}
		c.send(map[string]any{"type": "hello", "lang": tc.lang, "zone": tc.zone})
		if w := c.read(); !strings.Contains(w["expect"].(string), tc.want) {
			t.Errorf("%s: greeting %q, want %q", tc.lang, w["expect"], tc.want)
		}
	}
}
