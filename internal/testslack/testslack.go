// Package testslack is a Slack workspace for tests: slack-go's slacktest
// server with the Web API methods forgetmenot uses (conversations.open,
// chat.postMessage, chat.update, chat.postEphemeral, views.open,
// views.update, views.publish, users.lookupByEmail, users.info,
// reactions.add) answering like Slack and recording every call, plus
// injected failures (429 with Retry-After, error codes). It also signs
// requests the way Slack does.
//
// It enforces Slack's contract (CONTRACTS.md, encoded in blockkit): a
// message or view that breaks a documented limit, an unknown block type, a
// message without its text fallback, a post to a channel the app is not in
// or a DM with an unknown user is refused with Slack's error shape
// ({"ok":false,"error":"invalid_blocks","response_metadata":{"messages":[…]}}),
// and the refused call is recorded as refused, not as sent.
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

	"github.com/forgetmenot/forgetmenot/channels/slack/blockkit"
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

// View is one views.open, views.update or views.publish.
type View struct {
	Method    string
	TriggerID string
	UserID    string // views.publish: whose App Home
	ViewID    string // views.update
	View      map[string]any
}

// Refusal is a call the workspace refused because it broke the contract.
type Refusal struct {
	Method   string
	Code     string
	Messages []string
}

// failure is an injected answer for the next call(s) of a method.
type failure struct {
	status     int
	retryAfter int
	code       string
	channel    string // "": any call of the method
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
	published []View
	refused   []Refusal
	channels  map[string]bool
	reactions []string
	calls     map[string]int
	fail      map[string][]failure
	delay     map[string]time.Duration
}

// New starts a workspace; users maps e-mail addresses to Slack user ids.
func New(t testing.TB, users map[string]string) *Workspace {
	t.Helper()
	w := &Workspace{users: map[string]string{}, emails: map[string]string{}, calls: map[string]int{}, fail: map[string][]failure{}, channels: map[string]bool{}, delay: map[string]time.Duration{}}
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
		c.Handle("/views.update", w.handle("views.update", w.viewsUpdate))
		c.Handle("/views.publish", w.handle("views.publish", w.viewsPublish))
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

// AddChannel makes a channel (the lead channel) one the app is a member of;
// posting anywhere else is channel_not_found.
func (w *Workspace) AddChannel(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.channels[id] = true
}

// refuse records and answers a contract violation in Slack's error shape.
func (w *Workspace) refuse(method string, err error) any {
	code, msgs := "invalid_arguments", []string{err.Error()}
	if be, ok := err.(*blockkit.Error); ok {
		code, msgs = be.Code, be.Messages
	}
	w.refused = append(w.refused, Refusal{Method: method, Code: code, Messages: msgs})
	return slackError(code, msgs...)
}

func slackError(code string, messages ...string) map[string]any {
	out := map[string]any{"ok": false, "error": code}
	if len(messages) > 0 {
		out["errors"] = messages
		out["response_metadata"] = map[string]any{"messages": messages}
	}
	return out
}

// knownChannel reports whether the app may post in ch: a DM it opened with a
// user of the workspace, or an added channel. Call with w.mu held.
func (w *Workspace) knownChannel(ch string) bool {
	if w.channels[ch] {
		return true
	}
	_, ok := w.emails[strings.TrimPrefix(ch, "D")]
	return strings.HasPrefix(ch, "D") && ok
}

// checkMessage enforces the message contract on a chat.* call. Call with
// w.mu held.
func (w *Workspace) checkMessage(method string, form url.Values) any {
	if !w.knownChannel(form.Get("channel")) {
		return w.refuse(method, &blockkit.Error{Code: "channel_not_found", Messages: []string{"no channel " + form.Get("channel")}})
	}
	if err := blockkit.CheckMessage(form.Get("text"), []byte(form.Get("blocks"))); err != nil {
		return w.refuse(method, err)
	}
	return nil
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

// FailIn is Fail for the calls of method about one channel only (posts to
// the lead channel, say, while DMs go through).
func (w *Workspace) FailIn(method, channel string, n int, code string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for range n {
		w.fail[method] = append(w.fail[method], failure{code: code, channel: channel})
	}
}

// Delay makes every later call of method take d before it is answered (a
// slow Slack); 0 ends it.
func (w *Workspace) Delay(method string, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.delay[method] = d
}

func (w *Workspace) handle(method string, f func(form url.Values, raw []byte) any) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		w.mu.Lock()
		d := w.delay[method]
		w.mu.Unlock()
		if d > 0 {
			time.Sleep(d)
		}
		w.mu.Lock()
		w.calls[method]++
		var fl *failure
		q := w.fail[method]
		for i := range q {
			if q[i].channel == "" || q[i].channel == channelOf(form, raw) {
				fl = &q[i]
				w.fail[method] = append(q[:i:i], q[i+1:]...)
				break
			}
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
			_ = json.NewEncoder(rw).Encode(slackError(fl.code))
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
		return slackError("invalid_arguments")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.emails[users]; !ok {
		return w.refuse("conversations.open", &blockkit.Error{Code: "user_not_found", Messages: []string{"no user " + users}})
	}
	return map[string]any{"ok": true, "channel": map[string]any{"id": "D" + users}}
}

func (w *Workspace) post(form url.Values, _ []byte) any {
	w.mu.Lock()
	defer w.mu.Unlock()
	if refused := w.checkMessage("chat.postMessage", form); refused != nil {
		return refused
	}
	p := Post{Method: "chat.postMessage", Channel: form.Get("channel"), ThreadTS: form.Get("thread_ts"),
		Text: form.Get("text"), Blocks: form.Get("blocks"), TS: w.nextTS()}
	w.posts = append(w.posts, p)
	return map[string]any{"ok": true, "channel": p.Channel, "ts": p.TS}
}

func (w *Workspace) update(form url.Values, _ []byte) any {
	w.mu.Lock()
	defer w.mu.Unlock()
	if refused := w.checkMessage("chat.update", form); refused != nil {
		return refused
	}
	p := Post{Method: "chat.update", Channel: form.Get("channel"), TS: form.Get("ts"), Text: form.Get("text"), Blocks: form.Get("blocks")}
	found := false
	for _, q := range w.posts {
		if q.Method == "chat.postMessage" && q.Channel == p.Channel && q.TS == p.TS {
			found = true
		}
	}
	if !found {
		return slackError("message_not_found")
	}
	w.posts = append(w.posts, p)
	return map[string]any{"ok": true, "channel": p.Channel, "ts": p.TS}
}

func (w *Workspace) ephemeral(form url.Values, _ []byte) any {
	w.mu.Lock()
	defer w.mu.Unlock()
	if refused := w.checkMessage("chat.postEphemeral", form); refused != nil {
		return refused
	}
	if _, ok := w.emails[form.Get("user")]; !ok {
		return w.refuse("chat.postEphemeral", &blockkit.Error{Code: "user_not_found", Messages: []string{"no user " + form.Get("user")}})
	}
	p := Post{Method: "chat.postEphemeral", Channel: form.Get("channel"), User: form.Get("user"), Text: form.Get("text"), Blocks: form.Get("blocks")}
	w.posts = append(w.posts, p)
	return map[string]any{"ok": true, "message_ts": w.nextTS()}
}

// viewRequest is the JSON body of the views.* methods.
type viewRequest struct {
	TriggerID  string          `json:"trigger_id"`
	UserID     string          `json:"user_id"`
	ViewID     string          `json:"view_id"`
	ExternalID string          `json:"external_id"`
	View       json.RawMessage `json:"view"`
}

// checkView decodes and enforces the view contract; kind is the view type
// the method takes. Call with w.mu held.
func (w *Workspace) checkView(method, kind string, raw []byte) (viewRequest, map[string]any, any) {
	var req viewRequest
	if err := json.Unmarshal(raw, &req); err != nil || len(req.View) == 0 {
		return req, nil, w.refuse(method, &blockkit.Error{Code: "invalid_arguments", Messages: []string{"[ERROR] missing view [json-pointer:/view]"}})
	}
	if err := blockkit.CheckView(req.View); err != nil {
		return req, nil, w.refuse(method, err)
	}
	var v map[string]any
	_ = json.Unmarshal(req.View, &v)
	if v["type"] != kind {
		return req, nil, w.refuse(method, &blockkit.Error{Code: "invalid_arguments", Messages: []string{fmt.Sprintf("[ERROR] %s takes a %s view [json-pointer:/view/type]", method, kind)}})
	}
	return req, v, nil
}

func (w *Workspace) viewsOpen(_ url.Values, raw []byte) any {
	w.mu.Lock()
	defer w.mu.Unlock()
	req, v, refused := w.checkView("views.open", "modal", raw)
	if refused != nil {
		return refused
	}
	if req.TriggerID == "" {
		return w.refuse("views.open", &blockkit.Error{Code: "invalid_trigger_id"})
	}
	w.views = append(w.views, View{Method: "views.open", TriggerID: req.TriggerID, View: v})
	v["id"] = fmt.Sprintf("V%04d", len(w.views))
	return map[string]any{"ok": true, "view": v}
}

func (w *Workspace) viewsUpdate(_ url.Values, raw []byte) any {
	w.mu.Lock()
	defer w.mu.Unlock()
	req, v, refused := w.checkView("views.update", "modal", raw)
	if refused != nil {
		return refused
	}
	if req.ViewID == "" && req.ExternalID == "" {
		return w.refuse("views.update", &blockkit.Error{Code: "invalid_arguments", Messages: []string{"view_id or external_id is required"}})
	}
	w.views = append(w.views, View{Method: "views.update", ViewID: req.ViewID, View: v})
	v["id"] = req.ViewID
	return map[string]any{"ok": true, "view": v}
}

func (w *Workspace) viewsPublish(_ url.Values, raw []byte) any {
	w.mu.Lock()
	defer w.mu.Unlock()
	req, v, refused := w.checkView("views.publish", "home", raw)
	if refused != nil {
		return refused
	}
	if _, ok := w.emails[req.UserID]; !ok {
		return w.refuse("views.publish", &blockkit.Error{Code: "user_not_found", Messages: []string{"no user " + req.UserID}})
	}
	w.published = append(w.published, View{Method: "views.publish", UserID: req.UserID, View: v})
	v["id"] = fmt.Sprintf("VH%04d", len(w.published))
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

// Published returns the App Home views published, oldest first (user ""
// for all).
func (w *Workspace) Published(user string) []View {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []View
	for _, v := range w.published {
		if user == "" || v.UserID == user {
			out = append(out, v)
		}
	}
	return out
}

// Refused returns the calls refused for breaking the contract.
func (w *Workspace) Refused() []Refusal {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Refusal(nil), w.refused...)
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

// channelOf is the channel a call names, in its form or its JSON body.
func channelOf(form url.Values, raw []byte) string {
	if c := form.Get("channel"); c != "" {
		return c
	}
	var body struct {
		Channel string `json:"channel"`
	}
	_ = json.Unmarshal(raw, &body)
	return body.Channel
}
