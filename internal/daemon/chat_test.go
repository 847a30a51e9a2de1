package daemon_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
)

func withChat(c *configs.Config) {
	c.ChatEnabled, c.ChatMaxMessageBytes, c.ChatRatePerMinute, c.ChatIPRatePerMinute = true, 4000, 20, 60
}

// ownerName is the display name of the complaint's owner on the shipped roster.
func ownerName(t *testing.T, r *running, id string) (string, string) {
	t.Helper()
	_, detail := r.call("GET", "/v1/complaints/"+id, nil, "")
	owner := detail["complaint"].(map[string]any)["owner"].(string)
	roster, err := configs.LoadRoster("../../configs/owners.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o, _ := roster.Owner(owner)
	return owner, o.Name
}

func openComplaint(t *testing.T, r *running) string {
	t.Helper()
	_, list := r.call("GET", "/v1/complaints?status=open", nil, "")
	cs, _ := list["complaints"].([]any)
	if len(cs) != 1 {
		t.Fatalf("open complaints: %v, want exactly 1", list)
	}
	return cs[0].(map[string]any)["id"].(string)
}

type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func dialChat(t *testing.T, r *running) *wsClient {
	t.Helper()
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(r.base, "http")+"/chat/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: t, c: c}
}

func (w *wsClient) send(v any) {
	b, _ := json.Marshal(v)
	if err := w.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsClient) read() map[string]any {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, b, err := w.c.Read(ctx)
	if err != nil {
		w.t.Fatalf("reading a frame: %v", err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func TestChatComplaintIsAssignedAnsweredLiveAndRememberedOnReturn(t *testing.T) {
	// Also on the embedded in-memory Redis: the chat works with nothing configured.
	t.Run("real redis", func(t *testing.T) { chatRoundTrip(t, testredis.URL(t)) })
	t.Run("embedded", func(t *testing.T) { chatRoundTrip(t, "") })
}

func chatRoundTrip(t *testing.T, redisURL string) {
	r := start(t, redisURL, withChat)
	ws := dialChat(t, r)
	ws.send(map[string]any{"type": "hello"})
	token := ws.read()["token"].(string)
	ws.send(map[string]any{"type": "message", "id": "m1", "text": "The lamp I bought flickers all the time.", "name": "Sam"})
	ack := ws.read()
	if ack["type"] != "ack" {
		t.Fatalf("ack: %v", ack)
	}
	id := r.routed(ack["message_id"].(string), "")["complaint_id"].(string)
	_, name := ownerName(t, r, id)

	sys := ws.read()
	if l := sys["line"].(map[string]any); sys["type"] != "line" || l["from"] != "system" || !strings.Contains(l["text"].(string), name) || !strings.Contains(l["text"].(string), id) {
		t.Fatalf("acknowledgement %v, want a system line naming %s and %s", sys, name, id)
	}
	if code, res := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": "Please try another bulb first."}, ""); code != 200 {
		t.Fatalf("reply: %d %v", code, res)
	}
	reply := ws.read()["line"].(map[string]any)
	if reply["from"] != "staff" || reply["text"] != "Please try another bulb first." || reply["author"] != name {
		t.Fatalf("live reply %v", reply)
	}

	// The visitor comes back later: same token, the whole conversation, and
	// the new message lands on the same complaint.
	ws.c.Close(websocket.StatusNormalClosure, "")
	again := dialChat(t, r)
	again.send(map[string]any{"type": "hello", "token": token})
	w := again.read()
	var got []string
	for _, h := range w["history"].([]any) {
		l := h.(map[string]any)
		got = append(got, l["from"].(string)+"|"+l["id"].(string))
	}
	if len(got) != 3 || got[0] != "visitor|m1" || got[1] != "system|"+sys["line"].(map[string]any)["id"].(string) || got[2] != "staff|"+reply["id"].(string) {
		t.Fatalf("history %v, want the message, the acknowledgement and the reply with their live ids", got)
	}
	again.send(map[string]any{"type": "message", "id": "m2", "text": "Another bulb did not help."})
	if st := r.routed(again.read()["message_id"].(string), ""); st["complaint_id"] != id {
		t.Fatalf("follow-up landed on %v, want %s", st["complaint_id"], id)
	}
}

// chromiumPath finds the browser for the end-to-end test; under CI its
// absence fails the test (scripts/test installs it).
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed: the chat end-to-end test needs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed; set CI=1 to make this a failure")
	return ""
}

// TestChatWidgetInRealChromium opens the demo page in headless Chromium,
// complains through the widget, sees the owner named, gets the owner's reply
// live, and sees the conversation again after a reload.
func TestChatWidgetInRealChromium(t *testing.T) {
	browser := chromiumPath(t)
	r := start(t, testredis.URL(t), withChat)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	const root = `document.querySelector('#forgetmenot-chat').shadowRoot`
	lineText := func(class string) string {
		return `Array.from(` + root + `.querySelectorAll('.line.` + class + ` .text')).map(e => e.textContent).join('\n')`
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(r.base+"/chat/demo"),
		chromedp.Poll[chromedp.Void](`(() => { const h = document.querySelector('#forgetmenot-chat'); return !!h && !h.shadowRoot.querySelector('.panel').hidden && h.shadowRoot.querySelector('.status').textContent === '' })()`),
		chromedp.SendKeys(chromedp.JSPath(root+`.querySelector('input[name=name]')`), "Sam Visitor"),
		chromedp.SendKeys(chromedp.JSPath(root+`.querySelector('textarea')`), "My new <i>lamp</i> flickers & buzzes."),
		chromedp.Click(chromedp.JSPath(root+`.querySelector('form.send button')`)),
	); err != nil {
		t.Fatalf("opening the demo and sending: %v\nlog:\n%s", err, r.log)
	}

	system, err := chromedp.Run(ctx, chromedp.Poll[string](lineText("system")+` || false`))
	if err != nil {
		t.Fatalf("waiting for the assignment line: %v\nlog:\n%s", err, r.log)
	}
	id := openComplaint(t, r)
	_, name := ownerName(t, r, id)
	if !strings.Contains(system, name) || !strings.Contains(system, id) {
		t.Fatalf("system line %q, want it to name owner %s and %s", system, name, id)
	}
	_, detail := r.call("GET", "/v1/complaints/"+id, nil, "")
	if c := detail["complaint"].(map[string]any); c["channel"] != "chat" || c["customer"].(map[string]any)["name"] != "Sam Visitor" {
		t.Fatalf("complaint %v", c)
	}

	const answer = "Sorry, Sam! <b>A new lamp</b> ships today."
	if code, res := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": answer}, ""); code != 200 {
		t.Fatalf("reply: %d %v", code, res)
	}
	staff, err := chromedp.Run(ctx, chromedp.Poll[string](lineText("staff")+` || false`))
	if err != nil {
		t.Fatalf("waiting for the reply: %v", err)
	}
	injected, err := chromedp.Run(ctx, chromedp.Evaluate[bool](root+`.querySelector('.log b, .log i') !== null`))
	if err != nil {
		t.Fatal(err)
	}
	if staff != answer || injected {
		t.Fatalf("reply shown as %q (markup injected: %v), want the text exactly as written", staff, injected)
	}

	// Reload: the session token in localStorage brings the conversation back.
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	lines, err := chromedp.Run(ctx, chromedp.Poll[[]string](`(() => { const h = document.querySelector('#forgetmenot-chat'); if (!h) return false; const ls = Array.from(h.shadowRoot.querySelectorAll('.line')); return ls.length >= 3 && h.shadowRoot.querySelector('.status').textContent === '' && ls.map(e => e.className + ': ' + e.querySelector('.text').textContent) })()`))
	if err != nil {
		t.Fatalf("waiting for the history after a reload: %v", err)
	}
	want := []string{"line visitor: My new <i>lamp</i> flickers & buzzes.", "line system: " + system, "line staff: " + answer}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after reload:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
