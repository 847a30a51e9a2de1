package slack_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/slack"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testslack"
	"github.com/forgetmenot/forgetmenot/router"
)

var mila = router.Customer{Name: "Mila Jansen", Email: "mila@example.com"}

func (f *fixture) slackUserOf(owner string) string {
	f.t.Helper()
	o, ok := f.router.Directory().Owner(owner)
	if !ok {
		f.t.Fatalf("owner %s not on the roster", owner)
	}
	return slackUsers[o.Email]
}

// threadOf returns the top message of a complaint in the owner's DM.
func (f *fixture) threadOf(owner, complaintID string) testslack.Post {
	f.t.Helper()
	for _, p := range f.ws.Posts("chat.postMessage") {
		if p.Channel == "D"+f.slackUserOf(owner) && p.ThreadTS == "" && strings.Contains(p.Blocks, complaintID) {
			return p
		}
	}
	f.t.Fatalf("no top message of %s in %s's DM; posts: %+v", complaintID, owner, f.ws.Posts(""))
	return testslack.Post{}
}

func (f *fixture) replies(root testslack.Post) []testslack.Post {
	var out []testslack.Post
	for _, p := range f.ws.Posts("chat.postMessage") {
		if p.Channel == root.Channel && p.ThreadTS == root.TS {
			out = append(out, p)
		}
	}
	return out
}

func (f *fixture) lastUpdate(root testslack.Post) testslack.Post {
	f.t.Helper()
	var last testslack.Post
	for _, p := range f.ws.Posts("chat.update") {
		if p.Channel == root.Channel && p.TS == root.TS {
			last = p
		}
	}
	if last.TS == "" {
		f.t.Fatalf("the top message %s was never updated", root.TS)
	}
	return last
}

// What must hold: a complaint lives in ONE thread in its owner's DM, whatever
// channel the customer uses; the top message shows the current state.
func TestThreadContinuityAcrossChannels(t *testing.T) {
	f := newFixture(t)
	out := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "order-1", Customer: mila,
		Subject: "Order 104-2233 is late", Body: "I ordered two weeks ago and nothing arrived."})
	f.deliver()
	root := f.threadOf(out.Owner, out.ComplaintID)
	for _, want := range []string{"New complaint for you", "Mila Jansen", "nothing arrived", "fmn_acknowledge", "fmn_reply", "fmn_promise", "fmn_close", "fmn_reassign", "Why you"} {
		if !blocksContain(root, want) {
			t.Errorf("top message lacks %q: %s", want, root.Blocks)
		}
	}
	if n := len(f.ws.Posts("chat.postMessage")); n != 1 {
		t.Fatalf("%d posts after the assignment, want only the top message", n)
	}

	// The customer follows up by e-mail: it threads onto the complaint, and
	// the owner sees it in the same Slack thread.
	f.route(router.Message{Channel: router.ChannelEmail, SourceID: "<m2@example.com>", Customer: mila,
		ComplaintID: out.ComplaintID, Subject: "Re: Order 104-2233 is late", Body: "Any news? I need it by Friday."})
	f.deliver()
	replies := f.replies(root)
	if len(replies) != 1 || !blocksContain(replies[0], "Any news?") || !blocksContain(replies[0], "e-mail") {
		t.Fatalf("thread replies = %+v, want the e-mail message in the complaint's thread", replies)
	}
	if top := f.lastUpdate(root); !blocksContain(top, "1 later message") {
		t.Errorf("top message not updated to the current state: %s", top.Blocks)
	}
	if n := len(f.ws.Posts("chat.postMessage")); n != 2 {
		t.Errorf("%d posts, want 2 (top message and one reply)", n)
	}
}

// What must hold: every kind of notification lands in the thread, readable;
// a reassignment gives the new owner the full case in their own DM.
func TestEveryEventInTheThread(t *testing.T) {
	f := newFixture(t)
	out := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "k1", Customer: mila, Subject: "Broken kettle", Body: "The kettle leaks."})
	f.deliver()
	id, owner := out.ComplaintID, out.Owner
	root := f.threadOf(owner, id)
	steps := []struct {
		do   func() error
		want string
	}{
		{func() error { _, err := f.router.Acknowledge(f.ctx, id, owner); return err }, "Acknowledged"},
		{func() error {
			_, err := f.router.Reply(f.ctx, id, owner, "Sorry! A new kettle is on its way.")
			return err
		}, "new kettle is on its way"},
		{func() error {
			_, err := f.router.Promise(f.ctx, id, owner, time.Now().Add(48*time.Hour), "I will check the delivery.", false)
			return err
		}, "Follow-up promised"},
		{func() error {
			_, err := f.router.Close(f.ctx, id, owner, "Replaced the kettle", "product defect")
			return err
		}, "Replaced the kettle"},
		{func() error {
			f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "k2", Customer: mila, ComplaintID: id, Body: "The new one leaks too!"})
			return nil
		}, "Reopened"},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		f.deliver()
		replies := f.replies(root)
		if len(replies) != i+1 || !blocksContain(replies[i], s.want) {
			t.Fatalf("after step %d the thread has %d replies, last %+v; want %d with %q", i, len(replies), replies[len(replies)-1], i+1, s.want)
		}
	}
	if top := f.lastUpdate(root); !blocksContain(top, "reopened 1") {
		t.Errorf("top message does not show the reopen: %s", top.Blocks)
	}

	// Reassign to someone else in the team: the new owner gets the case.
	to := "sanne"
	if owner == "sanne" {
		to = "anna"
	}
	if _, err := f.router.Reassign(f.ctx, id, owner, to, "Sanne handles repeat defects"); err != nil {
		t.Fatal(err)
	}
	f.deliver()
	newRoot := f.threadOf(to, id)
	if !blocksContain(newRoot, "Reassigned to you") || !blocksContain(newRoot, "repeat defects") || !blocksContain(newRoot, "fmn_close") {
		t.Errorf("new owner's top message = %s", newRoot.Blocks)
	}
	old := f.replies(root)
	if last := old[len(old)-1]; !blocksContain(last, "no longer the owner") {
		t.Errorf("previous owner's thread ends with %s", last.Blocks)
	}
	if top := f.lastUpdate(root); blocksContain(top, "fmn_close") {
		t.Errorf("the previous owner's top message still offers buttons: %s", top.Blocks)
	}
}

// What must hold: a 429 makes the outbox wait Slack's Retry-After, and a
// retry after a post that went through updates instead of posting again.
func TestRateLimitAndRetriesWithoutDuplicates(t *testing.T) {
	f := newFixture(t)
	out := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "r1", Customer: mila, Body: "Refund please, I was charged twice"})
	ns := f.pending()
	if len(ns) != 1 {
		t.Fatalf("%d notifications, want 1", len(ns))
	}
	f.ws.Fail("chat.postMessage", 1, 7, "")
	err := f.slack.Notify(f.ctx, ns[0])
	if after, ok := isRetryAfter(err); !ok || after != 7*time.Second {
		t.Fatalf("Notify under a 429 = %v, want a RetryAfter of 7s", err)
	}
	if err := f.slack.Notify(f.ctx, ns[0]); err != nil {
		t.Fatal(err)
	}
	// The top message went out; now the update after it is rate limited.
	f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "r2", Customer: mila, ComplaintID: out.ComplaintID, Body: "Hello?"})
	ns = f.pending()
	f.ws.Fail("chat.update", 1, 3, "")
	if _, ok := isRetryAfter(f.slack.Notify(f.ctx, ns[0])); !ok {
		t.Fatal("a 429 on chat.update is not a RetryAfter")
	}
	for range 2 { // the retry, and a redelivery after a crash
		if err := f.slack.Notify(f.ctx, ns[0]); err != nil {
			t.Fatal(err)
		}
	}
	root := f.threadOf(out.Owner, out.ComplaintID)
	if n := len(f.ws.Posts("chat.postMessage")); n != 2 {
		t.Errorf("%d messages posted, want 2 (one top message, one reply): retries must not duplicate", n)
	}
	if r := f.replies(root); len(r) != 1 {
		t.Errorf("%d replies in the thread, want 1", len(r))
	}
}

// What must hold: errors no retry fixes are permanent, counted, and shown in
// the health check; a later success clears them.
func TestPermanentErrorsAreReported(t *testing.T) {
	f := newFixture(t)
	f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "p1", Customer: mila, Body: "Invoice is wrong"})
	ns := f.pending()
	// The usual route and the plain-text fallback both fail; this fixture
	// has neither a lead channel nor e-mail, so no route is left.
	f.ws.Fail("users.lookupByEmail", 2, 0, "users_not_found")
	err := f.slack.Notify(f.ctx, ns[0])
	if !router.IsPermanent(err) {
		t.Fatalf("unknown Slack user: %v, want a permanent error", err)
	}
	if err := f.slack.Check(f.ctx); err == nil || !strings.Contains(err.Error(), "users_not_found") {
		t.Errorf("Check = %v, want the unknown user named", err)
	}
	f.ws.Fail("chat.postMessage", 2, 0, "token_revoked")
	if err := f.slack.Notify(f.ctx, ns[0]); !router.IsPermanent(err) {
		t.Fatalf("revoked token: %v, want a permanent error", err)
	}
	if err := f.slack.Check(f.ctx); err == nil || !strings.Contains(err.Error(), "token_revoked") {
		t.Errorf("Check = %v, want the revoked token", err)
	}
	if got := f.permanentCodes(); !slices.Equal(got, []string{"users_not_found", "users_not_found", "token_revoked", "token_revoked"}) {
		t.Errorf("permanent error codes counted: %v", got)
	}
	if err := f.slack.Notify(f.ctx, ns[0]); err != nil {
		t.Fatal(err)
	}
	if err := f.slack.Check(f.ctx); err != nil {
		t.Errorf("Check after a successful delivery = %v, want nil", err)
	}
}

// What must hold: the lead channel hears of escalations and over-capacity
// assignments, once each however often the notification is delivered.
func TestLeadChannel(t *testing.T) {
	f := newFixture(t, func(c *slack.Config) { c.LeadChannel = "CLEAD" })
	f.ws.AddChannel("CLEAD")
	out := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "l1", Customer: mila, Body: "Nobody answers me"})
	f.deliver()
	if n := len(f.leadPosts()); n != 0 {
		t.Fatalf("%d lead posts for an ordinary assignment", n)
	}
	c, _ := f.complaint(out.ComplaintID)
	esc := router.Notification{ID: c.ID + ":esc:sanne", Kind: router.NotifyEscalation, Recipient: "sanne", At: time.Now(), Complaint: c,
		Event: &router.Event{Type: "escalated", Actor: router.ActorRouter, Owner: c.Owner, Reason: "first response overdue by 2h"}}
	over := router.Notification{ID: c.ID + ":over:" + c.Owner, Kind: router.NotifyAssigned, Recipient: c.Owner, At: time.Now(), Complaint: c,
		Event: &router.Event{Type: router.EventAssigned, Actor: router.ActorRouter, Owner: c.Owner, Details: map[string]string{"over_capacity": "true"}}}
	over.Complaint.Version++ // a later change
	for range 2 {
		for _, n := range []router.Notification{esc, over} {
			if err := f.slack.Notify(f.ctx, n); err != nil {
				t.Fatal(err)
			}
		}
	}
	lead := f.leadPosts()
	if len(lead) != 2 || !blocksContain(lead[0], "overdue by 2h") || !blocksContain(lead[1], "Over capacity") {
		t.Fatalf("lead channel = %+v, want one escalation and one over-capacity notice", lead)
	}
	// The lead also has the case in their own DM, with buttons: they may act.
	if root := f.threadOf("sanne", c.ID); !blocksContain(root, "Escalated to you") || !blocksContain(root, "fmn_reassign") {
		t.Errorf("lead's DM = %s", root.Blocks)
	}
	// A lead channel the app cannot post in does not hold up owners.
	f.ws.FailIn("chat.postMessage", "CLEAD", 1, "not_in_channel")
	esc.ID, esc.Complaint.Version = esc.ID+"-2", esc.Complaint.Version+5
	if err := f.slack.Notify(context.Background(), esc); err != nil {
		t.Fatalf("notify with a broken lead channel: %v", err)
	}
	if err := f.slack.Check(f.ctx); err == nil || !strings.Contains(err.Error(), "lead channel CLEAD: not_in_channel") {
		t.Errorf("Check = %v, want the lead channel problem", err)
	}
}

func (f *fixture) leadPosts() []testslack.Post {
	var out []testslack.Post
	for _, p := range f.ws.Posts("chat.postMessage") {
		if p.Channel == "CLEAD" {
			out = append(out, p)
		}
	}
	return out
}

// What must hold: an alert about no one complaint (the complaint rate) still
// reaches its recipient, as a DM of its own, once however often it is
// delivered; it is not a permanent failure.
func TestComplaintRateAlertIsADirectMessage(t *testing.T) {
	f := newFixture(t)
	ev := router.Event{Type: router.EventBreached, Actor: router.ActorRouter,
		Reason:  "complaint rate 2026-W10: 12 complaints on 400 (3.00%) reached the threshold of 2.00%",
		Details: map[string]string{"period": "2026-W10", "complaints": "12", "volume": "400"}}
	n := router.Notification{ID: "complaint-rate:2026-W10:sanne", Kind: router.NotifyComplaintRate, Recipient: "sanne", At: time.Now(), Event: &ev}
	for range 2 { // the delivery, and a redelivery after a crash
		if err := f.slack.Notify(f.ctx, n); err != nil {
			t.Fatalf("notify the complaint-rate alert: %v", err)
		}
	}
	posts := f.ws.Posts("chat.postMessage")
	if len(posts) != 1 {
		t.Fatalf("%d posts, want exactly one alert: %+v", len(posts), posts)
	}
	p := posts[0]
	if p.Channel != "D"+f.slackUserOf("sanne") || p.ThreadTS != "" {
		t.Errorf("alert posted to %s (thread %q), want a top-level message in sanne's DM", p.Channel, p.ThreadTS)
	}
	if !blocksContain(p, "Complaint rate alert") || !blocksContain(p, "3.00%") {
		t.Errorf("alert does not say what happened: %s", p.Blocks)
	}
}

// What must hold (issue 6: "crossing it alerts the lead channel"): with a
// lead channel, a complaint-rate alert is posted there too, once per period
// however many owners it goes to and however often it is delivered; each
// owner alerted still gets their DM.
func TestComplaintRateAlertReachesTheLeadChannelOncePerPeriod(t *testing.T) {
	f := newFixture(t, func(c *slack.Config) { c.LeadChannel = "CLEAD" })
	f.ws.AddChannel("CLEAD")
	alert := func(period, to string) router.Notification {
		ev := router.Event{Type: router.EventBreached, Actor: router.ActorRouter,
			Reason:  "complaint rate " + period + ": 12 complaints on 400 (3.00%) reached the threshold of 2.00%",
			Details: map[string]string{"period": period, "complaints": "12", "volume": "400"}}
		return router.Notification{ID: "complaint-rate:" + period + ":" + to, Kind: router.NotifyComplaintRate, Recipient: to, At: time.Now(), Event: &ev}
	}
	for range 2 { // the delivery, and a redelivery after a crash
		for _, n := range []router.Notification{alert("2026-W10", "sanne"), alert("2026-W10", "anna"), alert("2026-W11", "sanne")} {
			if err := f.slack.Notify(f.ctx, n); err != nil {
				t.Fatalf("notify %s: %v", n.ID, err)
			}
		}
	}
	lead := f.leadPosts()
	if len(lead) != 2 || !blocksContain(lead[0], "2026-W10") || !blocksContain(lead[1], "2026-W11") {
		t.Fatalf("lead channel got %d posts (%+v), want one alert per period", len(lead), lead)
	}
	if !blocksContain(lead[0], "Complaint rate alert") || !blocksContain(lead[0], "3.00%") {
		t.Errorf("lead channel alert does not say what happened: %s", lead[0].Blocks)
	}
	dms := 0
	for _, p := range f.ws.Posts("chat.postMessage") {
		if p.Channel != "CLEAD" {
			dms++
		}
	}
	if dms != 3 {
		t.Errorf("%d DMs, want 3 (sanne twice, anna once)", dms)
	}
	// The notifications of one alert delivered at the same moment (two
	// delivery workers, two replicas): still one post in the lead channel.
	var wg sync.WaitGroup
	for _, to := range []string{"sanne", "anna", "chloe", "bas"} {
		wg.Go(func() {
			if err := f.slack.Notify(f.ctx, alert("2026-W12", to)); err != nil {
				t.Errorf("notify %s: %v", to, err)
			}
		})
	}
	wg.Wait()
	n := 0
	for _, p := range f.leadPosts() {
		if blocksContain(p, "2026-W12") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d lead posts for one alert delivered to four owners at once, want 1", n)
	}
	// A lead post that fails frees the period at once: the redelivery,
	// however soon it comes, posts it (not skipped as posted already).
	f.ws.FailIn("chat.postMessage", "CLEAD", 1, "internal_error")
	if err := f.slack.Notify(f.ctx, alert("2026-W13", "sanne")); err == nil {
		t.Fatal("a failed lead post was reported as delivered")
	}
	if err := f.slack.Notify(f.ctx, alert("2026-W13", "sanne")); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	n = 0
	for _, p := range f.leadPosts() {
		if blocksContain(p, "2026-W13") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d lead posts for an alert whose first post failed, want 1 (by the redelivery)", n)
	}
}

// What must hold: a Slack that takes the request and never answers fails the
// call (the outbox retries it later) instead of holding the worker forever.
func TestUnansweredSlackCallFails(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets the server close
	f := newFixture(t, func(c *slack.Config) { c.APIURL, c.HTTPTimeout = hung.URL, 200*time.Millisecond })
	f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "h1", Customer: mila, Body: "Where is my order?"})
	ns := f.pending()
	if len(ns) == 0 {
		t.Fatal("no notification to deliver")
	}
	done := make(chan error, 1)
	go func() { done <- f.slack.Notify(context.Background(), ns[0]) }()
	var err error
	testkit.WaitFor(t, "Notify to give up on the silent Slack", func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	if err == nil || router.IsPermanent(err) {
		t.Errorf("Notify against a silent Slack = %v, want an error the outbox retries", err)
	}
}

// What must hold: when the customer cannot be written to (a mail without a
// usable sender), the owner's top message says so and why, so nobody waits
// for an answer to an acknowledgement that was never sent.
func TestUnreachableCustomerIsShownToTheOwner(t *testing.T) {
	f := newFixture(t)
	out := f.route(router.Message{Channel: router.ChannelEmail, SourceID: "<nosender@example.com>",
		Subject: "Broken lamp", Body: "It flickers.", Unreachable: "the mail has no readable sender address"})
	f.deliver()
	root := f.threadOf(out.Owner, out.ComplaintID)
	if !blocksContain(root, "cannot be written to: the mail has no readable sender address") {
		t.Errorf("top message does not say the customer cannot be written to: %s", root.Blocks)
	}
}
