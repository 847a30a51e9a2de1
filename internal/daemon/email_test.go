package daemon_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/router"
)

const emailToken = "api-token-for-email-tests"

// startWithEmail runs the daemon reading a real IMAP server and writing to a
// real SMTP server.
func startWithEmail(t *testing.T, more ...func(*configs.Config)) (*running, *emailtest.IMAP, *emailtest.SMTP) {
	t.Helper()
	imapSrv := emailtest.StartIMAP(t, nil)
	r, smtpSrv := startWithMailbox(t, imapSrv.Host, imapSrv.Port, imapSrv.Username, imapSrv.Password, more...)
	return r, imapSrv, smtpSrv
}

// startWithMailbox runs the daemon reading the IMAP mailbox at host:port and
// writing to a real SMTP server.
func startWithMailbox(t *testing.T, host string, port int, username, password string, more ...func(*configs.Config)) (*running, *emailtest.SMTP) {
	t.Helper()
	smtpSrv := emailtest.StartSMTP(t, map[string]string{"mailer": "s3cret"})
	dir := t.TempDir()
	boxes := filepath.Join(dir, "mailboxes.yaml")
	yaml := fmt.Sprintf(`mailboxes:
  - name: support
    host: %s
    port: %d
    tls: none
    username: %s
    password: %s
    address: support@winkel.example
    default_team: support-nl
`, host, port, username, password)
	if err := os.WriteFile(boxes, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, testredis.URL(t), func(c *configs.Config) {
		c.APIToken = emailToken
		c.MailboxesFile = boxes
		c.SMTPHost, c.SMTPPort, c.SMTPTLS = smtpSrv.Host, smtpSrv.Port, "none"
		c.SMTPUsername, c.SMTPPassword = "mailer", "s3cret"
		c.SMTPFrom = "Klantenservice <support@winkel.example>"
		c.EmailPlusAddressing = true
		c.PublicURL, c.CSATSecret = "https://support.winkel.example", "csat-secret-for-the-tests"
		c.EmailTemplates = "../../configs/email-templates"
		for _, m := range more {
			m(c)
		}
	})
	return r, smtpSrv
}

func (r *running) complaintsOf(customer string) []map[string]any {
	r.t.Helper()
	code, out := r.call("GET", "/v1/complaints?customer="+customer, nil, emailToken)
	if code != 200 {
		r.t.Fatalf("list: %d %v", code, out)
	}
	var list []map[string]any
	for _, c := range out["complaints"].([]any) {
		list = append(list, c.(map[string]any))
	}
	return list
}

func (r *running) complaint(id string) (map[string]any, []map[string]any) {
	r.t.Helper()
	code, out := r.call("GET", "/v1/complaints/"+id, nil, emailToken)
	if code != 200 {
		r.t.Fatalf("show %s: %d %v", id, code, out)
	}
	var tl []map[string]any
	for _, e := range out["timeline"].([]any) {
		tl = append(tl, e.(map[string]any))
	}
	return out["complaint"].(map[string]any), tl
}

func headerOf(t *testing.T, raw []byte) (*mail.Header, string) {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	p, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(p.Body)
	return &mr.Header, string(b)
}

// TestEmailEndToEnd: a customer's mail becomes a complaint with an owner; the
// acknowledgement naming that owner reaches the customer; the owner's reply
// goes out threaded; the customer's answer lands on the same complaint with
// the same owner; an autoresponder answering us does not start a loop.
func TestEmailEndToEnd(t *testing.T) {
	r, imapSrv, smtpSrv := startWithEmail(t)
	roster, err := configs.LoadRoster("../../configs/owners.yaml")
	if err != nil {
		t.Fatal(err)
	}

	imapSrv.Deliver(t, "INBOX", []byte("From: Jan de Boer <jan@voorbeeld.nl>\r\nTo: support@winkel.example\r\nSubject: Pakket niet ontvangen\r\nDate: Mon, 10 Nov 2025 10:00:00 +0100\r\nMessage-ID: <q1@voorbeeld.nl>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMijn bestelling is al twee weken onderweg en ik heb nog niets ontvangen. Kunt u kijken waar het pakket is?\r\n"))

	var complaints []map[string]any
	testkit.WaitFor(t, "the mail to become a complaint", func() bool {
		complaints = r.complaintsOf("jan@voorbeeld.nl")
		return len(complaints) == 1
	})
	id, owner := complaints[0]["id"].(string), complaints[0]["owner"].(string)
	if complaints[0]["team"] != "support-nl" || complaints[0]["channel"] != "email" {
		t.Errorf("complaint = %v, want the Dutch team by e-mail", complaints[0])
	}
	o, _ := roster.Owner(owner)

	testkit.WaitFor(t, "the acknowledgement", func() bool { return len(smtpSrv.To("jan@voorbeeld.nl")) == 1 })
	ackHeader, ackBody := headerOf(t, smtpSrv.To("jan@voorbeeld.nl")[0].Data)
	if !strings.Contains(ackBody, "Uw klacht "+id+" is bij "+o.Name+".") {
		t.Errorf("the acknowledgement must name the complaint and its owner %s:\n%s", o.Name, ackBody)
	}
	ackID, _ := ackHeader.MessageID()
	if irt, _ := ackHeader.MsgIDList("In-Reply-To"); len(irt) != 1 || irt[0] != "q1@voorbeeld.nl" || ackHeader.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("acknowledgement headers: In-Reply-To %v Auto-Submitted %q", irt, ackHeader.Get("Auto-Submitted"))
	}

	// The owner answers through the API.
	if code, out := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": "We hebben het pakket gevonden, het wordt morgen bezorgd.", "actor": owner}, emailToken); code != 200 {
		t.Fatalf("reply: %d %v", code, out)
	}
	testkit.WaitFor(t, "the reply", func() bool { return len(smtpSrv.To("jan@voorbeeld.nl")) == 2 })
	replyHeader, replyBody := headerOf(t, smtpSrv.To("jan@voorbeeld.nl")[1].Data)
	replyID, _ := replyHeader.MessageID()
	subject, _ := replyHeader.Subject()
	refs, _ := replyHeader.MsgIDList("References")
	if !strings.Contains(replyBody, "morgen bezorgd") || !strings.Contains(subject, "[#"+id+"]") || !strings.HasPrefix(subject, "Re: Pakket niet ontvangen") {
		t.Errorf("reply: subject %q body %q", subject, replyBody)
	}
	if irt, _ := replyHeader.MsgIDList("In-Reply-To"); len(irt) != 1 || irt[0] != "q1@voorbeeld.nl" || len(refs) == 0 || refs[0] != "q1@voorbeeld.nl" {
		t.Errorf("reply threading: In-Reply-To %v References %v", irt, refs)
	}
	if replyHeader.Get("Auto-Submitted") != "" {
		t.Error("a reply written by a person must not be marked automatic")
	}

	// The customer answers the reply (their mail program keeps the headers).
	imapSrv.Deliver(t, "INBOX", []byte("From: Jan de Boer <jan@voorbeeld.nl>\r\nTo: Klantenservice <support@winkel.example>\r\nSubject: Re: "+subject+"\r\nMessage-ID: <q2@voorbeeld.nl>\r\nIn-Reply-To: <"+replyID+">\r\nReferences: <q1@voorbeeld.nl> <"+replyID+">\r\n\r\nTop, dank u wel!\r\n\r\nOp di 11 nov. 2025 om 09:00 schreef Klantenservice <support@winkel.example>:\r\n> We hebben het pakket gevonden\r\n"))
	var c map[string]any
	testkit.WaitFor(t, "the answer on the same complaint", func() bool {
		c, _ = r.complaint(id)
		return c["messages"].(float64) == 2
	})
	if c["owner"] != owner || len(r.complaintsOf("jan@voorbeeld.nl")) != 1 {
		t.Errorf("the answer must stay with %s on %s: %v", owner, id, c)
	}

	// An out-of-office answering our acknowledgement: recorded on the
	// complaint, never acknowledged.
	imapSrv.Deliver(t, "INBOX", []byte("From: Jan de Boer <jan@voorbeeld.nl>\r\nTo: support@winkel.example\r\nSubject: Afwezig: "+subject+"\r\nMessage-ID: <oof1@voorbeeld.nl>\r\nIn-Reply-To: <"+ackID+">\r\nAuto-Submitted: auto-replied\r\n\r\nIk ben afwezig tot maandag.\r\n"))
	testkit.WaitFor(t, "the out-of-office on the complaint", func() bool {
		c, _ = r.complaint(id)
		return c["messages"].(float64) == 3
	})
	// An autoresponder that does not say so and starts a new thread: a new
	// complaint, but the one-per-hour guard holds the acknowledgement back.
	imapSrv.Deliver(t, "INBOX", []byte("From: Jan de Boer <jan@voorbeeld.nl>\r\nTo: support@winkel.example\r\nSubject: Bedankt voor uw bericht\r\nMessage-ID: <auto2@voorbeeld.nl>\r\n\r\nWij hebben uw bericht ontvangen en reageren binnen 3 werkdagen.\r\n"))
	var second string
	testkit.WaitFor(t, "the echo held back and recorded", func() bool {
		for _, cc := range r.complaintsOf("jan@voorbeeld.nl") {
			if cc["id"] != id {
				second = cc["id"].(string)
			}
		}
		if second == "" {
			return false
		}
		_, tl := r.complaint(second)
		for _, e := range tl {
			if ev, ok := e["event"].(map[string]any); ok && ev["type"] == "sent" && strings.Contains(fmt.Sprint(ev["reason"]), "loop guard") {
				return true
			}
		}
		return false
	})
	if n := len(smtpSrv.To("jan@voorbeeld.nl")); n != 2 {
		t.Errorf("%d mails to the customer, want 2 (one acknowledgement, one reply): an autoresponder must not loop", n)
	}

	// A stranger replying in the thread does not get into Jan's complaint.
	imapSrv.Deliver(t, "INBOX", []byte("From: Piet <piet@elders.example>\r\nTo: support@winkel.example\r\nSubject: Re: "+subject+"\r\nMessage-ID: <p1@elders.example>\r\nIn-Reply-To: <"+replyID+">\r\n\r\nDit is mijn pakket niet.\r\n"))
	testkit.WaitFor(t, "the stranger's own complaint", func() bool { return len(r.complaintsOf("piet@elders.example")) == 1 })
	piet := r.complaintsOf("piet@elders.example")[0]
	_, tl := r.complaint(piet["id"].(string))
	if !strings.Contains(fmt.Sprint(tl), "mentions C-1001") || !strings.Contains(fmt.Sprint(tl), "sender not verified") {
		t.Errorf("the stranger's complaint must record why it did not thread: %v", tl)
	}

	// Closing asks the customer, by e-mail in their language, how satisfied
	// they are: the question really arrives, it does not fail as undeliverable.
	if code, out := r.call("POST", "/v1/complaints/"+id+"/close", map[string]string{"resolution": "Pakket bezorgd", "actor": owner}, emailToken); code != 200 {
		t.Fatalf("close: %d %v", code, out)
	}
	testkit.WaitFor(t, "the satisfaction question", func() bool { return len(smtpSrv.To("jan@voorbeeld.nl")) == 3 })
	csatHeader, csatBody := headerOf(t, smtpSrv.To("jan@voorbeeld.nl")[2].Data)
	if !strings.Contains(csatBody, "Zeer tevreden: https://support.winkel.example/v1/csat/"+id+"/5?sig=") || csatHeader.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("satisfaction question: Auto-Submitted %q, body:\n%s", csatHeader.Get("Auto-Submitted"), csatBody)
	}
	if irt, _ := csatHeader.MsgIDList("In-Reply-To"); len(irt) != 1 {
		t.Errorf("the satisfaction question must thread into the customer's conversation: In-Reply-To %v", irt)
	}
	testkit.WaitFor(t, "the question recorded as sent", func() bool {
		_, tl := r.complaint(id)
		return strings.Contains(fmt.Sprint(tl), "kind:csat")
	})
	if _, tl := r.complaint(id); strings.Contains(fmt.Sprint(tl), "delivery_failed") {
		t.Errorf("a delivery failed: %v", tl)
	}

	code, q := r.call("GET", "/v1/email/quarantine", nil, emailToken)
	if code != 200 || q["count"].(float64) != 0 {
		t.Errorf("quarantine: %d %v", code, q)
	}
	if code, _ := r.call("GET", "/v1/email/quarantine", nil, ""); code != 401 {
		t.Errorf("quarantine without token: %d, want 401", code)
	}
}

// TestEmailQuarantineVisibleInAPI: unreadable mail is listed, and the mailbox
// goes on with the next mail.
func TestEmailQuarantineVisibleInAPI(t *testing.T) {
	r, imapSrv, _ := startWithEmail(t)
	imapSrv.Deliver(t, "INBOX", []byte(" broken: header\r\n\r\nnot a mail\r\n"))
	imapSrv.Deliver(t, "INBOX", []byte("From: Lies <lies@voorbeeld.nl>\r\nSubject: Stoel kapot\r\nMessage-ID: <l1@voorbeeld.nl>\r\n\r\nDe stoel is kapot.\r\n"))
	testkit.WaitFor(t, "the good mail after the broken one", func() bool { return len(r.complaintsOf("lies@voorbeeld.nl")) == 1 })
	code, q := r.call("GET", "/v1/email/quarantine", nil, emailToken)
	if code != 200 || q["count"].(float64) != 1 {
		t.Fatalf("quarantine: %d %v", code, q)
	}
	entry := q["quarantine"].([]any)[0].(map[string]any)
	if entry["mailbox"] != "support" || entry["uid"].(float64) != 1 || !strings.Contains(entry["error"].(string), "unparseable") {
		t.Errorf("quarantine entry = %v", entry)
	}
}

// TestBounceOfOurMailIsRecordedOnItsComplaint: the customer's mail server
// accepts nothing from us (the relay took the mail, then it bounced). The
// bounce lands on the complaint as a failed delivery and the owner is told;
// it opens no complaint of its own, and nothing is answered to it.
func TestBounceOfOurMailIsRecordedOnItsComplaint(t *testing.T) {
	r, imapSrv, smtpSrv := startWithEmail(t)
	imapSrv.Deliver(t, "INBOX", []byte("From: Wim <weg@voorbeeld.nl>\r\nTo: support@winkel.example\r\nSubject: Verkeerde maat geleverd\r\nMessage-ID: <w1@voorbeeld.nl>\r\n\r\nIk kreeg maat 38 in plaats van 42.\r\n"))
	var id string
	testkit.WaitFor(t, "the complaint", func() bool {
		cs := r.complaintsOf("weg@voorbeeld.nl")
		if len(cs) == 1 {
			id = cs[0]["id"].(string)
		}
		return id != ""
	})
	testkit.WaitFor(t, "the acknowledgement sent and recorded", func() bool {
		_, tl := r.complaint(id)
		return len(smtpSrv.To("weg@voorbeeld.nl")) == 1 && strings.Contains(fmt.Sprint(tl), "kind:acknowledgement")
	})
	ackHeader, _ := headerOf(t, smtpSrv.To("weg@voorbeeld.nl")[0].Data)
	ackID, _ := ackHeader.MessageID()

	bounce, err := os.ReadFile("../../channels/email/testdata/bounce_dsn.eml")
	if err != nil {
		t.Fatal(err)
	}
	imapSrv.Deliver(t, "INBOX", []byte(strings.Replace(string(bounce), "fmn.C-1002.v1.acknowledgement@winkel.example", ackID, 1)))

	testkit.WaitFor(t, "the bounce recorded as a failed delivery", func() bool {
		_, tl := r.complaint(id)
		return strings.Contains(fmt.Sprint(tl), "delivery_failed")
	})
	c, tl := r.complaint(id)
	if c["status"] != "open" || c["messages"].(float64) != 2 {
		t.Errorf("complaint after the bounce: %v", c)
	}
	if !strings.Contains(fmt.Sprint(tl), "5.1.1") {
		t.Errorf("the failure must say why: %v", tl)
	}
	testkit.WaitFor(t, "the owner told", func() bool { return r.notes.count(router.NotifyDeliveryFailed) == 1 })
	if cs := r.complaintsOf("mailer-daemon@mail.winkel.example"); len(cs) != 0 {
		t.Errorf("the bounce opened complaints of its own: %v", cs)
	}
	if n := len(smtpSrv.To("weg@voorbeeld.nl")) + len(smtpSrv.To("mailer-daemon@mail.winkel.example")); n != 1 {
		t.Errorf("%d mails sent after the bounce arrived, want only the first acknowledgement", n)
	}
}
