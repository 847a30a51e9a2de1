package cli_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
)

// TestEmailCheckCommand: `forgetmenot email check` signs in to a real
// Dovecot (OAuth by its oauth2 passdb) and to SMTP with the configured
// Microsoft app, says what works and exits 0; with a wrong client secret it
// names the provider's error for each, exits 1 and never prints the secret.
func TestEmailCheckCommand(t *testing.T) {
	const user = "support@winkel.example"
	tokens := emailtest.StartTokenServer(t)
	tokens.MicrosoftApp("contoso", "app", "right-secret-value", user)
	dovecot := emailtest.StartOAuthDovecot(t, tokens, emailtest.MicrosoftMailScope, user)
	dovecot.Append(t, user, "INBOX", []byte("From: klant@voorbeeld.nl\r\nSubject: hallo\r\n\r\nhoi\r\n"))
	smtpSrv := emailtest.StartOAuthSMTP(t, tokens, emailtest.MicrosoftMailScope)

	boxes, secret := emailtest.MicrosoftMailboxFiles(t, t.TempDir(), dovecot, tokens, user, "right-secret-value")
	for k, v := range map[string]string{
		"FORGETMENOT_MAILBOXES_FILE": boxes, "FORGETMENOT_OWNERS_FILE": "../../configs/owners.yaml",
		"FORGETMENOT_SMTP_HOST": smtpSrv.Host, "FORGETMENOT_SMTP_PORT": fmt.Sprint(smtpSrv.Port), "FORGETMENOT_SMTP_TLS": "none",
		"FORGETMENOT_SMTP_FROM": "Klantenservice <" + user + ">", "FORGETMENOT_SMTP_AUTH": "oauth2", "FORGETMENOT_SMTP_OAUTH2_MAILBOX": "support",
	} {
		t.Setenv(k, v)
	}

	code, out, errOut := run("email", "check")
	if code != 0 {
		t.Fatalf("exit %d with a working set-up:\n%s%s\ndovecot:\n%s", code, out, errOut, dovecot.Log())
	}
	for _, want := range []string{"mailbox support", "XOAUTH2 as " + user, "OK: INBOX has 1 mails", "smtp", "OK: signed in, nothing sent", "Everything works."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	if err := os.WriteFile(secret, []byte("stale-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = run("email", "check")
	if code != 1 {
		t.Fatalf("exit %d with a wrong client secret, want 1:\n%s", code, out)
	}
	if strings.Count(out, "FAILED:") != 2 || strings.Count(out, "invalid_client: AADSTS7000215") != 2 {
		t.Errorf("both the mailbox and SMTP should fail in the provider's words:\n%s", out)
	}
	if strings.Contains(out, "stale-secret-value") {
		t.Errorf("the secret is printed:\n%s", out)
	}
	if code, out, _ := run("email", "check", "--json"); code != 1 || !strings.Contains(out, `"ok": false`) || !strings.Contains(out, `"auth": "XOAUTH2"`) {
		t.Errorf("--json: exit %d\n%s", code, out)
	}
}

// TestEmailCheckUsage: usage errors exit 2 with a hint, help exits 0, and
// without any e-mail configuration the check says what to set (exit 1).
func TestEmailCheckUsage(t *testing.T) {
	t.Setenv("FORGETMENOT_MAILBOXES_FILE", "")
	t.Setenv("FORGETMENOT_SMTP_HOST", "")
	for _, args := range [][]string{{"email", "check", "--bogus"}, {"email", "check", "extra"}, {"email", "check", "--timeout", "soon"}} {
		if code, out, errOut := run(args...); code != 2 || out != "" || !strings.Contains(errOut, "error:") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if code, out, _ := run("email", "check", "--help"); code != 0 || !strings.Contains(out, "forgetmenot email check") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
	if code, _, errOut := run("email", "check"); code != 1 || !strings.Contains(errOut, "FORGETMENOT_MAILBOXES_FILE") {
		t.Errorf("nothing configured: exit %d, stderr %q", code, errOut)
	}
}
