package daemon_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
)

// TestEmailOAuthDaemon: the daemon reads a real Dovecot and writes through
// SMTP, both signed in with one Microsoft 365 app token (SMTP_AUTH=oauth2
// borrows the mailbox's token source: one token, one cache). When the app
// loses its permission on the mailbox, /readyz says so in the server's and
// provider's words and the sign-in metrics count it.
func TestEmailOAuthDaemon(t *testing.T) {
	const user = "support@winkel.example"
	tokens := emailtest.StartTokenServer(t)
	tokens.MicrosoftApp("contoso", "app", "the-app-secret", user)
	dovecot := emailtest.StartOAuthDovecot(t, tokens, emailtest.MicrosoftMailScope, user)
	smtpSrv := emailtest.StartOAuthSMTP(t, tokens, emailtest.MicrosoftMailScope)
	boxes, _ := emailtest.MicrosoftMailboxFiles(t, t.TempDir(), dovecot, tokens, user, "the-app-secret")
	r := start(t, testredis.URL(t), func(c *configs.Config) {
		c.APIToken = emailToken
		c.MailboxesFile = boxes
		c.SMTPHost, c.SMTPPort, c.SMTPTLS = smtpSrv.Host, smtpSrv.Port, "none"
		c.SMTPAuth, c.SMTPOAuth2Mailbox = "oauth2", "support"
		c.SMTPFrom = "Klantenservice <" + user + ">"
		c.EmailTemplates = "../../configs/email-templates"
	})

	dovecot.Append(t, user, "INBOX", []byte("From: Jan de Boer <jan@voorbeeld.nl>\r\nTo: "+user+"\r\nSubject: Pakket niet ontvangen\r\nMessage-ID: <oauth-q1@voorbeeld.nl>\r\n\r\nWaar is mijn pakket?\r\n"))
	testkit.WaitFor(t, "the mail to become a complaint", func() bool { return len(r.complaintsOf("jan@voorbeeld.nl")) == 1 })
	testkit.WaitFor(t, "the acknowledgement", func() bool { return len(smtpSrv.To("jan@voorbeeld.nl")) == 1 })
	if got := smtpSrv.To("jan@voorbeeld.nl")[0].Auth; got != user {
		t.Errorf("SMTP signed in as %q, want %s", got, user)
	}
	if n := tokens.Requests(); n != 1 {
		t.Errorf("%d token requests for IMAP and SMTP, want 1: they share the token", n)
	}
	if code, out := r.call("GET", "/readyz", nil, emailToken); code != 200 || out["email"] != "ok" {
		t.Errorf("readyz = %d %v", code, out)
	}

	tokens.SetMailboxes("app") // the admin removed the app's mailbox permission
	tokens.RevokeAccessTokens()
	dovecot.Restart(t)
	var out map[string]any
	testkit.WaitFor(t, "the refusal on /readyz", func() bool {
		_, out = r.call("GET", "/readyz", nil, emailToken)
		msg, _ := out["email"].(string)
		return out["status"] == "degraded" && strings.Contains(msg, "(XOAUTH2) refused")
	})
	msg, _ := out["email"].(string)
	for _, want := range []string{"mailbox support is not connected", "refused: NO [AUTHENTICATIONFAILED]", "freshly fetched token was refused too"} {
		if !strings.Contains(msg, want) {
			t.Errorf("readyz email = %q\nwant %q in it", msg, want)
		}
	}
	if strings.Contains(msg, "the-app-secret") {
		t.Error("readyz shows the secret")
	}
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`forgetmenot_email_signin_failures_total{error="refused",mailbox="support"} 1`, `forgetmenot_email_signed_in{mailbox="support"} 0`, `forgetmenot_email_signed_in{mailbox="smtp"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
