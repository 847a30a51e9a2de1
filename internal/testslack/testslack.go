// Package testslack is a Slack workspace for tests: slack-go's slacktest
// server with the Web API methods forgetmenot uses (conversations.open,
// chat.postMessage, chat.update, chat.postEphemeral, views.open,
// users.lookupByEmail, users.info, reactions.add) answering like Slack and
// recording every call, plus injected failures (429 with Retry-After, error
// codes). It also signs requests the way Slack does.
package testslack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
)

// Post is one chat.postMessage, chat.update or chat.postEphemeral.
type Post struct {
	Method   string
	Channel  string
	TS       string
	ThreadTS string
	User     string // ephemeral: who sees it
	Text     string
	Blocks   string // the blocks JSON as sent
}

// View is one views.open.
type View struct {
	TriggerID string
	View      map[string]any
}

// failure is an injected answer for the next call(s) of a method.
type failure struct {
	status     int
	retryAfter int
	code       string
}

// Workspace is the fake Slack.
type Workspace struct {
	srv *slacktest.Server

	mu        sync.Mutex
	users     map[string]string // email → user id
	emails    map[string]string // user id → email
	seq       int
	posts     []Post
	views     []View
	reactions []string
	calls     map[string]int
	fail      map[string][]failure
}

// New starts a workspace; users maps e-mail addresses to Slack user ids.
func New(t testing.TB, users map[string]string) *Workspace {
	t.Helper()
	w := &Workspace{users: map[string]string{}, emails: map[string]string{}, calls: map[string]int{}, fail: map[string][]failure{}}
	for e, id := range users {
		w.users[strings.ToLower(e)] = id
		w.emails[id] = e
	}
	w.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/conversations.open", w.handle("conversations.open", w.open))
		c.Handle("/chat.postMessage", w.handle("chat.postMessage", w.post))
		c.Handle("/chat.update", w.handle("chat.update", w.update))
		c.Handle("/chat.postEphemeral", w.handle("chat.postEphemeral", w.ephemeral))
		c.Handle("/views.open", w.handle("views.open", w.viewsOpen))
		c.Handle("/users.lookupByEmail", w.handle("users.lookupByEmail", w.lookup))
		c.Handle("/users.info", w.handle("users.info", w.userInfo))
		c.Handle("/reactions.add", w.handle("reactions.add", w.react))
		c.Handle("/auth.test", w.handle("auth.test", func(url.Values, []byte) any {
			return map[string]any{"ok": true, "user_id": "UBOT", "team_id": "T1", "bot_id": "BBOT"}
		}))
	})
	w.srv.Start()
	t.Cleanup(w.srv.Stop)
	return w
}

// URL is the Web API base URL to give the client.
func (w *Workspace) URL() string { return w.srv.GetAPIURL() }

// Fail makes the next n calls of method fail: with HTTP 429 and Retry-After
// when retryAfter > 0, else with {"ok":false,"error":code}.
func (w *Workspace) Fail(method string, n int, retryAfter int, code string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for range n {
		w.fail[method] = append(w.fail[method], failure{status: http.StatusTooManyRequests, retryAfter: retryAfter, code: code})
	}
}

func (w *Workspace) handle(method string, f func(form url.Values, raw []byte) any) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		w.mu.Lock()
		w.calls[method]++
		var fl *failure
		if q := w.fail[method]; len(q) > 0 {
			fl, w.fail[method] = &q[0], q[1:]
		}
		w.mu.Unlock()
		rw.Header().Set("Content-Type", "application/json")
		if fl != nil {
			if fl.retryAfter > 0 {
				rw.Header().Set("Retry-After", strconv.Itoa(fl.retryAfter))
				rw.WriteHeader(http.StatusTooManyRequests)
				_, _ = rw.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
				return
			}
			_ = json.NewEncoder(rw).Encode(map[string]any{"ok": false, "error": fl.code})
			return
		}
		_ = json.NewEncoder(rw).Encode(f(form, raw))
	}
}

func (w *Workspace) nextTS() string {
	w.seq++
	return fmt.Sprintf("1700000000.%06d", w.seq)
}

func (w *Workspace) open(form url.Values, _ []byte) any {
	users := form.Get("users")
	if users == "" || strings.Contains(users, ",") {
		return map[string]any{"ok": false, "error": "invalid_arguments"}
	}
	return map[string]any{"ok": true, "channel": map[string]any{"id": "D" + users}}
}

func (w *Workspace) post(form url.Values, _ []byte) any {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := Post{Method: "chat.postMessage", Channel: form.Get("channel"), ThreadTS: form.Get("thread_ts"),
		Text: form.Get("text"), Blocks: form.Get("blocks"), TS: w.nextTS()}
	w.posts = append(w.posts, p)
	return map[string]any{"ok": true, "channel": p.Channel, "ts": p.TS}
}

func (w *Workspace) update(form url.Values, _ []byte) any {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := Post{Method: "chat.update", Channel: form.Get("channel"), TS: form.Get("ts"), Text: form.Get("text"), Blocks: form.Get("blocks")}
	found := false
	for _, q := range w.posts {
		if q.Method == "chat.postMessage" && q.Channel == p.Channel && q.TS == p.TS {
			found = true
		}
	}
	if !found {
		return map[string]any{"ok": false, "error": "message_not_found"}
	}
	w.posts = append(w.posts, p)
	return map[string]any{"ok": true, "channel": p.Channel, "ts": p.TS}
}

func (w *Workspace) ephemeral(form url.Values, _ []byte) any {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := Post{Method: "chat.postEphemeral", Channel: form.Get("channel"), User: form.Get("user"), Text: form.Get("text"), Blocks: form.Get("blocks")}
	w.posts = append(w.posts, p)
	return map[string]any{"ok": true, "message_ts": w.nextTS()}
}

func (w *Workspace) viewsOpen(_ url.Values, raw []byte) any {
	var req struct {
		TriggerID string         `json:"trigger_id"`
		View      map[string]any `json:"view"`
	}
	if err := json.Unmarshal(raw, &req); err != nil || req.TriggerID == "" {
		return map[string]any{"ok": false, "error": "invalid_arguments"}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.views = append(w.views, View{TriggerID: req.TriggerID, View: req.View})
	v := req.View
	v["id"] = fmt.Sprintf("V%04d", len(w.views))
	return map[string]any{"ok": true, "view": v}
}

func (w *Workspace) lookup(form url.Values, _ []byte) any {
	w.mu.Lock()
	defer w.mu.Unlock()
	id, ok := w.users[strings.ToLower(form.Get("email"))]
	if !ok {
		return map[string]any{"ok": false, "error": "users_not_found"}
	}
	return map[string]any{"ok": true, "user": map[string]any{"id": id, "profile": map[string]any{"email": form.Get("email")}}}
}

func (w *Workspace) userInfo(form url.Values, _ []byte) any {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := form.Get("user")
	email, ok := w.emails[id]
	if !ok {
		return map[string]any{"ok": true, "user": map[string]any{"id": id, "profile": map[string]any{}}}
	}
	return map[string]any{"ok": true, "user": map[string]any{"id": id, "profile": map[string]any{"email": email}}}
}

func (w *Workspace) react(form url.Values, _ []byte) any {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reactions = append(w.reactions, form.Get("name")+" "+form.Get("channel")+" "+form.Get("timestamp"))
	return map[string]any{"ok": true}
}

// Posts returns the recorded messages of one method ("" for all).
func (w *Workspace) Posts(method string) []Post {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Post
	for _, p := range w.posts {
		if method == "" || p.Method == method {
			out = append(out, p)
		}
	}
	return out
}

// Views returns the opened modals.
func (w *Workspace) Views() []View {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]View(nil), w.views...)
}

// Reactions returns "name channel ts" of every reaction added.
func (w *Workspace) Reactions() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.reactions...)
}

// Calls counts the calls of a method, failed ones included.
func (w *Workspace) Calls(method string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[method]
}

// Sign returns the headers Slack sends with a request body: the timestamp and
// the v0 HMAC-SHA256 signature.
func Sign(secret string, body []byte, at time.Time) http.Header {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return h
}

// InteractionBody is the form body Slack posts to the interactivity URL.
func InteractionBody(payload any) []byte {
	raw, _ := json.Marshal(payload)
	return []byte(url.Values{"payload": {string(raw)}}.Encode())
}
