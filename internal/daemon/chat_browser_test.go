package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/redis/go-redis/v9"
)

const shadow = `document.querySelector('#forgetmenot-chat').shadowRoot`

func lineTexts(class string) string {
	return `Array.from(` + shadow + `.querySelectorAll('.line.` + class + ` .text')).map(e => e.textContent).join('\n')`
}

// widgetReady waits until the widget is open and connected.
var widgetReady = chromedp.Poll[chromedp.Void](`(() => { const h = document.querySelector('#forgetmenot-chat'); return !!h && !h.shadowRoot.querySelector('.panel').hidden && h.shadowRoot.querySelector('.status').textContent === '' })()`)

// fresh clears what an earlier tab of the same origin left in localStorage,
// then opens path.
func fresh(base, path string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(base+"/chat/status"),
		chromedp.Evaluate[chromedp.Void](`localStorage.clear()`),
		chromedp.Navigate(base+path),
	)
}

// timelineHas reports whether the complaint's timeline has an event of typ
// whose details match.
func timelineHas(r *running, id, typ string, details map[string]string) bool {
	_, detail := r.call("GET", "/v1/complaints/"+id, nil, "")
	tl, _ := detail["timeline"].([]any)
	for _, e := range tl {
		ev, _ := e.(map[string]any)["event"].(map[string]any)
		if ev == nil || ev["type"] != typ {
			continue
		}
		d, _ := ev["details"].(map[string]any)
		ok := true
		for k, v := range details {
			ok = ok && d[k] == v
		}
		if ok {
			return true
		}
	}
	return false
}

// TestChatWidgetInRealChromium drives the widget in headless Chromium, one
// browser for every scenario: a complaint answered live and remembered after
// a reload; a Dutch page with the unread badge, the blinking title, the seen
// receipt and the e-mail for a reply left unseen; a page not allowed to
// embed the chat; the layout at 375 px.
func TestChatWidgetInRealChromium(t *testing.T) {
	browser := chromiumPath(t)
	smtpSrv := emailtest.StartSMTP(t, nil)
	redisURL := ownRedis(t) // one subtest cuts the pub/sub connections
	r := start(t, redisURL, withChat, func(c *configs.Config) {
		c.SMTPHost, c.SMTPPort, c.SMTPTLS = smtpSrv.Host, smtpSrv.Port, "none"
		c.SMTPFrom = "Klantenservice <support@winkel.example>"
		c.EmailTemplates = "../../configs/email-templates"
		c.TargetsFile = "../../configs/targets.yaml"
		c.ChatUnseenEmailAfter = configs.Duration(2 * time.Second)
		c.TimerPoll = configs.Duration(200 * time.Millisecond)
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil { // start the browser once
		t.Fatal(err)
	}
	tab := func(t *testing.T) context.Context {
		ctx, cancel := chromedp.NewContext(browserCtx)
		t.Cleanup(cancel)
		ctx, cancel2 := context.WithTimeout(ctx, 60*time.Second)
		t.Cleanup(cancel2)
		return ctx
	}

	t.Run("answered live and remembered after a reload", func(t *testing.T) { chatAnsweredLive(t, tab(t), r) })
	t.Run("Dutch page, badge, title, seen receipt, unseen reply e-mailed", func(t *testing.T) { chatUnreadSeenAndEmailed(t, tab(t), r, smtpSrv) })
	t.Run("a reply given while live lines were interrupted still shows", func(t *testing.T) { chatLiveInterrupted(t, tab(t), r, redisURL) })
	t.Run("a reply seen in one tab is seen in the other", func(t *testing.T) { chatTwoTabs(t, tab(t), tab(t), r) })
	t.Run("a typo in the address keeps the message to send again", func(t *testing.T) { chatTypoInAddress(t, tab(t), r) })
	t.Run("a page not allowed to embed the chat is told so", func(t *testing.T) { chatRefusedOrigin(t, tab(t), r) })
	t.Run("fits a 375 px phone", func(t *testing.T) { chatAt375px(t, tab(t), r) })
}

func chatAnsweredLive(t *testing.T, ctx context.Context, r *running) {
	system, id := openChatAndSend(t, ctx, r, "Sam Visitor", "My new <i>lamp</i> flickers & buzzes.")
	_, name := ownerName(t, r, id)
	if !strings.Contains(system, name) || id == "" || !strings.Contains(system, "is now handling your question") {
		t.Fatalf("system line %q, want it to name the owner %s and the reference", system, name)
	}
	_, detail := r.call("GET", "/v1/complaints/"+id, nil, "")
	if c := detail["complaint"].(map[string]any); c["channel"] != "chat" || c["customer"].(map[string]any)["name"] != "Sam Visitor" {
		t.Fatalf("complaint %v", c)
	}

	const answer = "Sorry, Sam! <b>A new lamp</b> ships today."
	if code, res := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": answer}, ""); code != 200 {
		t.Fatalf("reply: %d %v", code, res)
	}
	staff, err := chromedp.Run(ctx, chromedp.Poll[string](lineTexts("staff")+` || false`))
	if err != nil {
		t.Fatalf("waiting for the reply: %v", err)
	}
	injected, err := chromedp.Run(ctx, chromedp.Evaluate[bool](shadow+`.querySelector('.log b, .log i') !== null`))
	if err != nil {
		t.Fatal(err)
	}
	if staff != answer || injected {
		t.Fatalf("reply shown as %q (markup injected: %v), want the text exactly as written", staff, injected)
	}
	stamps, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(`+shadow+`.querySelectorAll('.line time')).map(e => e.textContent)`))
	if err != nil || len(stamps) < 3 || stamps[0] == "" {
		t.Fatalf("timestamps %v %v, want one per line", stamps, err)
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

// chatTwoTabs: the same visitor in two tabs, one with the chat open, one
// minimised. A reply shows in both; once the open tab has it on screen,
// the other tab's badge and blinking title stop too.
func chatTwoTabs(t *testing.T, open, minimised context.Context, r *running) {
	q := func(sel string) chromedp.JSPath { return chromedp.JSPath(shadow + `.querySelector('` + sel + `')`) }
	_, id := openChatAndSend(t, open, r, "", "The kettle whistles without water.")
	// The second tab shares the browser's storage: the same visitor.
	if err := chromedp.Do(minimised, chromedp.Navigate(r.base+"/chat/demo"), widgetReady, chromedp.Click(q(".head button"))); err != nil {
		t.Fatal(err)
	}
	if code, res := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": "Please unplug it for now."}, ""); code != 200 {
		t.Fatalf("reply: %d %v", code, res)
	}
	testkit.WaitFor(t, "the reply seen in the open tab", func() bool { return timelineHas(r, id, "seen", map[string]string{"kind": "reply", "via": "chat"}) })
	if _, err := chromedp.Run(minimised, chromedp.Poll[bool](`(() => { const s = `+shadow+`; return s.querySelectorAll('.line.staff').length === 1 && s.querySelector('.badge').hidden && !document.title.startsWith('(') })()`)); err != nil {
		state, _ := chromedp.Run(minimised, chromedp.Evaluate[string](`(() => { const s = `+shadow+`; return s.querySelector('.badge').textContent + ' / ' + document.title })()`))
		t.Fatalf("the minimised tab still shows the reply as unread (%s): %v", state, err)
	}
}

// chatTypoInAddress: an address without its @ is caught before anything is
// sent, the visitor is told, the typed message stays in the box and the
// address field is in view; after the correction it goes out as usual.
func chatTypoInAddress(t *testing.T, ctx context.Context, r *running) {
	const msg = "My coffee machine leaks water."
	if err := chromedp.Do(ctx,
		fresh(r.base, "/chat/demo"),
		widgetReady,
		chromedp.SendKeys(chromedp.JSPath(shadow+`.querySelector('input[name=email]')`), "jan.gmail.com"),
		chromedp.SendKeys(chromedp.JSPath(shadow+`.querySelector('textarea')`), msg),
		chromedp.Click(chromedp.JSPath(shadow+`.querySelector('form.send button')`)),
	); err != nil {
		t.Fatalf("sending with a typo in the address: %v", err)
	}
	type state struct {
		Error string `json:"error"`
		Kept  string `json:"kept"`
		Shown bool   `json:"shown"`
		Lines int    `json:"lines"`
	}
	got, err := chromedp.Run(ctx, chromedp.Poll[state](`(() => { const s = `+shadow+`; const e = s.querySelector('.error'); return !!e && {error: e.textContent, kept: s.querySelector('textarea').value, shown: !s.querySelector('.who').hidden, lines: s.querySelectorAll('.line.visitor').length} })()`))
	if err != nil {
		t.Fatalf("waiting for the error: %v", err)
	}
	if !strings.Contains(got.Error, "e-mail address") || got.Kept != msg || !got.Shown || got.Lines != 0 {
		t.Fatalf("after the typo: %+v, want the error, the message kept, the address in view and nothing sent", got)
	}
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.JSPath(shadow+`.querySelector('input[name=email]')`), "jan@gmail.com"),
		chromedp.Click(chromedp.JSPath(shadow+`.querySelector('form.send button')`)),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[string](lineTexts("system")+` || false`)); err != nil {
		t.Fatalf("the corrected message was not answered: %v\nlog:\n%s", err, r.log)
	}
}

// openChatAndSend opens the demo page afresh, gives the name (if any),
// sends text and waits for the assignment line; it returns that line and
// the complaint's reference.
func openChatAndSend(t *testing.T, ctx context.Context, r *running, name, text string) (system, id string) {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{fresh(r.base, "/chat/demo"), widgetReady}
	if name != "" {
		steps = append(steps, chromedp.SendKeys(chromedp.JSPath(shadow+`.querySelector('input[name=name]')`), name))
	}
	steps = append(steps,
		chromedp.SendKeys(chromedp.JSPath(shadow+`.querySelector('textarea')`), text),
		chromedp.Click(chromedp.JSPath(shadow+`.querySelector('form.send button')`)))
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("opening the demo and sending: %v\nlog:\n%s", err, r.log)
	}
	system, err := chromedp.Run(ctx, chromedp.Poll[string](lineTexts("system")+` || false`))
	if err != nil {
		t.Fatalf("waiting for the assignment line: %v\nlog:\n%s", err, r.log)
	}
	return system, regexp.MustCompile(`C-\d+`).FindString(system)
}

// chatLiveInterrupted: the replica's live subscription is cut (as when
// Redis restarts); a reply given right after it must still appear in the
// open window, without the visitor reloading the page.
func chatLiveInterrupted(t *testing.T, ctx context.Context, r *running, redisURL string) {
	_, id := openChatAndSend(t, ctx, r, "", "The blender lid does not fit.")
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(opt)
	defer admin.Close()
	if err := admin.ClientKillByFilter(context.Background(), "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	const answer = "A lid that fits is in the post."
	if code, res := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": answer}, ""); code != 200 {
		t.Fatalf("reply: %d %v", code, res)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const h = document.querySelector('#forgetmenot-chat'); return !!h && h.shadowRoot.querySelector('.status').textContent === '' && Array.from(h.shadowRoot.querySelectorAll('.line.staff .text')).some(e => e.textContent === `+"`"+answer+"`"+`) })()`)); err != nil {
		t.Fatalf("waiting for the reply given after the interruption: %v\nlog:\n%s", err, r.log)
	}
}

func chatUnreadSeenAndEmailed(t *testing.T, ctx context.Context, r *running, smtpSrv *emailtest.SMTP) {
	const email = "jan@voorbeeld.nl"
	q := func(sel string) chromedp.JSPath { return chromedp.JSPath(shadow + `.querySelector('` + sel + `')`) }
	if err := chromedp.Do(ctx, fresh(r.base, "/chat/demo?lang=nl"), widgetReady); err != nil {
		t.Fatalf("opening the Dutch demo: %v\nlog:\n%s", err, r.log)
	}
	texts, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`(() => { const s = `+shadow+`; return {
		greeting: s.querySelector('.greet .hello').textContent, expect: (s.querySelector('.greet .expect') || {}).textContent || '',
		placeholder: s.querySelector('textarea').placeholder, send: s.querySelector('form.send button').textContent,
		title: s.querySelector('.head .title').textContent } })()`))
	if err != nil {
		t.Fatal(err)
	}
	if texts["greeting"] != "Hallo! Waarmee kunnen we u helpen?" || !strings.HasPrefix(texts["expect"], "We ") || texts["placeholder"] != "Typ uw bericht…" ||
		texts["send"] != "Verstuur" || texts["title"] != "Klantenservice" {
		t.Fatalf("a lang=nl page shows %v, want the Dutch texts with the answer time", texts)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(q("input[name=name]"), "Jan"),
		chromedp.SendKeys(q("input[name=email]"), email),
		chromedp.SendKeys(q("textarea"), "Mijn lamp flikkert."),
		chromedp.Click(q("form.send button")),
	); err != nil {
		t.Fatal(err)
	}
	system, err := chromedp.Run(ctx, chromedp.Poll[string](lineTexts("system")+` || false`))
	if err != nil {
		t.Fatalf("waiting for the acknowledgement: %v\nlog:\n%s", err, r.log)
	}
	id := regexp.MustCompile(`C-\d+`).FindString(system)
	if !strings.Contains(system, "behandelt uw vraag") || id == "" {
		t.Fatalf("acknowledgement %q, want it in Dutch with the reference", system)
	}
	folded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](shadow+`.querySelector('.who').hidden && !`+shadow+`.querySelector('.details').hidden`))
	if err != nil || !folded {
		t.Fatalf("the name and e-mail fields must fold away after the first message (%v)", err)
	}

	// Minimised: a reply shows as a badge and in the tab's title.
	if err := chromedp.Do(ctx, chromedp.Click(q(".head button"))); err != nil {
		t.Fatal(err)
	}
	if code, res := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": "Probeer een andere lamp."}, ""); code != 200 {
		t.Fatalf("reply: %d %v", code, res)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](shadow+`.querySelector('.badge').textContent === '1' && !`+shadow+`.querySelector('.badge').hidden && document.title.startsWith('(1) Nieuw bericht')`)); err != nil {
		t.Fatalf("waiting for the badge and the title: %v", err)
	}
	// Opened: the line is on screen, so it is seen; the timeline says so.
	if err := chromedp.Do(ctx, chromedp.Click(q(".fab"))); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the seen receipt on the timeline", func() bool { return timelineHas(r, id, "seen", map[string]string{"kind": "reply", "via": "chat"}) })
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!document.title.startsWith('(')`)); err != nil {
		t.Fatalf("the title must stop blinking once seen: %v", err)
	}

	// Minimised again, and a second reply stays unseen: after the (short)
	// delay it is e-mailed, once, and the timeline says so.
	if err := chromedp.Do(ctx, chromedp.Click(q(".head button"))); err != nil {
		t.Fatal(err)
	}
	if code, res := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": "Tweede antwoord: de nieuwe lamp is onderweg."}, ""); code != 200 {
		t.Fatalf("reply: %d %v", code, res)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](shadow+`.querySelector('.badge').textContent === '1'`)); err != nil {
		t.Fatalf("waiting for the badge: %v", err)
	}
	testkit.WaitFor(t, "the unseen reply to be e-mailed", func() bool { return len(smtpSrv.To(email)) > 0 })
	mails := smtpSrv.To(email)
	if len(mails) != 1 || !strings.Contains(string(mails[0].Data), "Tweede antwoord") {
		t.Fatalf("%d mails to the visitor, want exactly the unseen reply (the seen one stays in the chat)", len(mails))
	}
	testkit.WaitFor(t, "the e-mail on the timeline", func() bool {
		return timelineHas(r, id, "unseen", map[string]string{"kind": "reply", "via": "email"}) && timelineHas(r, id, "sent", map[string]string{"kind": "reply", "via": "email"})
	})

	// The character counter warns before the limit and blocks the send.
	over, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`(() => { const s = `+shadow+`; s.querySelector('.fab').click();
		const ta = s.querySelector('textarea'); ta.value = 'é'.repeat(2001); ta.dispatchEvent(new Event('input'));
		return { text: s.querySelector('.count').textContent, over: s.querySelector('.count').classList.contains('over'), disabled: s.querySelector('form.send button').disabled } })()`))
	if err != nil || over["over"] != true || over["disabled"] != true || !strings.Contains(over["text"].(string), "Te lang") || !strings.Contains(over["text"].(string), "4002 / 4000") {
		t.Fatalf("over the limit: %v %v, want the Dutch warning with the byte count and the send button disabled", over, err)
	}
}

func chatRefusedOrigin(t *testing.T, ctx context.Context, r *running) {
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><body><h1>Another shop</h1><script src="%s/chat/widget.js" data-open="true"></script></body></html>`, r.base)
	}))
	defer shop.Close()
	state := shadow + `.querySelector('.status')`
	if err := chromedp.Do(ctx, chromedp.Navigate(shop.URL)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const h = document.querySelector('#forgetmenot-chat'); return !!h && `+state+`.textContent === 'This chat is not enabled for this site.' && `+state+`.classList.contains('blocked') })()`)); err != nil {
		t.Fatalf("waiting for the clear state: %v\nlog:\n%s", err, r.log)
	}
	time.Sleep(1500 * time.Millisecond) // it must stay so, not reconnect
	still, err := chromedp.Run(ctx, chromedp.Evaluate[string](state+`.textContent`))
	if err != nil || still != "This chat is not enabled for this site." {
		t.Fatalf("after a while the widget shows %q (%v), want the clear state, not reconnecting", still, err)
	}
	if n := strings.Count(r.log.String(), "origin="+shop.URL); n != 1 {
		t.Fatalf("the refused origin was logged %d times, want once a minute:\n%s", n, r.log)
	}
}

func chatAt375px(t *testing.T, ctx context.Context, r *running) {
	layout := `(() => { const s = ` + shadow + `, vw = window.innerWidth, vh = window.innerHeight;
		const box = e => { const b = e.getBoundingClientRect(); return { l: b.left, r: b.right, t: b.top, b: b.bottom } };
		return { vw, vh, scroll: document.documentElement.scrollWidth, panel: box(s.querySelector('.panel')), fab: box(s.querySelector('.fab')),
			fonts: Array.from(s.querySelectorAll('input, textarea')).map(e => getComputedStyle(e).fontSize) } })()`
	type box struct{ L, R, T, B float64 }
	type result struct {
		VW, VH, Scroll float64
		Panel, Fab     box
		Fonts          []string
	}
	var open result
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(375, 667, chromedp.EmulateScale(2)),
		fresh(r.base, "/chat/demo"),
		widgetReady,
	); err != nil {
		t.Fatal(err)
	}
	open, err := chromedp.Run(ctx, chromedp.Evaluate[result](layout))
	if err != nil {
		t.Fatal(err)
	}
	inside := func(b box) bool { return b.L >= 0 && b.R <= open.VW+0.5 && b.T >= 0 && b.B <= open.VH+0.5 && b.R > b.L }
	if open.VW != 375 || open.Scroll > open.VW || !inside(open.Panel) {
		t.Fatalf("at 375 px: %+v, want no horizontal overflow and the panel inside the screen", open)
	}
	for _, f := range open.Fonts {
		if f != "16px" {
			t.Fatalf("input font sizes %v, want 16px (iOS zooms into smaller ones)", open.Fonts)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.JSPath(shadow+`.querySelector('.head button')`))); err != nil {
		t.Fatal(err)
	}
	closed, err := chromedp.Run(ctx, chromedp.Evaluate[result](layout))
	if err != nil || !inside(closed.Fab) || closed.Scroll > closed.VW {
		t.Fatalf("minimised at 375 px: %+v %v, want the button inside the screen", closed, err)
	}
}
