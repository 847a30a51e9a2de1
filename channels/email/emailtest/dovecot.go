package emailtest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/forgetmenot/forgetmenot/internal/testdovecot"
)

// StartOAuthDovecot runs a real Dovecot whose XOAUTH2 and OAUTHBEARER logins
// are checked by its oauth2 passdb against the token server's introspection
// endpoint (introspection_mode = post), accepting only tokens for mailScope
// (Dovecot's own scope check) issued for the user signing in
// (username_attribute = email). Password logins of user (password
// "delivery-only", for delivering test mail) go to the passwd-file passdb.
func StartOAuthDovecot(t testing.TB, tokens *TokenServer, mailScope, user string) *testdovecot.Server {
	t.Helper()
	return testdovecot.Start(t, testdovecot.Options{
		Users:          map[string]string{user: "delivery-only"},
		AuthMechanisms: "plain login xoauth2 oauthbearer",
		Passdb: `passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {{dir}}/dovecot-oauth2.conf.ext
}
passdb {
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {{dir}}/passwd
}
`,
		Files: map[string]string{"dovecot-oauth2.conf.ext": fmt.Sprintf(`introspection_mode = post
introspection_url = %s
username_attribute = email
active_attribute = active
active_value = true
scope = %s
`, tokens.IntrospectionURL(), mailScope)},
	})
}

// MicrosoftMailboxFiles writes into dir a mailboxes.yaml with one mailbox,
// support (team support-nl), that signs in to dovecot as user by OAuth 2.0
// with the Microsoft app "app" of tenant contoso, and that app's client
// secret in a file of its own. It returns both paths: a test may change the
// secret.
func MicrosoftMailboxFiles(t testing.TB, dir string, dovecot *testdovecot.Server, tokens *TokenServer, user, secret string) (mailboxes, secretFile string) {
	t.Helper()
	mailboxes, secretFile = filepath.Join(dir, "mailboxes.yaml"), filepath.Join(dir, "client-secret")
	yaml := fmt.Sprintf(`mailboxes:
  - name: support
    host: %s
    port: %d
    tls: none
    username: %s
    auth: oauth2
    oauth2:
      provider: microsoft
      token_url: %s
      client_id: app
      client_secret_file: %s
    address: %s
    default_team: support-nl
`, dovecot.Host, dovecot.Port, user, tokens.MicrosoftTokenURL("contoso"), secretFile, user)
	for name, content := range map[string]string{mailboxes: yaml, secretFile: secret + "\n"} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return mailboxes, secretFile
}
