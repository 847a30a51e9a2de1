package email_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/forgetmenot/forgetmenot/channels/email"
	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/router"
)

func newSender(t *testing.T, srv *emailtest.SMTP, w *world) *email.Sender {
	t.Helper()
	tpl, err := email.LoadTemplates("../../configs/email-templates", "en")
	if err != nil {
		t.Fatal(err)
	}
	s, err := email.NewSender(email.SMTPConfig{
		Host: srv.Host, Port: srv.Port, TLS: email.TLSNone, Username: "mailer", Password: "s3cret",
		From: "Klantenservice <support@winkel.example>", PlusAddressing: true,
	}, tpl, w.state, slog.New(slog.NewTextHandler(w.log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// customerMail is the customer's first mail as the channel recorded it.
var customerMail = &router.Message{
	ID: "M-1", Channel: router.ChannelEmail, SourceID: "q1@voorbeeld.nl",
	Customer:   router.Customer{Name: "Jan de Boer", Email: "jan@voorbeeld.nl"},
	ThreadKeys: []string{"email:q1@voorbeeld.nl"},
	Metadata:   map[string]string{email.MetaMessageID: "q1@voorbeeld.nl"},
}

func ack(id string, lang string) router.CustomerMessage {
	return router.CustomerMessage{
		ID: id + ":v1:acknowledgement", Kind: router.ToCustomerAcknowledgement, At: time.Now(),
		Complaint: router.Complaint{ID: id, Owner: "anna", Language: lang, Subject: "Pakket kwijt",
			Customer: router.Customer{Name: "Jan de Boer", Email: "jan@voorbeeld.nl"}},
		OwnerName: "Anna de Vries", InReplyTo: customerMail, References: []string{"email:q1@voorbeeld.nl"},
	}
}

func parseSent(t *testing.T, r emailtest.Received) (*mail.Header, string) {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(r.Data))
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

// TestAcknowledgementNamesTheOwnerAndThreads: the acknowledgement says who
// owns the complaint, is marked automatic, carries the reference and threads
// under the customer's mail.
func TestAcknowledgementNamesTheOwnerAndThreads(t *testing.T) {
	srv := emailtest.StartSMTP(t, map[string]string{"mailer": "s3cret"})
	w := newWorld(t)
	s := newSender(t, srv, w)

	sent, err := s.Send(context.Background(), ack("C-1042", "en"))
	if err != nil {
		t.Fatal(err)
	}
	got := srv.To("jan@voorbeeld.nl")
	if len(got) != 1 {
		t.Fatalf("%d mails to the customer, want 1", len(got))
	}
	if got[0].Auth != "mailer" || got[0].From != "support@winkel.example" {
		t.Errorf("envelope from %q auth %q", got[0].From, got[0].Auth)
	}
	h, body := parseSent(t, got[0])
	if !strings.Contains(body, "Your complaint C-1042 is with Anna de Vries. Anna stays with you until it is resolved.") {
		t.Errorf("body does not name the owner:\n%s", body)
	}
	subject, _ := h.Subject()
	if !strings.Contains(subject, "[#C-1042]") {
		t.Errorf("subject %q lacks the reference token", subject)
	}
	irt, _ := h.MsgIDList("In-Reply-To")
	refs, _ := h.MsgIDList("References")
	if len(irt) != 1 || irt[0] != "q1@voorbeeld.nl" || len(refs) != 1 || refs[0] != "q1@voorbeeld.nl" {
		t.Errorf("In-Reply-To %v References %v, want the customer's mail", irt, refs)
	}
	if h.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("Auto-Submitted = %q", h.Get("Auto-Submitted"))
	}
	if rt := h.Get("Reply-To"); !strings.Contains(rt, "support+c-1042@winkel.example") {
		t.Errorf("Reply-To = %q, want the plus address", rt)
	}
	id, _ := h.MessageID()
	if sent.Ref != "<"+id+">" || len(sent.ThreadKeys) != 1 || sent.ThreadKeys[0] != "email:"+id || !strings.HasPrefix(id, "fmn.C-1042.v1.acknowledgement.") || !strings.HasSuffix(id, "@winkel.example") {
		t.Errorf("sent = %+v, Message-ID %q", sent, id)
	}
	// The reply to it threads back: parsing the answer finds our id.
	answer := "From: jan@voorbeeld.nl\r\nTo: support+c-1042@winkel.example\r\nSubject: Re: " + subject + "\r\nMessage-ID: <a2@voorbeeld.nl>\r\nIn-Reply-To: <" + id + ">\r\n\r\nDank!\r\n"
	m, err := email.Parse([]byte(answer), email.ParseOptions{OwnAddresses: []string{s.Address()}, PlusAddressing: true})
	if err != nil || m.ThreadKeys[0] != sent.ThreadKeys[0] || m.ComplaintID != "C-1042" {
		t.Errorf("answer parsed as %+v, %v", m, err)
	}
}

func TestAcknowledgementInDutch(t *testing.T) {
	srv := emailtest.StartSMTP(t, map[string]string{"mailer": "s3cret"})
	s := newSender(t, srv, newWorld(t))
	if _, err := s.Send(context.Background(), ack("C-7", "nl")); err != nil {
		t.Fatal(err)
	}
	h, body := parseSent(t, srv.Received()[0])
	subject, _ := h.Subject()
	if !strings.Contains(body, "Uw klacht C-7 is bij Anna de Vries. Anna blijft uw aanspreekpunt") || !strings.HasPrefix(subject, "Uw klacht C-7 is bij Anna") || h.Get("Content-Language") != "nl" {
		t.Errorf("Dutch acknowledgement: subject %q\n%s", subject, body)
	}
}

// TestOneAcknowledgementPerSenderPerHour: a second acknowledgement to the same
// address within the hour is held back (an autoresponder that does not say
// so cannot loop), while a retry of the same one still goes.
func TestOneAcknowledgementPerSenderPerHour(t *testing.T) {
	srv := emailtest.StartSMTP(t, map[string]string{"mailer": "s3cret"})
	s := newSender(t, srv, newWorld(t))
	ctx := context.Background()
	if _, err := s.Send(ctx, ack("C-1", "en")); err != nil {
		t.Fatal(err)
	}
	again, err := s.Send(ctx, ack("C-1", "en")) // the outbox retrying the same message
	if err != nil || again.Skipped != "" {
		t.Fatalf("retry of the same acknowledgement: %+v %v, want it sent", again, err)
	}
	second, err := s.Send(ctx, ack("C-2", "en"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(second.Skipped, "already got an acknowledgement") {
		t.Errorf("second acknowledgement within the hour: %+v, want it skipped with the reason", second)
	}
	if n := len(srv.Received()); n != 2 {
		t.Errorf("%d mails sent, want 2 (the first and its retry)", n)
	}
	// Replies are never rate limited.
	reply := ack("C-2", "en")
	reply.ID, reply.Kind, reply.Body, reply.AuthorName = "C-2:v3:reply", router.ToCustomerReply, "We sturen een nieuwe.", "Anna de Vries"
	if sent, err := s.Send(ctx, reply); err != nil || sent.Skipped != "" {
		t.Errorf("reply: %+v %v", sent, err)
	}
}

// TestSMTPFailures: a 5xx is permanent (the owner is told), a 4xx or an
// unreachable server is retried.
func TestSMTPFailures(t *testing.T) {
	srv := emailtest.StartSMTP(t, map[string]string{"mailer": "s3cret"})
	s := newSender(t, srv, newWorld(t))
	reply := ack("C-3", "en")
	reply.ID, reply.Kind, reply.Body = "C-3:v2:reply", router.ToCustomerReply, "Hello"

	srv.RejectWith(func(string) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unknown"}
	})
	if _, err := s.Send(context.Background(), reply); err == nil || !router.IsPermanent(err) || !strings.Contains(err.Error(), "550") {
		t.Errorf("550: err = %v, want a permanent error with the code", err)
	}
	srv.RejectWith(func(string) error {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	})
	_, err := s.Send(context.Background(), reply)
	var later *router.RetryAfterError
	if err == nil || router.IsPermanent(err) || !errors.As(err, &later) || later.After < 30*time.Second {
		t.Errorf("451: err = %v, want a retryable error asking for 30 s or more (not the outbox's seconds)", err)
	}
	srv.RejectWith(nil)
	if _, err := s.Send(context.Background(), reply); err != nil {
		t.Errorf("after recovery: %v", err)
	}
}

// What must hold: a mail server that accepts the connection and then says
// nothing holds a send no longer than the configured timeout (go-smtp's own
// is five minutes a command): an outbox worker stuck past RECLAIM_IDLE has
// its entries taken over and a notification sent twice. The failure is
// retryable, not the customer's.
func TestSilentMailServerTimesOut(t *testing.T) {
	p := silentServer(t)
	host := "127.0.0.1"
	tpl, err := email.LoadTemplates("../../configs/email-templates", "en")
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	for _, mode := range []email.TLSMode{email.TLSNone, email.TLSStartTLS} {
		s, err := email.NewSender(email.SMTPConfig{Host: host, Port: p, TLS: mode, Timeout: 500 * time.Millisecond,
			From: "Klantenservice <support@winkel.example>"}, tpl, w.state, slog.New(slog.NewTextHandler(w.log, nil)))
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		_, err = s.Send(context.Background(), ack("C-9", "en"))
		if took := time.Since(began); err == nil || router.IsPermanent(err) || took > 30*time.Second {
			t.Errorf("%v: silent server: %v after %v, want a retryable error within the timeout", mode, err, took)
		}
	}
}

func TestTemplatesMustBeComplete(t *testing.T) {
	dir := t.TempDir()
	if _, err := email.LoadTemplates(dir, "en"); err == nil {
		t.Error("an empty template directory was accepted")
	}
}

// TestPromiseAndReplyWording: a reply is signed by its author (also when a
// colleague answers) and threads as "Re:"; a promise says by when.
func TestPromiseAndReplyWording(t *testing.T) {
	srv := emailtest.StartSMTP(t, map[string]string{"mailer": "s3cret"})
	s := newSender(t, srv, newWorld(t))
	reply := ack("C-5", "nl")
	// A colleague answers for the owner: signed in the mail's language.
	reply.ID, reply.Kind, reply.Body, reply.AuthorName, reply.CoverName = "C-5:v4:reply", router.ToCustomerReply, "De monteur komt donderdag.", "Bas Jansen for Anna de Vries", "Bas Jansen"
	if _, err := s.Send(context.Background(), reply); err != nil {
		t.Fatal(err)
	}
	promise := ack("C-5", "en")
	promise.ID, promise.Kind, promise.Body = "C-5:v5:promise", router.ToCustomerPromise, "We are checking with the carrier."
	promise.Complaint.PromisedBy = time.Date(2025, 11, 14, 16, 0, 0, 0, time.UTC)
	if _, err := s.Send(context.Background(), promise); err != nil {
		t.Fatal(err)
	}
	got := srv.To("jan@voorbeeld.nl")
	if len(got) != 2 {
		t.Fatalf("%d mails, want 2", len(got))
	}
	h, body := parseSent(t, got[0])
	subject, _ := h.Subject()
	if subject != "Re: Pakket kwijt [#C-5]" || !strings.Contains(body, "De monteur komt donderdag.") || !strings.Contains(body, "Bas Jansen namens Anna de Vries") || h.Get("Auto-Submitted") != "" {
		t.Errorf("reply: subject %q\n%s", subject, body)
	}
	_, body = parseSent(t, got[1])
	if !strings.Contains(body, "We are checking with the carrier.") || !strings.Contains(body, "by Friday 14 November 16:00") {
		t.Errorf("promise:\n%s", body)
	}
}

// TestAcknowledgementOfAWebhookComplaintIgnoresItsMetadata: a complaint that
// came in by webhook and is acknowledged by e-mail does not thread under its
// free-form metadata; a message_id there with a line break neither injects a
// header nor makes the mail undeliverable.
func TestAcknowledgementOfAWebhookComplaintIgnoresItsMetadata(t *testing.T) {
	srv := emailtest.StartSMTP(t, map[string]string{"mailer": "s3cret"})
	s := newSender(t, srv, newWorld(t))
	m := ack("C-88", "en")
	m.InReplyTo = &router.Message{
		ID: "M-9", Channel: router.ChannelWebhook, SourceID: "order-123",
		Customer:   router.Customer{Name: "Jan de Boer", Email: "jan@voorbeeld.nl"},
		ThreadKeys: []string{"webhook:order-123"},
		Metadata:   map[string]string{email.MetaMessageID: "bad\r\nX: y"},
	}
	m.References = m.InReplyTo.ThreadKeys
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("acknowledgement not sent: %v", err)
	}
	got := srv.To("jan@voorbeeld.nl")
	if len(got) != 1 {
		t.Fatalf("%d mails to the customer, want 1", len(got))
	}
	h, _ := parseSent(t, got[0])
	for _, k := range []string{"In-Reply-To", "References", "X"} {
		if v := h.Get(k); v != "" {
			t.Errorf("%s = %q, want none from the webhook's metadata or thread keys", k, v)
		}
	}
}

// What must hold: a notice to staff (the last route of a notification Slack
// refused) reaches the roster address as a plain, automatic mail with its
// text intact; a 5xx refusal is permanent.
func TestMailStaff(t *testing.T) {
	srv := emailtest.StartSMTP(t, map[string]string{"mailer": "s3cret"})
	s := newSender(t, srv, newWorld(t))
	body := "Hello Anna,\n\nComplaint: C-7 — 配送が遅れています & <urgent>\n"
	if err := s.MailStaff(context.Background(), "anna.devries@example.nl", "C-7: assigned — 配送", body); err != nil {
		t.Fatal(err)
	}
	got := srv.To("anna.devries@example.nl")
	if len(got) != 1 {
		t.Fatalf("%d mails to the owner, want 1", len(got))
	}
	h, text := parseSent(t, got[0])
	if subj, _ := h.Subject(); subj != "C-7: assigned — 配送" || h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("subject %q, Auto-Submitted %q", subj, h.Get("Auto-Submitted"))
	}
	if strings.ReplaceAll(text, "\r\n", "\n") != body {
		t.Errorf("body %q, want %q", text, body)
	}
	srv.RejectWith(func(string) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unknown"}
	})
	if err := s.MailStaff(context.Background(), "gone@example.nl", "x", "y"); !router.IsPermanent(err) {
		t.Errorf("550: %v, want a permanent error", err)
	}
}

// What must hold: an address at an internationalised domain is written to
// in the domain's ASCII form, which every mail server takes (it failed
// against a server without SMTPUTF8, was retried and reported the customer
// unreachable).
func TestInternationalisedDomainIsWrittenInASCII(t *testing.T) {
	srv := emailtest.StartSMTP(t, map[string]string{"mailer": "s3cret"})
	s := newSender(t, srv, newWorld(t))
	m := ack("C-7", "en")
	m.InReplyTo = nil
	m.Complaint.Customer = router.Customer{Name: "Jürgen", Email: "jurgen@bücher.example"}
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("sending to an IDN domain: %v", err)
	}
	if n := len(srv.To("jurgen@xn--bcher-kva.example")); n != 1 {
		t.Errorf("%d mails to jurgen@xn--bcher-kva.example, want 1", n)
	}
}
