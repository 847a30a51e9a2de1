package router_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// byChat reaches every customer through the chat, like a daemon with the web
// chat on.
type byChat struct{}

func (byChat) Reach(router.Complaint) (router.Channel, error) { return router.ChannelChat, nil }

// replied routes a chat complaint from a visitor who left an address, replies
// to it and records the reply as delivered live with the unseen watch on.
func replied(t *testing.T, d *desk, email string) (string, router.CustomerMessage) {
	t.Helper()
	ctx := context.Background()
	m := d.msg(email, "The lamp flickers.")
	m.Channel = router.ChannelChat
	id := d.route(m).ComplaintID
	d.clock.Advance(time.Minute)
	if _, err := d.router.Reply(ctx, id, "anna", "Try another bulb, please."); err != nil {
		t.Fatal(err)
	}
	var reply router.CustomerMessage
	for _, cm := range d.toCustomer() {
		if cm.Kind == router.ToCustomerReply {
			reply = cm
		}
	}
	sent := router.Sent{Via: "chat", Ref: "live", Unseen: &router.UnseenFallback{After: 10 * time.Minute, Via: router.ChannelEmail}}
	for range 2 { // a redelivered outbox entry records (and arms) once
		if err := d.router.RecordSent(ctx, reply, sent); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := d.complaint(id)
	var unseen []router.Timer
	for _, tm := range c.Timers {
		if tm.Kind == router.TimerUnseen {
			unseen = append(unseen, tm)
		}
	}
	if len(unseen) != 1 || unseen[0].Ref != router.SaidRef(router.ToCustomerReply, reply.At) || !unseen[0].Due.Equal(d.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("timers %+v, want one unseen fallback for the reply due in 10 minutes", c.Timers)
	}
	return id, reply
}

func TestSeenReplyIsRecordedOnceAndCancelsTheEmail(t *testing.T) {
	d := newDeskWith(t, byChat{})
	ctx := context.Background()
	id, reply := replied(t, d, "jan@example.nl")
	ref := router.SaidRef(reply.Kind, reply.At)

	d.clock.Advance(2 * time.Minute)
	for range 3 { // every window of the session reports it; one line
		if err := d.router.RecordSeen(ctx, id, ref, router.ChannelChat); err != nil {
			t.Fatal(err)
		}
	}
	c, tl := d.complaint(id)
	if seen := events(tl, router.EventSeen); len(seen) != 1 || !strings.Contains(seen[0].Reason, "saw the reply in chat") {
		t.Fatalf("seen events %+v, want exactly one", seen)
	}
	for _, tm := range c.Timers {
		if tm.Kind == router.TimerUnseen {
			t.Fatalf("the unseen fallback must be cancelled once seen: %+v", c.Timers)
		}
	}
	d.clock.Advance(time.Hour)
	before := len(d.toCustomer())
	if _, err := d.router.FireDue(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if n := len(d.toCustomer()); n != before {
		t.Fatalf("a seen reply was queued again (%d → %d customer messages)", before, n)
	}
	if err := d.router.RecordSeen(ctx, id, "reply@yesterday", router.ChannelChat); err == nil {
		t.Fatal("a malformed reference must be refused")
	}
}

func TestUnseenReplyIsEmailedOnceEvenAfterTheClose(t *testing.T) {
	d := newDeskWith(t, byChat{})
	ctx := context.Background()
	id, reply := replied(t, d, "jan@example.nl")
	// Staff close right after replying: the reply must still reach the
	// visitor who never looked at the chat again.
	if _, err := d.router.Close(ctx, id, "anna", "bulb replaced", ""); err != nil {
		t.Fatal(err)
	}
	d.clock.Advance(9 * time.Minute)
	if n, _ := d.router.FireDue(ctx, 100); n != 0 {
		t.Fatalf("fired %d timers before the delay", n)
	}
	d.clock.Advance(2 * time.Minute)
	// Two replicas look at once: it fires once.
	n1, err1 := d.router.FireDue(ctx, 100)
	n2, err2 := d.router.FireDue(ctx, 100)
	if err1 != nil || err2 != nil || n1+n2 != 1 {
		t.Fatalf("fired %d+%d (%v %v), want exactly one", n1, n2, err1, err2)
	}
	var again []router.CustomerMessage
	for _, cm := range d.toCustomer() {
		if cm.Fallback != "" {
			again = append(again, cm)
		}
	}
	if len(again) != 1 {
		t.Fatalf("fallback messages %+v, want one", again)
	}
	a := again[0]
	if a.Fallback != router.ChannelEmail || a.Kind != router.ToCustomerReply || a.Body != reply.Body || a.AuthorName != "Anna" || a.ID == reply.ID {
		t.Errorf("fallback %+v, want the same reply with its own id, for e-mail", a)
	}
	_, tl := d.complaint(id)
	if un := events(tl, router.EventUnseen); len(un) != 1 || !strings.Contains(un[0].Reason, "e-mailed to jan@example.nl") {
		t.Fatalf("unseen events %+v", un)
	}
}

func TestUnseenReplyWithoutAddressSaysSoAndSendsNothing(t *testing.T) {
	d := newDeskWith(t, byChat{})
	ctx := context.Background()
	id, _ := replied(t, d, "")
	d.clock.Advance(11 * time.Minute)
	if _, err := d.router.FireDue(ctx, 100); err != nil {
		t.Fatal(err)
	}
	for _, cm := range d.toCustomer() {
		if cm.Fallback != "" {
			t.Fatalf("queued %+v for a visitor without an address", cm)
		}
	}
	_, tl := d.complaint(id)
	if un := events(tl, router.EventUnseen); len(un) != 1 || !strings.Contains(un[0].Reason, "no e-mail address") {
		t.Fatalf("unseen events %+v", un)
	}
}

// The clock has millisecond resolution, and what was said to a customer is
// named by its kind and moment. What must hold: two replies in the same
// millisecond get different names, so the customer seeing one cancels
// only its own fallback, and each fallback would send its own text.
func TestTwoRepliesInOneMillisecondAreToldApart(t *testing.T) {
	d := newDeskWith(t, byChat{})
	ctx := context.Background()
	id, first := replied(t, d, "jan@example.nl") // the clock stands still from here
	if _, err := d.router.Reply(ctx, id, "anna", "Or a new lamp, on us."); err != nil {
		t.Fatal(err)
	}
	var second router.CustomerMessage
	for _, cm := range d.toCustomer() {
		if cm.Kind == router.ToCustomerReply && cm.Body == "Or a new lamp, on us." {
			second = cm
		}
	}
	if second.At.Equal(first.At) {
		t.Fatalf("both replies said at %v", first.At)
	}
	sent := router.Sent{Via: "chat", Ref: "live", Unseen: &router.UnseenFallback{After: 10 * time.Minute, Via: router.ChannelEmail}}
	if err := d.router.RecordSent(ctx, second, sent); err != nil {
		t.Fatal(err)
	}
	if err := d.router.RecordSeen(ctx, id, router.SaidRef(first.Kind, first.At), router.ChannelChat); err != nil {
		t.Fatal(err)
	}
	c, tl := d.complaint(id)
	var refs []string
	for _, tm := range c.Timers {
		if tm.Kind == router.TimerUnseen {
			refs = append(refs, tm.Ref)
		}
	}
	if want := router.SaidRef(second.Kind, second.At); len(refs) != 1 || refs[0] != want {
		t.Errorf("unseen fallbacks %v after the first reply was seen, want only the second's (%s)", refs, want)
	}
	var texts []string
	for _, e := range events(tl, router.EventReplied) {
		texts = append(texts, e.Text)
	}
	if len(texts) != 2 {
		t.Errorf("replies on the timeline: %q", texts)
	}
}
