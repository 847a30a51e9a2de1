package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/slack"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/router"
)

// mailer records the e-mails of the last fallback route.
type mailer struct {
	mu   sync.Mutex
	sent []string // "to|subject|body"
	err  error
}

func (m *mailer) MailStaff(_ context.Context, to, subject, body string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.sent = append(m.sent, to+"|"+subject+"|"+body)
	return nil
}

func (m *mailer) mails() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.sent...)
}

func reroutes(tl []router.Entry) []string {
	var out []string
	for _, e := range events(tl, router.EventNotificationRerouted) {
		out = append(out, e.Details["route"])
	}
	return out
}

// What must hold: when Slack refuses a notification for good, the owner is
// still told — by a plain-text DM, else through the lead channel, else by
// e-mail — the route is on the timeline, a redelivery sends nothing twice,
// and only when every route fails is it permanent, with an alert.
func TestNeverSilentFallbackRoutes(t *testing.T) {
	m := &mailer{}
	var mu sync.Mutex
	var routes, undelivered []string
	f := newFixture(t, func(c *slack.Config) {
		c.LeadChannel, c.Mailer, c.LinkBase = "CLEAD", m, "https://support.example.com"
		c.OnFallback = func(r string) { mu.Lock(); routes = append(routes, r); mu.Unlock() }
		c.OnUndelivered = func(k string) { mu.Lock(); undelivered = append(undelivered, k); mu.Unlock() }
	})
	f.ws.AddChannel("CLEAD")

	// 1. invalid_blocks on the top message: a plain-text DM instead.
	out := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "fb1", Customer: mila, Subject: "Broken lamp", Body: "It flickers."})
	ns := f.pending()
	user := f.slackUserOf(out.Owner)
	f.ws.Fail("chat.postMessage", 1, 0, "invalid_blocks")
	if err := f.slack.Notify(f.ctx, ns[0]); err != nil {
		t.Fatalf("notify with invalid_blocks: %v, want the fallback to deliver", err)
	}
	var plain []string
	for _, p := range f.ws.Posts("chat.postMessage") {
		if p.Channel == "D"+user && p.Blocks == "" {
			plain = append(plain, p.Text)
		}
	}
	if len(plain) != 1 || !strings.Contains(plain[0], out.ComplaintID) || !strings.Contains(plain[0], "https://support.example.com/v1/complaints/"+out.ComplaintID) {
		t.Fatalf("plain-text DMs %q, want one with the reference and the link", plain)
	}
	if _, tl := f.complaint(out.ComplaintID); fmt.Sprint(reroutes(tl)) != "[slack_plain]" {
		t.Errorf("timeline routes %v, want slack_plain", reroutes(tl))
	}
	// The outbox delivers it again (say the recording failed): nothing is
	// sent twice, nothing recorded twice.
	f.ws.Fail("chat.postMessage", 1, 0, "invalid_blocks")
	if err := f.slack.Notify(f.ctx, ns[0]); err != nil {
		t.Fatal(err)
	}
	if n := len(f.ws.Posts("chat.postMessage")); n != 1 {
		t.Errorf("%d posts after a redelivery, want still the one plain DM", n)
	}
	if _, tl := f.complaint(out.ComplaintID); len(reroutes(tl)) != 1 {
		t.Errorf("timeline routes %v after a redelivery, want one", reroutes(tl))
	}

	// 2. The owner's Slack account is gone: the lead channel is asked.
	out2 := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "fb2", Customer: router.Customer{Name: "Joe", Email: "joe@example.com"}, Body: "Where is my refund?"})
	ns = f.pending()
	f.ws.Fail("conversations.open", 2, 0, "user_not_found")
	if err := f.slack.Notify(f.ctx, ns[0]); err != nil {
		t.Fatalf("notify with user_not_found: %v", err)
	}
	if lead := f.leadPosts(); len(lead) != 1 || !strings.Contains(lead[0].Text, out2.ComplaintID) || !strings.Contains(lead[0].Text, "could not be reached") {
		t.Fatalf("lead channel %+v, want the ask to tell the owner", lead)
	}
	if _, tl := f.complaint(out2.ComplaintID); fmt.Sprint(reroutes(tl)) != "[lead_channel]" {
		t.Errorf("timeline routes %v, want lead_channel", reroutes(tl))
	}

	// 3. Slack refuses everything (revoked token): e-mail to the roster address.
	out3 := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "fb3", Customer: router.Customer{Name: "Ann", Email: "ann@example.com"}, Body: "Charged twice."})
	ns = f.pending()
	f.ws.Fail("chat.postMessage", 3, 0, "token_revoked")
	if err := f.slack.Notify(f.ctx, ns[0]); err != nil {
		t.Fatalf("notify with a revoked token: %v", err)
	}
	o, _ := f.router.Directory().Owner(out3.Owner)
	if mails := m.mails(); len(mails) != 1 || !strings.HasPrefix(mails[0], o.Email+"|"+out3.ComplaintID) || !strings.Contains(mails[0], "Charged twice.") {
		t.Fatalf("mails %q, want one to %s about %s", mails, o.Email, out3.ComplaintID)
	}
	if _, tl := f.complaint(out3.ComplaintID); fmt.Sprint(reroutes(tl)) != "[email]" {
		t.Errorf("timeline routes %v, want email", reroutes(tl))
	}

	// 4. Every route fails for good: permanent (the outbox dead-letters it)
	// and an alert.
	out4 := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "fb4", Customer: router.Customer{Name: "Bo", Email: "bo@example.com"}, Body: "No answer."})
	ns = f.pending()
	m.err = router.Permanent(errors.New("550 mailbox unavailable"))
	// The top message, the plain DM and the ask in the lead channel fail;
	// the alert after them gets through, posted in the background.
	f.ws.Fail("chat.postMessage", 3, 0, "invalid_blocks")
	err := f.slack.Notify(f.ctx, ns[0])
	if !router.IsPermanent(err) || !strings.Contains(err.Error(), "no route reached") {
		t.Fatalf("every route failed: %v, want a permanent error naming the routes", err)
	}
	f.slack.Wait() // the alert is posted in the background, paced
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(routes) != "[slack_plain lead_channel email]" || len(undelivered) != 1 {
		t.Errorf("fallback metric %v, undelivered %v", routes, undelivered)
	}
	if lead := f.leadPosts(); len(lead) != 2 || !strings.Contains(lead[1].Text, "Not delivered") || !strings.Contains(lead[1].Text, out4.ComplaintID) {
		t.Errorf("lead channel %+v, want the undelivered alert", lead)
	}
	if _, tl := f.complaint(out4.ComplaintID); len(reroutes(tl)) != 0 {
		t.Errorf("an undelivered notification recorded a route: %v", reroutes(tl))
	}
	// A passing failure of the last route is retried rather than given up.
	out5 := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "fb5", Customer: router.Customer{Name: "Cy", Email: "cy@example.com"}, Body: "Hello?"})
	_ = out5
	ns = f.pending()
	m.err = errors.New("connection refused")
	f.ws.Fail("chat.postMessage", 4, 0, "invalid_blocks")
	if err := f.slack.Notify(f.ctx, ns[0]); err == nil || router.IsPermanent(err) {
		t.Errorf("SMTP down for a moment: %v, want a retryable error", err)
	}
}

// What must hold: the customer history counts every earlier complaint, not
// the capped list (it said "49 earlier" for 300).
func TestHistoryShowsTheTrueCount(t *testing.T) {
	f := newFixture(t)
	key := mila.Key("")
	at := time.Now().Add(-400 * 24 * time.Hour)
	for i := range 300 {
		c := router.Complaint{ID: fmt.Sprintf("C-9%04d", i), Status: router.StatusClosed, Owner: "anna", Team: "support-en", Channel: router.ChannelWebhook,
			Subject: "Old " + fmt.Sprint(i), Customer: mila, CustomerKey: key, CreatedAt: at.Add(time.Duration(i) * time.Hour), ClosedAt: at.Add(time.Duration(i)*time.Hour + time.Minute),
			Resolution: "done", Category: "other"}
		if err := f.store.Commit(f.ctx, router.Change{After: c, OnceKey: "seed:" + c.ID}); err != nil {
			t.Fatal(err)
		}
	}
	id, owner := f.openComplaint("h1")
	root := f.threadOf(owner, id)
	if !strings.Contains(root.Blocks, "(300 other)") || !strings.Contains(root.Blocks, "and 295 more") || !strings.Contains(root.Blocks, "C-90299") {
		t.Errorf("history block, want 300 others with the newest (C-90299) first: %s", root.Blocks)
	}
	h, err := f.router.CustomerHistory(f.ctx, router.Complaint{ID: id, CustomerKey: key}, 5)
	if err != nil || h.Total != 300 || len(h.Recent) != 5 || h.Recent[0].ID != "C-90299" {
		t.Errorf("CustomerHistory = %d of %d (%v), want 5 of 300", len(h.Recent), h.Total, err)
	}
}

func homeOpened(user string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type": "event_callback", "event_id": "Ev" + user + time.Now().Format("150405.000000"), "team_id": "T1", "api_app_id": "A1",
		"event": map[string]any{"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": "home"},
	})
	return b
}

// What must hold: opening App Home publishes the owner's open complaints,
// most urgent first, with their buttons; a lead sees the team's; a close
// publishes it again (debounced), without the closed complaint.
func TestAppHomeWorklist(t *testing.T) {
	f := newFixture(t, func(c *slack.Config) { c.HomeDebounce = 200 * time.Millisecond })
	f.serve()
	id1, owner := f.openComplaint("home1")
	user := f.slackUserOf(owner)
	// A second complaint for the same owner, with a promise due soon: it goes on top.
	c1, _ := f.complaint(id1)
	id2 := f.secondComplaintOf(owner, "home2")
	if _, err := f.router.Promise(f.ctx, id2, owner, time.Now().Add(30*time.Minute), "Call back", false); err != nil {
		t.Fatal(err)
	}
	f.deliver()
	if code, body := f.send("/slack/events", homeOpened(user), "application/json", signingSecret, time.Now()); code != http.StatusOK {
		t.Fatalf("event answered %d %s", code, body)
	}
	testkit.WaitFor(t, "the App Home", func() bool { return len(f.ws.Published(user)) > 0 })
	home := f.ws.Published(user)[0]
	raw, _ := json.Marshal(home.View)
	s := string(raw)
	i1, i2 := strings.Index(s, id1+"*"), strings.Index(s, id2+"*")
	if i1 < 0 || i2 < 0 || i2 > i1 || !strings.Contains(s, "fmn_close") || !strings.Contains(s, "fmn_away") || !strings.Contains(s, "Refund") {
		t.Fatalf("App Home, want both complaints with %s (promised today) first and the buttons: %s", id2, s)
	}
	_ = c1
	// The lead sees the team's complaints, with their owners.
	lead := f.slackUserOf("sanne")
	f.send("/slack/events", homeOpened(lead), "application/json", signingSecret, time.Now())
	testkit.WaitFor(t, "the lead's App Home", func() bool { return len(f.ws.Published(lead)) > 0 })
	raw, _ = json.Marshal(f.ws.Published(lead)[0].View)
	if !strings.Contains(string(raw), id1) || !strings.Contains(string(raw), "team's open complaints") || !strings.Contains(string(raw), "owner ") {
		t.Errorf("lead's App Home lacks the team's complaint %s: %s", id1, raw)
	}
	// A close refreshes it.
	before := len(f.ws.Published(user))
	if _, err := f.router.CloseWith(f.ctx, id1, owner, router.Closing{Resolution: "Replaced", Category: "other"}); err != nil {
		t.Fatal(err)
	}
	f.deliver()
	testkit.WaitFor(t, "the refreshed App Home", func() bool { return len(f.ws.Published(user)) > before })
	homes := f.ws.Published(user)
	raw, _ = json.Marshal(homes[len(homes)-1].View)
	if strings.Contains(string(raw), id1+"*") || !strings.Contains(string(raw), id2) {
		t.Errorf("refreshed App Home still lists the closed %s or lost %s: %s", id1, id2, raw)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(f.ws.Published(user)) - before; n != 1 {
		t.Errorf("%d publishes for one close, want one (debounced)", n)
	}
}

// What must hold: "I'm away until …" from Slack (slash command or App Home
// button and modal) records the absence as the API does, with cover; back
// ends it.
func TestAwayFromSlack(t *testing.T) {
	f := newFixture(t, func(c *slack.Config) { c.HomeDebounce = 10 * time.Millisecond })
	f.serve()
	awayOf := func(id string) *router.Absence {
		t.Helper()
		owners, err := f.router.Owners(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range owners {
			if o.ID == id {
				return o.Away
			}
		}
		t.Fatalf("no owner %s", id)
		return nil
	}
	until := time.Now().Add(72 * time.Hour).UTC().Format(time.DateOnly)
	if out := f.command("UANNA", "away "+until+" <@UBAS|bas>"); !strings.Contains(out, "You are away until") || !strings.Contains(out, "Bas Jansen covers") {
		t.Fatalf("/complaints away answered %s", out)
	}
	a := awayOf("anna")
	if a == nil || a.Cover != "bas" || a.Until.Format(time.DateOnly) != until || a.SetBy != "anna" {
		t.Fatalf("away = %+v, want until %s covered by bas, set by anna", a, until)
	}
	for _, bad := range []string{"away", "away someday", "away " + until + " nobody", "away 2020-01-01"} {
		if out := f.command("UANNA", bad); strings.Contains(out, "You are away until") {
			t.Errorf("/complaints %s was accepted: %s", bad, out)
		}
	}
	if out := f.command("UANNA", "back"); !strings.Contains(out, "Welcome back") {
		t.Fatalf("/complaints back answered %s", out)
	}
	if a := awayOf("anna"); a != nil {
		t.Fatalf("still away after back: %+v", a)
	}
	// The App Home button opens the modal; its submission records the absence.
	f.interact(map[string]any{"type": "block_actions", "trigger_id": "trig-away", "user": map[string]any{"id": "UCHLOE"},
		"container": map[string]any{"type": "view", "view_id": "VH1"},
		"actions":   []map[string]any{{"action_id": "fmn_away", "block_id": "b", "value": "chloe", "type": "button", "action_ts": "1.1"}}})
	view := f.waitView(1)
	if view.View["callback_id"] != "fmn_away" {
		t.Fatalf("opened %v, want the away modal", view.View["callback_id"])
	}
	back := time.Now().Add(48 * time.Hour).Truncate(time.Minute)
	sub := submit("UCHLOE", view, "VAWAY", map[string]map[string]any{
		"away_until": {"type": "datetimepicker", "selected_date_time": back.Unix()},
		"away_cover": choice("anna"),
	})
	// Someone else cannot submit it for Chloe.
	forged := submit("UANNA", view, "VAWAY2", map[string]map[string]any{"away_until": {"type": "datetimepicker", "selected_date_time": back.Unix()}})
	if _, out := f.interact(forged); !strings.Contains(string(out), "Only you") {
		t.Errorf("forged away submission answered %s", out)
	}
	if code, out := f.interact(sub); code != http.StatusOK || len(out) > 0 && strings.Contains(string(out), "errors") {
		t.Fatalf("away submission answered %d %s", code, out)
	}
	if a := awayOf("chloe"); a == nil || a.Cover != "anna" || !a.Until.Equal(back.UTC()) {
		t.Fatalf("chloe away = %+v, want until %s covered by anna", a, back)
	}
	// "I'm back" in App Home ends it.
	f.interact(map[string]any{"type": "block_actions", "trigger_id": "trig-back", "user": map[string]any{"id": "UCHLOE"},
		"container": map[string]any{"type": "view", "view_id": "VH1"},
		"actions":   []map[string]any{{"action_id": "fmn_back", "block_id": "b", "value": "chloe", "type": "button", "action_ts": "1.2"}}})
	testkit.WaitFor(t, "chloe back", func() bool { return awayOf("chloe") == nil })
}

// What must hold: when the news is in the thread but Slack refuses to update
// the top message, the owner is not told twice by a fallback.
func TestRefusedTopUpdateDoesNotTellTwice(t *testing.T) {
	f := newFixture(t)
	id, owner := f.openComplaint("tu1")
	if _, err := f.router.Acknowledge(f.ctx, id, owner); err != nil {
		t.Fatal(err)
	}
	ns := f.pending()
	f.ws.Fail("chat.update", 1, 0, "invalid_blocks")
	for _, n := range ns {
		if err := f.slack.Notify(f.ctx, n); err != nil {
			t.Fatalf("notify %s: %v", n.ID, err)
		}
	}
	root := f.threadOf(owner, id)
	if r := f.replies(root); len(r) != 1 || !blocksContain(r[0], "Acknowledged") {
		t.Errorf("thread replies %+v, want the acknowledgement", r)
	}
	for _, p := range f.ws.Posts("chat.postMessage") {
		if p.Blocks == "" {
			t.Errorf("a plain fallback was sent although the thread had the news: %q", p.Text)
		}
	}
}

// What must hold: Slack down for longer than the outbox's retries is no
// reason for silence. Before the last attempt a passing failure is left to
// a retry; on the last attempt the owner is told by another route (here
// e-mail, with Slack down), and when no route works the alert is raised
// and the error is final. A lead channel that fails does not keep the
// owner from their DM, and a retry does not post the DM twice.
func TestSlackDownOnTheLastAttemptStillReachesTheOwner(t *testing.T) {
	m := &mailer{}
	var mu sync.Mutex
	var undelivered []string
	f := newFixture(t, func(c *slack.Config) {
		c.LeadChannel, c.Mailer, c.LinkBase = "CLEAD", m, "https://support.example.com"
		c.OnUndelivered = func(k string) { mu.Lock(); undelivered = append(undelivered, k); mu.Unlock() }
	})
	f.ws.AddChannel("CLEAD")
	out := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "down1", Customer: router.Customer{Name: "Olga", Email: "olga@example.com"}, Body: "My parcel never came."})
	n := f.pending()[0]

	f.ws.Fail("chat.postMessage", 1, 0, "internal_error")
	if err := f.slack.Notify(f.ctx, n); err == nil || router.IsPermanent(err) {
		t.Fatalf("Slack failing once before the last attempt: %v, want a retryable error", err)
	}
	if len(m.mails()) != 0 {
		t.Fatalf("mailed %q before the last attempt", m.mails())
	}
	// Still down on the last attempt: every Slack route fails, e-mail works.
	f.ws.Fail("chat.postMessage", 3, 0, "internal_error") // the top message, the plain DM, the ask in the lead channel
	if err := f.slack.Notify(router.WithLastAttempt(f.ctx), n); err != nil {
		t.Fatalf("last attempt with Slack down: %v, want the owner reached by e-mail", err)
	}
	o, _ := f.router.Directory().Owner(out.Owner)
	if mails := m.mails(); len(mails) != 1 || !strings.HasPrefix(mails[0], o.Email+"|"+out.ComplaintID) {
		t.Fatalf("mails %q, want one to the owner %s", mails, o.Email)
	}
	if _, tl := f.complaint(out.ComplaintID); fmt.Sprint(reroutes(tl)) != "[email]" {
		t.Errorf("timeline routes %v, want email", reroutes(tl))
	}

	// No route works on the last attempt (SMTP down too): final, with the alarm.
	out2 := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "down2", Customer: router.Customer{Name: "Piet", Email: "piet@example.com"}, Body: "Hello?"})
	n2 := f.pending()[0]
	m.err = errors.New("connection refused")
	f.ws.Fail("chat.postMessage", 3, 0, "internal_error")
	if err := f.slack.Notify(router.WithLastAttempt(f.ctx), n2); !router.IsPermanent(err) {
		t.Fatalf("last attempt, no route works: %v, want a final error", err)
	}
	f.slack.Wait()
	mu.Lock()
	if len(undelivered) != 1 {
		t.Errorf("undelivered alerts %v, want one for %s", undelivered, out2.ComplaintID)
	}
	mu.Unlock()
	m.err = nil

	// The lead channel fails (over capacity to report): the owner's DM
	// still goes out; the retry posts the lead notice, not the DM again.
	c, _ := f.complaint(out.ComplaintID)
	over := router.Notification{ID: c.ID + ":over:" + c.Owner, Kind: router.NotifyAssigned, Recipient: c.Owner, At: time.Now(), Complaint: c,
		Event: &router.Event{Type: router.EventAssigned, Actor: router.ActorRouter, Owner: c.Owner, Details: map[string]string{"over_capacity": "true"}}}
	over.Complaint.Version += 10
	user := f.slackUserOf(c.Owner)
	dms := func() int {
		k := 0
		for _, p := range f.ws.Posts("chat.postMessage") {
			if p.Channel == "D"+user {
				k++
			}
		}
		return k
	}
	before := dms()
	f.ws.FailIn("chat.postMessage", "CLEAD", 1, "internal_error")
	if err := f.slack.Notify(f.ctx, over); err == nil {
		t.Fatal("lead channel failing: nil, want a retry for the lead notice")
	}
	if got := dms(); got != before+1 {
		var chans []string
		for _, p := range f.ws.Posts("chat.postMessage") {
			chans = append(chans, p.Channel)
		}
		t.Fatalf("%d DMs to the owner, want %d: a failing lead channel must not hold up the owner (posts in %v, user %s)", got, before+1, chans, user)
	}
	if err := f.slack.Notify(f.ctx, over); err != nil {
		t.Fatal(err)
	}
	if got, lead := dms(), f.leadPosts(); got != before+1 || len(lead) == 0 || !blocksContain(lead[len(lead)-1], "Over capacity") {
		t.Errorf("after the retry: %d DMs (want %d), lead posts %d, want the over-capacity notice once", got, before+1, len(lead))
	}
}

// What must hold: on the last attempt a Slack that hangs (no answer at all)
// takes only its share of the attempt's time, so the e-mail route still
// reaches the owner within it; it used to time the whole attempt out.
func TestHangingSlackOnTheLastAttemptLeavesTimeForEmail(t *testing.T) {
	defer slack.SetLastAttemptSlackBudget(300 * time.Millisecond)()
	m := &mailer{}
	f := newFixture(t, func(c *slack.Config) { c.Mailer, c.LinkBase = m, "https://support.example.com" })
	out := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "hang1", Customer: router.Customer{Name: "Olga", Email: "olga@example.com"}, Body: "Hello?"})
	n := f.pending()[0]
	f.ws.Delay("chat.postMessage", 1500*time.Millisecond)
	f.ws.Delay("conversations.open", 1500*time.Millisecond)
	// The attempt's own deadline, as the outbox gives it (ReclaimIdle/2),
	// shorter than Slack's silence.
	ctx, cancel := context.WithTimeout(router.WithLastAttempt(f.ctx), time.Second)
	defer cancel()
	if err := f.slack.Notify(ctx, n); err != nil {
		t.Fatalf("last attempt with Slack hanging: %v, want the owner reached by e-mail", err)
	}
	o, _ := f.router.Directory().Owner(out.Owner)
	if mails := m.mails(); len(mails) != 1 || !strings.HasPrefix(mails[0], o.Email+"|") {
		t.Errorf("mails %q, want one to the owner", mails)
	}
	f.ws.Delay("chat.postMessage", 0)
	f.ws.Delay("conversations.open", 0)
}
