package emailtest

import (
	"fmt"
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
