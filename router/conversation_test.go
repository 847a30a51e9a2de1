package router_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// byEmail reaches customers by e-mail when they left an address, like a
// daemon with only SMTP configured.
type byEmail struct{}

func (byEmail) Reach(c router.Complaint) (router.Channel, error) {
	if c.Customer.Email == "" {
		return "", errors.New("no address")
	}
	return router.ChannelEmail, nil
}

func TestNewComplaintQueuesAnAcknowledgementNamingTheOwner(t *testing.T) {
	d := newDeskWith(t, byEmail{})
	m := d.msg("klant@voorbeeld.nl", "Mijn pakket is kapot aangekomen.")
	m.ThreadKeys = []string{"email:<a1@voorbeeld.nl>"}
	out := d.route(m)

	acks := d.toCustomer()
	if len(acks) != 1 {
		t.Fatalf("customer messages = %+v, want exactly one acknowledgement", acks)
	}
	a := acks[0]
	if a.Kind != router.ToCustomerAcknowledgement || a.Complaint.ID != out.ComplaintID || a.OwnerName != "Anna" {
		t.Errorf("acknowledgement = %+v, want one for %s naming Anna", a, out.ComplaintID)
	}
	if a.InReplyTo == nil || a.InReplyTo.ID != m.ID || strings.Join(a.References, " ") != "email:<a1@voorbeeld.nl>" {
		t.Errorf("acknowledgement does not answer the customer's message: in reply to %+v, references %v", a.InReplyTo, a.References)
	}

	// A redelivered message must not acknowledge twice.
	d.route(m)
	if n := len(d.toCustomer()); n != 1 {
		t.Errorf("after a redelivery %d customer messages are queued, want still 1", n)
	}
}

func TestNoAcknowledgementWhereItWouldLoopOrCannotArrive(t *testing.T) {
	d := newDeskWith(t, byEmail{})
	auto := d.msg("mailer@shop.example", "I am out of the office until Monday.")
	auto.NoAutoReply = "Auto-Submitted: auto-replied"
	out := d.route(auto)
	anon := d.msg("", "Your website is broken.")
	d.route(anon)

	if n := len(d.toCustomer()); n != 0 {
		t.Fatalf("%d customer messages queued, want none (autoresponder, and a customer without address)", n)
	}
	_, tl := d.complaint(out.ComplaintID)
	sent := events(tl, router.EventSent)
	if len(sent) != 1 || !strings.Contains(sent[0].Reason, "not sent: Auto-Submitted: auto-replied") {
		t.Errorf("timeline sent events = %+v, want the held-back acknowledgement recorded with its reason", sent)
	}
	if messageCount(tl) != 1 {
		t.Error("the autoresponder's message must still be on the complaint")
	}
}

func TestReplyIsRecordedAndQueuedForTheCustomerInTheirThread(t *testing.T) {
	ctx := context.Background()
	d := newDeskWith(t, byEmail{})
	first := d.msg("klant@voorbeeld.nl", "Mijn pakket is kapot.")
	first.ThreadKeys = []string{"email:<m1@voorbeeld.nl>"}
	out := d.route(first)
	second := d.msg("klant@voorbeeld.nl", "Hier is een foto.")
	second.ThreadKeys = []string{"email:<m2@voorbeeld.nl>", "email:<m1@voorbeeld.nl>"}
	d.route(second)
	d.clock.Advance(time.Hour)

	c, err := d.router.Reply(ctx, out.ComplaintID, "bas", "  Excuses! Er gaat vandaag een nieuw exemplaar naar u toe.  ")
	if err != nil {
		t.Fatal(err)
	}
	if c.FirstResponseAt.IsZero() || c.Owner != "anna" {
		t.Errorf("after the reply: first response %v, owner %s; want it set and anna still owner", c.FirstResponseAt, c.Owner)
	}
	var reply *router.CustomerMessage
	for _, m := range d.toCustomer() {
		if m.Kind == router.ToCustomerReply {
			reply = &m
		}
	}
	switch {
	case reply == nil:
		t.Fatal("no reply queued for the customer")
	case reply.Body != "Excuses! Er gaat vandaag een nieuw exemplaar naar u toe.":
		t.Errorf("reply body = %q", reply.Body)
	case reply.AuthorName != "Bas for Anna" || reply.CoverName != "Bas":
		t.Errorf("signed %q (cover %q), want %q by Bas: a colleague answers for the owner", reply.AuthorName, reply.CoverName, "Bas for Anna")
	case reply.InReplyTo == nil || reply.InReplyTo.ID != second.ID:
		t.Errorf("reply answers %+v, want the latest customer message %s", reply.InReplyTo, second.ID)
	case len(reply.References) != 3:
		t.Errorf("references = %v, want every thread key of the conversation", reply.References)
	}
	_, tl := d.complaint(out.ComplaintID)
	rs := events(tl, router.EventReplied)
	if len(rs) != 1 || rs[0].Actor != "bas" || !strings.HasPrefix(rs[0].Text, "Excuses!") || rs[0].Details["via"] != "email" {
		t.Errorf("replied events = %+v", rs)
	}
}

func TestReplyIsRefusedWhenNothingWouldArrive(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		reach router.Reachability
		email string
		close bool
		check func(error) bool
	}{
		{"no channel configured", nil, "klant@voorbeeld.nl", false, func(err error) bool { return isField(err, "channel") }},
		{"customer without address", byEmail{}, "", false, func(err error) bool { return isField(err, "channel") }},
		{"closed complaint", byEmail{}, "klant@voorbeeld.nl", true, func(err error) bool { return errors.Is(err, router.ErrInvalidState) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeskWith(t, tt.reach)
			out := d.route(d.msg(tt.email, "Broken again."))
			if tt.close {
				if _, err := d.router.Close(ctx, out.ComplaintID, "anna", "Replaced", ""); err != nil {
					t.Fatal(err)
				}
			}
			before := len(d.outbox())
			_, err := d.router.Reply(ctx, out.ComplaintID, "anna", "We are on it.")
			if !tt.check(err) {
				t.Fatalf("reply error = %v", err)
			}
			if len(d.outbox()) != before {
				t.Error("a refused reply must queue nothing")
			}
		})
	}
	d := newDeskWith(t, byEmail{})
	out := d.route(d.msg("klant@voorbeeld.nl", "Broken again."))
	if _, err := d.router.Reply(ctx, out.ComplaintID, "anna", "   "); !isField(err, "body") {
		t.Errorf("empty reply: %v, want a body error", err)
	}
}

func TestRecordSentThreadsTheCustomersAnswerBack(t *testing.T) {
	ctx := context.Background()
	d := newDeskWith(t, byEmail{})
	out := d.route(d.msg("klant@voorbeeld.nl", "Where is my refund?"))
	if _, err := d.router.Reply(ctx, out.ComplaintID, "anna", "It left today."); err != nil {
		t.Fatal(err)
	}
	reply := d.queued(router.ToCustomerReply)
	sent := router.Sent{Via: "email", Ref: "<r1@support.example>", ThreadKeys: []string{"email:<r1@support.example>"}}
	for range 2 { // a redelivered report records once
		if err := d.router.RecordSent(ctx, reply, sent); err != nil {
			t.Fatal(err)
		}
	}
	_, tl := d.complaint(out.ComplaintID)
	var replySent []router.Event
	for _, e := range events(tl, router.EventSent) {
		if e.Details["message"] == reply.ID {
			replySent = append(replySent, e)
		}
	}
	if len(replySent) != 1 || replySent[0].Details["ref"] != "<r1@support.example>" {
		t.Fatalf("sent events for the reply = %+v, want exactly one with the Message-ID", replySent)
	}

	// The customer answers the reply from a new mail client: only the
	// In-Reply-To of our reply ties it to the complaint.
	answer := d.msg("klant@voorbeeld.nl", "Thanks, it arrived.")
	answer.ThreadKeys = []string{"email:<x9@voorbeeld.nl>", "email:<r1@support.example>"}
	if got := d.route(answer); got.Kind != router.OutcomeAttached || got.ComplaintID != out.ComplaintID || got.Owner != "anna" {
		t.Errorf("answer to our reply = %+v, want attached to %s with anna", got, out.ComplaintID)
	}
}

func TestUndeliverableMessageIsRecordedAndToldToTheOwner(t *testing.T) {
	ctx := context.Background()
	d := newDeskWith(t, byEmail{})
	out := d.route(d.msg("klant@voorbeeld.nl", "Where is my refund?"))
	if _, err := d.router.Reply(ctx, out.ComplaintID, "anna", "It left today."); err != nil {
		t.Fatal(err)
	}
	reply := d.queued(router.ToCustomerReply)
	cause := errors.New("550 5.1.1 mailbox unknown")
	for range 2 {
		if err := d.router.RecordUndeliverable(ctx, reply, cause); err != nil {
			t.Fatal(err)
		}
	}
	_, tl := d.complaint(out.ComplaintID)
	failed := events(tl, router.EventDeliveryFailed)
	if len(failed) != 1 || !strings.Contains(failed[0].Reason, "550 5.1.1") || failed[0].Text != "It left today." {
		t.Fatalf("delivery_failed events = %+v, want one with the cause and the undelivered text", failed)
	}
	var told int
	for _, o := range d.outbox() {
		if n := o.Notification; n != nil && n.Kind == router.NotifyDeliveryFailed && n.Recipient == "anna" {
			told++
		}
	}
	if told != 1 {
		t.Errorf("owner told %d times about the failure, want once", told)
	}
}

func TestAcknowledgeNoteAndPromise(t *testing.T) {
	ctx := context.Background()
	d := newDeskWith(t, byEmail{})
	out := d.route(d.msg("klant@voorbeeld.nl", "The app crashes."))
	id := out.ComplaintID

	for range 2 {
		if _, err := d.router.Acknowledge(ctx, id, "anna"); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // a redelivered chat event with the same key records once
		if _, err := d.router.AddNote(ctx, id, "anna", "Called the customer, no answer.", "slack:1700000000.0001"); err != nil {
			t.Fatal(err)
		}
	}
	by := d.clock.Now().Add(26 * time.Hour)
	if _, err := d.router.Promise(ctx, id, "anna", d.clock.Now().Add(-time.Minute), "Too late", false); !isField(err, "by") {
		t.Errorf("promise in the past: %v, want a by error", err)
	}
	if _, err := d.router.Promise(ctx, id, "anna", by, "", true); !isField(err, "note") {
		t.Errorf("promise to tell the customer without words: %v, want a note error", err)
	}
	c, err := d.router.Promise(ctx, id, "anna", by, "I will call you back tomorrow at 11:00.", true)
	if err != nil {
		t.Fatal(err)
	}
	if !c.PromisedBy.Equal(by) || c.AcknowledgedAt.IsZero() {
		t.Errorf("complaint = %+v, want the promise and the acknowledgement on it", c)
	}
	_, tl := d.complaint(id)
	if n := len(events(tl, router.EventAcknowledged)); n != 1 {
		t.Errorf("%d acknowledged events, want 1", n)
	}
	if notes := events(tl, router.EventNote); len(notes) != 1 || notes[0].Text != "Called the customer, no answer." {
		t.Errorf("notes = %+v, want one", notes)
	}
	var promised []router.CustomerMessage
	for _, m := range d.toCustomer() {
		if m.Kind == router.ToCustomerPromise {
			promised = append(promised, m)
		}
		if m.Kind == router.ToCustomerReply || strings.Contains(m.Body, "Called the customer") {
			t.Errorf("an internal note reached the customer outbox: %+v", m)
		}
	}
	if len(promised) != 1 || promised[0].Body != "I will call you back tomorrow at 11:00." {
		t.Errorf("promise messages to the customer = %+v", promised)
	}

	// The customer now waits for that moment. Moving it without telling
	// them would break the promise without a word: refused, naming why;
	// told, it is replaced.
	later := by.Add(2 * time.Hour)
	if _, err := d.router.Promise(ctx, id, "anna", later, "later", false); !isField(err, "tell_customer") {
		t.Errorf("moving a promise the customer was told of, untold: %v, want a tell_customer error", err)
	}
	if c, _ := d.complaint(id); !c.PromisedBy.Equal(by) {
		t.Errorf("the refused promise changed the pending one to %v", c.PromisedBy)
	}
	if c, err := d.router.Promise(ctx, id, "anna", later, "Sorry, I will call at 13:00 instead.", true); err != nil || !c.PromisedBy.Equal(later) {
		t.Errorf("moving it and telling the customer: %v, %v", c.PromisedBy, err)
	}
	// The customer can no longer be written to (their latest mail says
	// so): the promise may still be moved, and the timeline says why they
	// were not told.
	gone := d.msg("klant@voorbeeld.nl", "Dit adres wordt opgeheven.")
	gone.ComplaintID, gone.Unreachable = id, "the sender address cannot receive mail"
	d.route(gone)
	if c, err := d.router.Promise(ctx, id, "anna", later.Add(time.Hour), "later still", false); err != nil || !c.PromisedBy.Equal(later.Add(time.Hour)) {
		t.Errorf("moving a told promise when the customer cannot be told: %v, %v", c.PromisedBy, err)
	}
	_, tl = d.complaint(id)
	if ps := events(tl, router.EventPromised); !strings.Contains(ps[len(ps)-1].Reason, "cannot be told") {
		t.Errorf("the last promise says %q, want why the customer was not told", ps[len(ps)-1].Reason)
	}
	// An internal promise (never told) may be moved freely.
	out2 := d.route(d.msg("ander@voorbeeld.nl", "Waar blijft mijn pakket?"))
	first := d.clock.Now().Add(5 * time.Hour)
	if _, err := d.router.Promise(ctx, out2.ComplaintID, out2.Owner, first, "check with the courier", false); err != nil {
		t.Fatal(err)
	}
	if _, err := d.router.Promise(ctx, out2.ComplaintID, out2.Owner, first.Add(time.Hour), "check again", false); err != nil {
		t.Errorf("moving an internal promise: %v", err)
	}
}

func TestMayActOwnerOrLeadOnly(t *testing.T) {
	d := newDesk(t)
	out := d.route(d.msg("klant@voorbeeld.nl", "Mijn pakket is niet aangekomen."))
	c, _ := d.complaint(out.ComplaintID)
	for who, want := range map[string]bool{"anna": true, "chloe": true, "bas": false, "": false, "daan": false} {
		if got := d.router.MayAct(c, who); got != want {
			t.Errorf("MayAct(%q) = %v, want %v (owner anna, lead chloe)", who, got, want)
		}
	}
}

// queued returns the last customer message of the kind in the outbox.
func (d *desk) queued(kind router.CustomerMessageKind) router.CustomerMessage {
	d.t.Helper()
	var last *router.CustomerMessage
	for _, m := range d.toCustomer() {
		if m.Kind == kind {
			last = &m
		}
	}
	if last == nil {
		d.t.Fatalf("no %s queued for the customer", kind)
	}
	return *last
}
