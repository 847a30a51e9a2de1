package slack_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testslack"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// serve starts the HTTP-mode endpoints.
func (f *fixture) serve() {
	mux := http.NewServeMux()
	for pattern, h := range f.slack.Routes() {
		mux.Handle(pattern, h)
	}
	f.http = httptest.NewServer(mux)
	f.t.Cleanup(f.http.Close)
}

// send posts body to path signed as Slack does (at the given moment, with
// the given secret).
func (f *fixture) send(path string, body []byte, contentType, secret string, at time.Time) (int, []byte) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.http.URL+path, bytes.NewReader(body))
	for k, v := range testslack.Sign(secret, body, at) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

const formType = "application/x-www-form-urlencoded"

func (f *fixture) interact(payload any) (int, []byte) {
	f.t.Helper()
	return f.send("/slack/interactivity", testslack.InteractionBody(payload), formType, signingSecret, time.Now())
}

var triggers int

// click is a button press on a complaint's top message, as Slack posts it.
func click(user, action, complaintID string) map[string]any {
	triggers++
	trigger := "trigger-" + time.Now().Format("150405.000000") + "-" + string(rune('a'+triggers%26))
	return map[string]any{
		"type": "block_actions", "trigger_id": trigger,
		"user":      map[string]any{"id": user},
		"container": map[string]any{"type": "message", "channel_id": "D" + user, "message_ts": "1700000000.000001"},
		"channel":   map[string]any{"id": "D" + user},
		"actions": []map[string]any{{"action_id": action, "block_id": "actions", "value": complaintID, "type": "button",
			"action_ts": time.Now().Format("1504.050000")}},
	}
}

// submit is a modal submission built from the modal Slack was asked to open.
func submit(user string, view testslack.View, viewID string, values map[string]map[string]any) map[string]any {
	state := map[string]any{}
	for block, v := range values {
		state[block] = map[string]any{"v": v}
	}
	return map[string]any{
		"type": "view_submission", "user": map[string]any{"id": user},
		"view": map[string]any{"id": viewID, "callback_id": view.View["callback_id"], "private_metadata": view.View["private_metadata"],
			"state": map[string]any{"values": state}},
	}
}

func text(v string) map[string]any { return map[string]any{"type": "plain_text_input", "value": v} }
func choice(v string) map[string]any {
	return map[string]any{"type": "static_select", "selected_option": map[string]any{"value": v}}
}

// openComplaint routes a complaint and delivers its assignment.
func (f *fixture) openComplaint(source string) (id, owner string) {
	out := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: source, Customer: mila, Subject: "Damaged parcel", Body: "The box was crushed."})
	f.deliver()
	return out.ComplaintID, out.Owner
}

// secondComplaintOf opens Piet's complaint and makes owner its owner
// (routing spreads the load, so it may land elsewhere first): a second
// complaint on one owner's worklist.
func (f *fixture) secondComplaintOf(owner, source string) string {
	f.t.Helper()
	out := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: source, Customer: router.Customer{Name: "Piet", Email: "piet@example.com"}, Subject: "Refund", Body: "Where is it?"})
	f.deliver()
	if out.Owner != owner {
		if _, err := f.router.Reassign(f.ctx, out.ComplaintID, out.Owner, owner, "one owner's worklist"); err != nil {
			f.t.Fatal(err)
		}
		f.deliver()
	}
	return out.ComplaintID
}

func (f *fixture) waitView(n int) testslack.View {
	f.t.Helper()
	testkit.WaitFor(f.t, "the modal to open", func() bool { return len(f.ws.Views()) >= n })
	return f.ws.Views()[n-1]
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

// What must hold: only requests signed with the signing secret and at most
// five minutes old are accepted.
func TestRequestsMustBeSignedAndFresh(t *testing.T) {
	f := newFixture(t)
	f.serve()
	body := []byte(`{"type":"url_verification","challenge":"xyz"}`)
	cases := []struct {
		name   string
		secret string
		at     time.Time
		want   int
	}{
		{"signed now", signingSecret, time.Now(), http.StatusOK},
		{"wrong secret", "another-secret-0123456789", time.Now(), http.StatusUnauthorized},
		{"six minutes old", signingSecret, time.Now().Add(-6 * time.Minute), http.StatusUnauthorized},
		{"from the future", signingSecret, time.Now().Add(6 * time.Minute), http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := f.send("/slack/events", body, "application/json", c.secret, c.at)
			if code != c.want {
				t.Fatalf("status %d (%s), want %d", code, out, c.want)
			}
			if code == http.StatusOK && string(out) != "xyz" {
				t.Errorf("challenge answer %q", out)
			}
		})
	}
	req, _ := http.NewRequest("POST", f.http.URL+"/slack/interactivity", strings.NewReader("payload={}"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned interactivity: %d, want 401", resp.StatusCode)
	}
}

// What must hold: the owner closes a complaint from Slack (button → modal →
// submission), and a retried submission closes nothing twice.
func TestCloseFromSlack(t *testing.T) {
	f := newFixture(t)
	f.serve()
	id, owner := f.openComplaint("c1")
	user := f.slackUserOf(owner)
	if code, out := f.interact(click(user, "fmn_close", id)); code != http.StatusOK || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("click answered %d %s, want an empty 200 at once", code, out)
	}
	view := f.waitView(1)
	if view.View["callback_id"] != "fmn_close" || !strings.Contains(view.View["private_metadata"].(string), id) {
		t.Fatalf("opened modal %v", view.View)
	}
	// A submission without a resolution is refused next to the field.
	code, out := f.interact(submit(user, view, "V1", map[string]map[string]any{"close_resolution": text(" "), "close_category": choice("delivery")}))
	if code != http.StatusOK || !strings.Contains(string(out), `"response_action":"errors"`) || !strings.Contains(string(out), "close_resolution") {
		t.Fatalf("empty resolution answered %d %s, want field errors", code, out)
	}
	// Text that fits the field's max_length (characters) but not the
	// router's limit (bytes: 1,495 Japanese characters are 4,485) is refused
	// in the form, so it is not lost after the modal closed.
	long := strings.Repeat("荷物が届きませんでした。", 125)[:4485]
	code, out = f.interact(submit(user, view, "V1", map[string]map[string]any{"close_resolution": text(long), "close_category": choice("delivery")}))
	if code != http.StatusOK || !strings.Contains(string(out), `"response_action":"errors"`) || !strings.Contains(string(out), "close_resolution") || !strings.Contains(string(out), "4000 bytes") {
		t.Fatalf("resolution of 4,485 bytes answered %d %s, want a field error in the form", code, out)
	}
	if c, _ := f.complaint(id); c.Status != router.StatusOpen {
		t.Fatal("the refused submission closed the complaint")
	}
	good := submit(user, view, "V1", map[string]map[string]any{"close_resolution": text("Sent a new parcel"), "close_category": choice("delivery")})
	for range 2 { // Slack's retry of the same submission
		if code, out := f.interact(good); code != http.StatusOK || len(bytes.TrimSpace(out)) != 0 {
			t.Fatalf("submission answered %d %s", code, out)
		}
	}
	var c router.Complaint
	var tl []router.Entry
	testkit.WaitFor(t, "the complaint to close", func() bool { c, tl = f.complaint(id); return c.Status == router.StatusClosed })
	f.slack.Wait()
	if c.Resolution != "Sent a new parcel" || c.Category != "delivery" {
		t.Errorf("closed with %q / %q", c.Resolution, c.Category)
	}
	if closed := events(tl, router.EventClosed); len(closed) != 1 || closed[0].Actor != owner {
		t.Errorf("closed events %+v, want one by %s", closed, owner)
	}
	if eph := f.ws.Posts("chat.postEphemeral"); len(eph) != 0 {
		t.Errorf("ephemeral messages %+v, want none (the retry must be silent)", eph)
	}
}

// What must hold: a reply typed in Slack reaches the customer once, even when
// Slack delivers the submission twice.
func TestReplyAndPromiseFromSlack(t *testing.T) {
	f := newFixture(t)
	f.serve()
	id, owner := f.openComplaint("r1")
	user := f.slackUserOf(owner)
	f.interact(click(user, "fmn_reply", id))
	view := f.waitView(1)
	reply := submit(user, view, "V7", map[string]map[string]any{"reply_body": text("We are sending a new one today.")})
	f.interact(reply)
	f.interact(reply)
	f.interact(click(user, "fmn_promise", id))
	pv := f.waitView(2)
	by := time.Now().Add(72 * time.Hour).Truncate(time.Minute)
	f.interact(submit(user, pv, "V8", map[string]map[string]any{
		"promise_by":   {"type": "datetimepicker", "selected_date_time": by.Unix()},
		"promise_note": text("You will have it by Thursday"),
		"promise_tell": {"type": "checkboxes", "selected_options": []map[string]any{{"value": "tell"}}},
	}))
	f.interact(click(user, "fmn_acknowledge", id))
	var c router.Complaint
	var tl []router.Entry
	testkit.WaitFor(t, "reply, promise and acknowledgement", func() bool {
		c, tl = f.complaint(id)
		return len(events(tl, router.EventReplied)) > 0 && !c.PromisedBy.IsZero() && !c.AcknowledgedAt.IsZero()
	})
	f.slack.Wait()
	c, tl = f.complaint(id)
	if r := events(tl, router.EventReplied); len(r) != 1 || r[0].Text != "We are sending a new one today." || r[0].Actor != owner {
		t.Errorf("replies %+v, want exactly one by %s", r, owner)
	}
	if !c.PromisedBy.Equal(by) || c.PromiseNote != "You will have it by Thursday" {
		t.Errorf("promise %v %q", c.PromisedBy, c.PromiseNote)
	}
	var toCustomer []router.CustomerMessage
	entries, _ := f.rdb.XRange(f.ctx, f.keys.Outbox(), "-", "+").Result()
	for _, e := range entries {
		o, _ := queue.DecodeOutgoing([]byte(e.Values["data"].(string)))
		if o.Customer != nil && o.Customer.Kind != router.ToCustomerAcknowledgement {
			toCustomer = append(toCustomer, *o.Customer)
		}
	}
	if len(toCustomer) != 2 || toCustomer[0].Kind != router.ToCustomerReply || toCustomer[1].Kind != router.ToCustomerPromise {
		t.Errorf("queued for the customer: %+v, want one reply and one promise", toCustomer)
	}
}

// What must hold: the reply form says how the answer reaches the customer,
// and when nothing can reach them the owner is told so before writing an
// answer that could not be sent (no form opens).
func TestReplyFormSaysHowTheAnswerGoes(t *testing.T) {
	f := newFixture(t)
	f.serve()
	id, owner := f.openComplaint("rf1")
	user := f.slackUserOf(owner)
	f.interact(click(user, "fmn_reply", id))
	view := f.waitView(1)
	if b, _ := json.Marshal(view); !strings.Contains(string(b), "Goes to the customer by e-mail") {
		t.Errorf("reply form for a customer with an address: %s", b)
	}
	out := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "rf2", Customer: router.Customer{Name: "Anonymous reviewer"},
		Subject: "Review", Body: "Two stars: the lid was cracked."})
	f.deliver()
	f.interact(click(f.slackUserOf(out.Owner), "fmn_reply", out.ComplaintID))
	testkit.WaitFor(t, "the owner told why no reply can be sent", func() bool { return len(f.ws.Posts("chat.postEphemeral")) == 1 })
	if eph := f.ws.Posts("chat.postEphemeral")[0]; !strings.Contains(eph.Text, "cannot be sent") || !strings.Contains(eph.Text, "left no address") {
		t.Errorf("told %q", eph.Text)
	}
	f.slack.Wait()
	if n := len(f.ws.Views()); n != 1 {
		t.Errorf("%d forms opened, want none for the customer who cannot be reached", n-1)
	}
}

// What must hold: only the owner or the team lead may act; anyone else is
// told politely, and nothing changes.
func TestUnauthorisedActorIsRefused(t *testing.T) {
	f := newFixture(t)
	f.serve()
	id, owner := f.openComplaint("u1")
	// Bas is in support-nl only; this complaint is in support-en.
	f.interact(click("UBAS", "fmn_close", id))
	testkit.WaitFor(t, "the refusal", func() bool { return len(f.ws.Posts("chat.postEphemeral")) == 1 })
	eph := f.ws.Posts("chat.postEphemeral")[0]
	if eph.User != "UBAS" || !strings.Contains(eph.Text, "only the owner or the team lead") {
		t.Errorf("refusal %+v", eph)
	}
	// A forged submission of the owner's modal by Bas is refused too.
	f.interact(click(f.slackUserOf(owner), "fmn_close", id))
	view := f.waitView(1)
	code, out := f.interact(submit("UBAS", view, "V9", map[string]map[string]any{"close_resolution": text("not mine"), "close_category": choice("other")}))
	if code != http.StatusOK || !strings.Contains(string(out), "only the owner or the team lead") {
		t.Errorf("forged submission answered %d %s", code, out)
	}
	// Someone not on the roster at all.
	f.interact(click("USTRANGER", "fmn_acknowledge", id))
	testkit.WaitFor(t, "the second refusal", func() bool { return len(f.ws.Posts("chat.postEphemeral")) == 2 })
	f.slack.Wait()
	if c, _ := f.complaint(id); c.Status != router.StatusOpen || !c.AcknowledgedAt.IsZero() {
		t.Errorf("complaint changed by unauthorised actors: %+v", c)
	}
	if n := len(f.ws.Views()); n != 1 {
		t.Errorf("%d modals opened, want only the owner's", n)
	}
	// The team lead may act.
	f.interact(click("USANNE", "fmn_acknowledge", id))
	testkit.WaitFor(t, "the lead's acknowledgement", func() bool { c, _ := f.complaint(id); return !c.AcknowledgedAt.IsZero() })
}

func messageEvent(eventID, user, channel, ts, threadTS, text string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type": "event_callback", "event_id": eventID, "team_id": "T1", "api_app_id": "A1",
		"event": map[string]any{"type": "message", "channel_type": "im", "user": user, "channel": channel, "ts": ts, "thread_ts": threadTS, "text": text},
	})
	return b
}

// What must hold: what staff type in the complaint's thread is an internal
// note on the timeline, recorded once, never queued for the customer.
func TestThreadMessagesBecomeNotes(t *testing.T) {
	f := newFixture(t)
	f.serve()
	id, owner := f.openComplaint("n1")
	root := f.threadOf(owner, id)
	user := f.slackUserOf(owner)
	outboxBefore, _ := f.rdb.XLen(f.ctx, f.keys.Outbox()).Result()
	ev := messageEvent("Ev1", user, root.Channel, "1700000099.000100", root.TS, "Called the courier &amp; they will pick it up")
	for _, body := range [][]byte{ev, ev, messageEvent("Ev2", user, root.Channel, "1700000099.000100", root.TS, "Called the courier &amp; they will pick it up")} {
		if code, out := f.send("/slack/events", body, "application/json", signingSecret, time.Now()); code != http.StatusOK {
			t.Fatalf("event answered %d %s", code, out)
		}
	}
	// A message outside any complaint thread and the bot's own message are not notes.
	f.send("/slack/events", messageEvent("Ev3", user, root.Channel, "1700000100.000100", "", "hello"), "application/json", signingSecret, time.Now())
	testkit.WaitFor(t, "the note", func() bool { _, tl := f.complaint(id); return len(events(tl, router.EventNote)) > 0 })
	f.slack.Wait()
	_, tl := f.complaint(id)
	notes := events(tl, router.EventNote)
	if len(notes) != 1 || notes[0].Text != "Called the courier & they will pick it up" || notes[0].Actor != owner {
		t.Fatalf("notes %+v, want exactly one by %s", notes, owner)
	}
	if n, _ := f.rdb.XLen(f.ctx, f.keys.Outbox()).Result(); n != outboxBefore {
		t.Errorf("outbox grew from %d to %d: a note must not go anywhere", outboxBefore, n)
	}
	if r := f.ws.Reactions(); len(r) == 0 || !strings.HasPrefix(r[0], "memo ") {
		t.Errorf("reactions %v, want the note marked as recorded", r)
	}
}

func (f *fixture) command(user, text string) string {
	f.t.Helper()
	body := []byte(url.Values{"command": {"/complaints"}, "text": {text}, "user_id": {user}, "channel_id": {"D" + user}, "trigger_id": {"t"}}.Encode())
	code, out := f.send("/slack/commands", body, formType, signingSecret, time.Now())
	if code != http.StatusOK {
		f.t.Fatalf("/complaints %s answered %d %s", text, code, out)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil || m["response_type"] != "ephemeral" {
		f.t.Fatalf("/complaints %s answered %s, want an ephemeral message", text, out)
	}
	return string(out)
}

// What must hold: /complaints answers only its user, with the right content.
func TestSlashCommand(t *testing.T) {
	f := newFixture(t)
	f.serve()
	id, owner := f.openComplaint("s1")
	user := f.slackUserOf(owner)
	cases := []struct {
		user, text string
		want       []string
	}{
		{user, "mine", []string{"Your open complaints: 1", id, "not acknowledged"}},
		{user, strings.ToLower(id), []string{id, "Damaged parcel", "Timeline", "fmn_close"}},
		{"UBAS", id, []string{id, "Timeline"}}, // may look, has no buttons
		{user, "stats", []string{"Open complaints: 1", "Anna de Vries"}},
		{user, "", []string{"/complaints mine"}},
		{user, "C-999999", []string{"There is no complaint C-999999"}},
		{"USTRANGER", "mine", []string{"not on the forgetmenot roster"}},
	}
	for _, c := range cases {
		out := f.command(c.user, c.text)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("/complaints %q by %s lacks %q: %s", c.text, c.user, w, out)
			}
		}
	}
	if out := f.command("UBAS", id); strings.Contains(out, "fmn_close") {
		t.Errorf("a colleague who may not act gets buttons: %s", out)
	}
}

// What must hold: a slow users.info (a user not met since the last start)
// does not make Slack's 3 seconds pass without an answer: the user is asked
// to try again at once, the lookup goes on, and the next try knows them.
// A burst of requests by that user (clicks, commands) shares one lookup
// instead of spending Slack's rate limit on one each.
func TestSlowUserLookupAnswersInTimeAndLearns(t *testing.T) {
	f := newFixture(t)
	f.serve()
	f.ws.Delay("users.info", 3*time.Second)
	outs := make([]string, 4)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Go(func() { outs[i] = f.command("UBAS", "mine") })
	}
	wg.Wait()
	for _, out := range outs {
		if !strings.Contains(out, "try again") {
			t.Fatalf("/complaints mine with a slow users.info: %s, want a prompt to try again", out)
		}
	}
	testkit.WaitFor(t, "the lookup learned who UBAS is", func() bool {
		return !strings.Contains(f.command("UBAS", "mine"), "try again")
	})
	if n := f.ws.Calls("users.info"); n != 1 {
		t.Errorf("users.info called %d times for one user's burst of 4 requests, want 1", n)
	}
}
