package router_test

import (
	"context"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/router"
)

// TestUnreachableCustomerIsDecidedAtRouting: an e-mail without a usable
// sender address (the channel says so) opens a complaint as usual, but no
// acknowledgement is queued: the timeline says once why, the owner's
// assignment notification carries it, and a staff reply is refused at once
// instead of failing in delivery. A later mail from the customer that can be
// answered makes the complaint reachable again.
func TestUnreachableCustomerIsDecidedAtRouting(t *testing.T) {
	d := newDeskWith(t, byEmail{})
	m := d.msg("bob@extern", "Mijn fiets is kapot")
	m.Channel = router.ChannelEmail
	m.Unreachable = "no usable sender address (From: bob@extern)"
	out := d.route(m)
	if out.Kind != router.OutcomeOpened {
		t.Fatalf("outcome %+v, want a new complaint", out)
	}
	if cm := d.toCustomer(); len(cm) != 0 {
		t.Fatalf("%d customer messages queued, want none: nothing can reach this customer", len(cm))
	}
	c, tl := d.complaint(out.ComplaintID)
	if c.Unreachable != m.Unreachable {
		t.Errorf("complaint.Unreachable = %q, want %q", c.Unreachable, m.Unreachable)
	}
	said := 0
	for _, ev := range events(tl, router.EventSent) {
		if strings.Contains(ev.Reason, "cannot be written to") && strings.Contains(ev.Reason, "bob@extern") {
			said++
		}
	}
	if said != 1 {
		t.Errorf("the timeline says %d times that the customer cannot be written to, want once: %+v", said, tl)
	}
	notes := d.notes(router.NotifyAssigned)
	if len(notes) != 1 || notes[0].Complaint.Unreachable == "" || notes[0].Event == nil || notes[0].Event.Details["customer_unreachable"] == "" {
		t.Errorf("the owner's assignment notification must say the customer cannot be written to: %+v", notes)
	}
	if _, err := d.router.Reply(context.Background(), out.ComplaintID, c.Owner, "We sturen een nieuwe fiets."); err == nil || !strings.Contains(err.Error(), "cannot be written to") {
		t.Errorf("reply to an unreachable customer: %v, want a clear refusal", err)
	}
	if cm := d.toCustomer(); len(cm) != 0 {
		t.Errorf("%d customer messages queued after the refused reply", len(cm))
	}

	// The same customer writes again from a mail that can be answered.
	again := d.msg("bob@extern", "Re: ["+out.ComplaintID+"] nog steeds kapot")
	again.Channel, again.ComplaintID = router.ChannelEmail, out.ComplaintID
	if got := d.route(again); got.ComplaintID != out.ComplaintID {
		t.Fatalf("second mail = %+v, want attached", got)
	}
	if c, _ := d.complaint(out.ComplaintID); c.Unreachable != "" {
		t.Errorf("complaint still unreachable after an answerable mail: %q", c.Unreachable)
	}
	if _, err := d.router.Reply(context.Background(), out.ComplaintID, c.Owner, "We sturen een nieuwe fiets."); err != nil {
		t.Errorf("reply once reachable: %v", err)
	}
}
