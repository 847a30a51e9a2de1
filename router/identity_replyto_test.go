package router_test

import (
	"testing"

	"github.com/forgetmenot/forgetmenot/router"
)

// What must hold: the address a complaint's first message asks answers to
// go to (an e-mail's Reply-To) is its customer's from the start, whether or
// not an acknowledgement went there (held back for a web form's relay):
// replies go there, and the customer's answer from there joins.
func TestTheOpeningReplyToIsTheCustomers(t *testing.T) {
	d := newDesk(t)
	m := d.msg("noreply@form.example", "Het formulier: mijn pakket is zoek.")
	m.ReplyTo = "jan@voorbeeld.nl"
	out := d.route(m)
	c, _ := d.complaint(out.ComplaintID)
	if !c.Proves(router.EmailIdentity("jan@voorbeeld.nl")) {
		t.Fatalf("identities %v: the opening Reply-To is not the customer's", c.Identities)
	}
	follow := d.msg("jan@voorbeeld.nl", "Nog iets over mijn pakket.")
	follow.ComplaintID = out.ComplaintID
	if got := d.route(follow); got.ComplaintID != out.ComplaintID {
		t.Errorf("the answer from the Reply-To address went to %s, want %s", got.ComplaintID, out.ComplaintID)
	}
}
