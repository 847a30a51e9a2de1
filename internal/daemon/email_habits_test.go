package daemon_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/internal/testdovecot"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/router"
)

// mailServers run a test against go-imap's in-memory server and a real
// Dovecot; deliver puts a mail in the INBOX as an MTA would.
var mailServers = []struct {
	name  string
	start func(t *testing.T) (r *running, deliver func([]byte), smtpSrv *emailtest.SMTP)
}{
	{"imapmemserver", func(t *testing.T) (*running, func([]byte), *emailtest.SMTP) {
		r, imapSrv, smtpSrv := startWithEmail(t)
		return r, func(raw []byte) { imapSrv.Deliver(t, "INBOX", raw) }, smtpSrv
	}},
	{"dovecot", func(t *testing.T) (*running, func([]byte), *emailtest.SMTP) {
		dc := testdovecot.Start(t, testdovecot.Options{})
		r, smtpSrv := startWithMailbox(t, dc.Host, dc.Port, dc.Username, dc.Password)
		return r, func(raw []byte) { dc.Append(t, "", "INBOX", raw) }, smtpSrv
	}},
}

// TestReplyToAddressIsTheCustomers: a mail from a@ asking for answers at b@
// (Reply-To). The acknowledgement goes to b@; b's answer to it, with the
// complaint's token in the subject, lands on the same complaint: we wrote to
// b@ for this complaint, which proves b@ is its customer. A stranger
// answering the same thread still does not get in.
func TestReplyToAddressIsTheCustomers(t *testing.T) {
	for _, srv := range mailServers {
		t.Run(srv.name, func(t *testing.T) {
			r, deliver, smtpSrv := srv.start(t)
			testReplyTo(t, r, deliver, smtpSrv)
		})
	}
}

func testReplyTo(t *testing.T, r *running, deliver func([]byte), smtpSrv *emailtest.SMTP) {
	deliver([]byte("From: Anna <a@voorbeeld.nl>\r\nReply-To: Bert <b@voorbeeld.nl>\r\nTo: support@winkel.example\r\nSubject: Kapotte kan\r\nDate: Mon, 10 Nov 2025 10:00:00 +0100\r\nMessage-ID: <rt1@voorbeeld.nl>\r\n\r\nDe kan kwam kapot aan.\r\n"))
	var id string
	testkit.WaitFor(t, "the complaint", func() bool {
		if cs := r.complaintsOf("a@voorbeeld.nl"); len(cs) == 1 {
			id = cs[0]["id"].(string)
		}
		return id != ""
	})
	testkit.WaitFor(t, "the acknowledgement to the Reply-To address, recorded", func() bool {
		_, tl := r.complaint(id)
		return len(smtpSrv.To("b@voorbeeld.nl")) == 1 && strings.Contains(fmt.Sprint(tl), "kind:acknowledgement")
	})
	if n := len(smtpSrv.To("a@voorbeeld.nl")); n != 0 {
		t.Errorf("%d mails to the From address, want none (Reply-To asks for b@)", n)
	}
	ackHeader, _ := headerOf(t, smtpSrv.To("b@voorbeeld.nl")[0].Data)
	ackID, _ := ackHeader.MessageID()
	subject, _ := ackHeader.Subject()

	deliver([]byte("From: Bert <b@voorbeeld.nl>\r\nTo: support@winkel.example\r\nSubject: Re: " + subject + "\r\nMessage-ID: <rt2@voorbeeld.nl>\r\nIn-Reply-To: <" + ackID + ">\r\nReferences: <rt1@voorbeeld.nl> <" + ackID + ">\r\n\r\nHier is de foto van de kan.\r\n"))
	testkit.WaitFor(t, "b's answer on the same complaint", func() bool {
		c, _ := r.complaint(id)
		return c["messages"].(float64) == 2
	})
	if cs := r.complaintsOf("b@voorbeeld.nl"); len(cs) != 0 {
		t.Errorf("b's answer opened complaints of its own: %v", cs)
	}

	// A stranger answering the acknowledgement's thread opens their own.
	deliver([]byte("From: Piet <piet@elders.example>\r\nTo: support@winkel.example\r\nSubject: Re: " + subject + "\r\nMessage-ID: <rt3@elders.example>\r\nIn-Reply-To: <" + ackID + ">\r\n\r\nIk wil ook een kan.\r\n"))
	testkit.WaitFor(t, "the stranger's own complaint", func() bool { return len(r.complaintsOf("piet@elders.example")) == 1 })
	if c, _ := r.complaint(id); c["messages"].(float64) != 2 {
		t.Errorf("the stranger's mail joined %s: %v", id, c)
	}

	// A mail that forges Anna's From (her domain has no DMARC) and asks for
	// replies elsewhere joins her complaint (the From cannot be told from
	// hers), but the owner's reply goes to an address proven hers, never to
	// the one the forged mail names.
	deliver([]byte("From: Anna <a@voorbeeld.nl>\r\nReply-To: mallory@attacker.example\r\nTo: support@winkel.example\r\nSubject: Re: " + subject + "\r\nMessage-ID: <rt4@attacker.example>\r\nIn-Reply-To: <" + ackID + ">\r\n\r\nStuur het antwoord graag naar mijn nieuwe adres.\r\n"))
	testkit.WaitFor(t, "the forged mail on the complaint", func() bool {
		c, _ := r.complaint(id)
		return c["messages"].(float64) == 3
	})
	if code, res := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": "Een nieuwe kan is onderweg."}, emailToken); code != 200 {
		t.Fatalf("reply: %d %v", code, res)
	}
	testkit.WaitFor(t, "the reply sent", func() bool {
		return len(smtpSrv.To("a@voorbeeld.nl"))+len(smtpSrv.To("b@voorbeeld.nl"))+len(smtpSrv.To("mallory@attacker.example")) >= 2
	})
	if n := len(smtpSrv.To("mallory@attacker.example")); n != 0 {
		t.Errorf("%d mails to the Reply-To a forged mail named; want none", n)
	}
}

// TestMailWithoutUsableSenderIsNotAnswered: mails nobody can write back to
// (no readable From; an address without a domain) become complaints, but no
// delivery is attempted: the timeline says once why, the owner's assignment
// says so too, and no "customer not reached" alarm follows.
func TestMailWithoutUsableSenderIsNotAnswered(t *testing.T) {
	for _, srv := range mailServers {
		t.Run(srv.name, func(t *testing.T) {
			r, deliver, smtpSrv := srv.start(t)
			testWithoutUsableSender(t, r, deliver, smtpSrv)
		})
	}
}

func testWithoutUsableSender(t *testing.T, r *running, deliver func([]byte), smtpSrv *emailtest.SMTP) {
	deliver([]byte("From: Bob <bob@extern>\r\nTo: support@winkel.example\r\nSubject: Printer stuk\r\nMessage-ID: <nb1@extern>\r\n\r\nDe printer doet het niet.\r\n"))
	deliver([]byte("From: undisclosed\r\nTo: support@winkel.example\r\nSubject: Geen afzender\r\nMessage-ID: <nb2@nergens.example>\r\n\r\nWie ben ik?\r\n"))
	var ids []string
	testkit.WaitFor(t, "both complaints with their assignment", func() bool {
		ids = nil
		code, out := r.call("GET", "/v1/complaints", nil, emailToken)
		if code != 200 {
			t.Fatalf("list: %d %v", code, out)
		}
		for _, x := range out["complaints"].([]any) {
			c := x.(map[string]any)
			if s := c["subject"]; s == "Printer stuk" || s == "Geen afzender" {
				ids = append(ids, c["id"].(string))
			}
		}
		return len(ids) == 2 && r.notes.count(router.NotifyAssigned) >= 2
	})
	for _, id := range ids {
		c, tl := r.complaint(id)
		if c["unreachable"] == nil || c["unreachable"] == "" {
			t.Errorf("%s: complaint does not say the customer cannot be written to: %v", id, c)
		}
		said := strings.Count(fmt.Sprint(tl), "cannot be written to")
		if said != 1 {
			t.Errorf("%s: the timeline says %d times that the customer cannot be written to, want once: %v", id, said, tl)
		}
	}
	r.notes.mu.Lock()
	for _, n := range r.notes.notes {
		if n.Kind == router.NotifyAssigned && (n.Complaint.Unreachable == "" || n.Event == nil || n.Event.Details["customer_unreachable"] == "") {
			t.Errorf("assignment of %s does not tell the owner the customer cannot be written to", n.Complaint.ID)
		}
	}
	r.notes.mu.Unlock()
	if got := smtpSrv.Received(); len(got) != 0 {
		t.Errorf("%d mails sent, want no delivery attempt", len(got))
	}
	if n := r.notes.count(router.NotifyDeliveryFailed); n != 0 {
		t.Errorf("%d delivery-failed alarms, want none: the failure was decided, not discovered", n)
	}
}
