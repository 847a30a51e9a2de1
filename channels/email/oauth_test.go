package email_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/email"
	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/internal/testdovecot"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/prometheus/client_golang/prometheus"
)

// TestTokenSourcesFailInTheProvidersWords: every way the token endpoints
// refuse reaches the error (and so /readyz) as the provider's error code and
// description, and no secret is in it.
func TestTokenSourcesFailInTheProvidersWords(t *testing.T) {
	tokens := emailtest.StartTokenServer(t)
	tokens.MicrosoftApp("contoso", "app", "right-secret", oauthUser)
	_, _ = tokens.MicrosoftCertApp(t, "contoso", "cert-app", oauthUser)
	otherCert, otherKey := tokens.MicrosoftCertApp(t, "contoso", "other-app", oauthUser)
	saKey := tokens.GoogleServiceAccount(t, "reader@p.iam.gserviceaccount.com", "someone-else@winkel.example")
	tokens.RefreshClient("client", "client-secret")
	revoked := tokens.IssueRefreshToken("client", oauthUser, emailtest.MicrosoftIMAPScope, true)
	tokens.RevokeRefreshToken(revoked)
	ms := tokens.MicrosoftTokenURL("contoso")

	cases := []struct {
		name   string
		cfg    email.OAuth2Config
		want   string
		secret string
	}{
		{"microsoft wrong secret", email.OAuth2Config{Provider: "microsoft", TokenURL: ms, ClientID: "app", ClientSecret: "wrong-secret-value"},
			"invalid_client: AADSTS7000215: Invalid client secret provided", "wrong-secret-value"},
		{"microsoft app not in this tenant", email.OAuth2Config{Provider: "microsoft", TokenURL: tokens.MicrosoftTokenURL("fabrikam"), ClientID: "app", ClientSecret: "right-secret"},
			"unauthorized_client: AADSTS700016: Application with identifier 'app' was not found in the directory 'fabrikam'", "right-secret"},
		{"microsoft delegated scope with client credentials", email.OAuth2Config{Provider: "microsoft", TokenURL: ms, ClientID: "app", ClientSecret: "right-secret",
			Scopes: []string{emailtest.MicrosoftIMAPScope}}, "invalid_scope: AADSTS1002012", "right-secret"},
		{"microsoft certificate of another app", email.OAuth2Config{Provider: "microsoft", TokenURL: ms, ClientID: "cert-app", CertificatePEM: otherCert, PrivateKeyPEM: otherKey},
			"invalid_client: AADSTS700027", "PRIVATE KEY"},
		{"google subject without delegation", email.OAuth2Config{Provider: "google", ServiceAccountJSON: saKey, Subject: oauthUser},
			"unauthorized_client: Client is unauthorized to retrieve access tokens using this method", "PRIVATE KEY"},
		{"refresh token revoked", email.OAuth2Config{Provider: "refresh_token", TokenURL: ms, ClientID: "client", ClientSecret: "client-secret", RefreshToken: revoked,
			Scopes: []string{emailtest.MicrosoftIMAPScope}}, "invalid_grant: AADSTS50173: The provided grant has expired due to it being revoked", revoked},
		{"microsoft refresh without scope", email.OAuth2Config{Provider: "refresh_token", TokenURL: ms, ClientID: "client", ClientSecret: "client-secret", RefreshToken: revoked},
			"invalid_request: AADSTS900144: The request body must contain the following parameter: 'scope'.", revoked},
		{"refresh for a scope never consented", email.OAuth2Config{Provider: "refresh_token", TokenURL: ms, ClientID: "client", ClientSecret: "client-secret",
			RefreshToken: tokens.IssueRefreshToken("client", oauthUser, emailtest.MicrosoftIMAPScope, true), Scopes: []string{emailtest.MicrosoftSMTPScope}},
			"invalid_grant: AADSTS65001", "client-secret"},
		{"refresh token revoked (google)", email.OAuth2Config{Provider: "refresh_token", TokenURL: tokens.GoogleTokenURL(), ClientID: "client", ClientSecret: "client-secret", RefreshToken: revoked},
			"invalid_grant: Token has been expired or revoked.", revoked},
		{"refresh client secret wrong", email.OAuth2Config{Provider: "refresh_token", TokenURL: tokens.GoogleTokenURL(), ClientID: "client", ClientSecret: "not-the-secret", RefreshToken: revoked},
			"invalid_client: Unauthorized", "not-the-secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := newOAuth2(t, tc.cfg)
			_, err := o.Token()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}

// TestTokenCachedAndReplacedBeforeExpiry: a token is reused while it has
// more than EarlyExpiry left, replaced when it has less, and replaced at once
// when a server refused it.
func TestTokenCachedAndReplacedBeforeExpiry(t *testing.T) {
	tokens := emailtest.StartTokenServer(t)
	tokens.MicrosoftApp("contoso", "app", "secret", oauthUser)
	o := newOAuth2(t, email.OAuth2Config{Provider: "microsoft", TokenURL: tokens.MicrosoftTokenURL("contoso"), ClientID: "app", ClientSecret: "secret",
		EarlyExpiry: 5 * time.Minute})
	first, err := o.Token()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := o.Token()
	if again.AccessToken != first.AccessToken || tokens.Requests() != 1 {
		t.Fatalf("an hour-long token was not reused: %d requests", tokens.Requests())
	}
	o.Refused(first)
	tokens.SetTTL(4 * time.Minute) // less than EarlyExpiry: always "about to expire"
	fresh, _ := o.Token()
	if fresh.AccessToken == first.AccessToken || tokens.Requests() != 2 {
		t.Fatalf("a refused token was handed out again (%d requests)", tokens.Requests())
	}
	o.Refused(first) // a late report about the old token changes nothing
	next, _ := o.Token()
	if next.AccessToken == fresh.AccessToken || tokens.Requests() != 3 {
		t.Errorf("a token with 4 minutes left was reused with a 5-minute early expiry (%d requests)", tokens.Requests())
	}
}

// TestRotatedClientSecretFileIsUsedWithoutRestart: what must hold: an
// operator who rotates an app's client secret (Microsoft's expire after two
// years at most) by replacing the secret file is signed in again with the
// new secret without restarting; a file being replaced (missing or empty
// for a moment) keeps the secret read last.
func TestRotatedClientSecretFileIsUsedWithoutRestart(t *testing.T) {
	tokens := emailtest.StartTokenServer(t)
	tokens.MicrosoftApp("contoso", "app", "first-secret", oauthUser)
	tokens.SetTTL(4 * time.Minute) // less than EarlyExpiry: every Token() asks the endpoint
	file := filepath.Join(t.TempDir(), "client-secret")
	write := func(v string) {
		if err := os.WriteFile(file, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("first-secret\n")
	o := newOAuth2(t, email.OAuth2Config{Provider: "microsoft", TokenURL: tokens.MicrosoftTokenURL("contoso"), ClientID: "app",
		ClientSecret: "first-secret", ClientSecretFile: file})
	if _, err := o.Token(); err != nil {
		t.Fatalf("first secret: %v", err)
	}
	// The first secret expires: only the second one is valid now.
	tokens.MicrosoftApp("contoso", "app", "second-secret", oauthUser)
	if _, err := o.Token(); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("expired secret still in the file: error = %v, want invalid_client", err)
	}
	write("second-secret\n")
	if _, err := o.Token(); err != nil {
		t.Fatalf("after the secret file was replaced: %v", err)
	}
	for _, replacing := range []func(){func() { write("") }, func() { _ = os.Remove(file) }} {
		replacing()
		if _, err := o.Token(); err != nil {
			t.Fatalf("while the file is being replaced, the last secret read must stand: %v", err)
		}
	}
}

// TestRotatedRefreshTokenIsKept: a provider that rotates refresh tokens
// (Microsoft) is answered with the newest one.
func TestRotatedRefreshTokenIsKept(t *testing.T) {
	tokens := emailtest.StartTokenServer(t)
	tokens.RefreshClient("client", "")
	rt := tokens.IssueRefreshToken("client", oauthUser, emailtest.MicrosoftIMAPScope, true)
	o := newOAuth2(t, email.OAuth2Config{Provider: "refresh_token", TokenURL: tokens.MicrosoftTokenURL("contoso"), ClientID: "client", RefreshToken: rt,
		Scopes: []string{emailtest.MicrosoftIMAPScope, "offline_access"}})
	tok, err := o.Token()
	if err != nil {
		t.Fatal(err)
	}
	tokens.RevokeRefreshToken(rt) // only the first one
	o.Refused(tok)
	if _, err := o.Token(); err != nil {
		t.Fatalf("the rotated refresh token was not used: %v", err)
	}
}

func oauthSender(t *testing.T, srv *emailtest.SMTP, w *world, o *email.OAuth2, reg prometheus.Registerer) *email.Sender {
	t.Helper()
	tpl, err := email.LoadTemplates("../../configs/email-templates", "en")
	if err != nil {
		t.Fatal(err)
	}
	s, err := email.NewSender(email.SMTPConfig{
		Host: srv.Host, Port: srv.Port, TLS: email.TLSNone, Username: oauthUser, OAuth2: o, Metrics: email.NewMetrics(reg),
		From: "Klantenservice <support@winkel.example>",
	}, tpl, w.state, slog.New(slog.NewTextHandler(w.log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSMTPOAuthSends: mail leaves through go-smtp's server signed in by
// XOAUTH2 (Microsoft app token) and by OAUTHBEARER (Google service account).
func TestSMTPOAuthSends(t *testing.T) {
	tokens := emailtest.StartTokenServer(t)
	tokens.MicrosoftApp("contoso", "app", "secret", oauthUser)
	saKey := tokens.GoogleServiceAccount(t, "sender@p.iam.gserviceaccount.com", oauthUser)
	cases := []struct {
		name, scope string
		cfg         email.OAuth2Config
	}{
		{"microsoft XOAUTH2", emailtest.MicrosoftMailScope, email.OAuth2Config{Provider: "microsoft", TokenURL: tokens.MicrosoftTokenURL("contoso"), ClientID: "app", ClientSecret: "secret"}},
		{"google OAUTHBEARER", emailtest.GoogleMailScope, email.OAuth2Config{Provider: "google", Mechanism: "oauthbearer", ServiceAccountJSON: saKey, Subject: oauthUser}},
		{"google XOAUTH2", emailtest.GoogleMailScope, email.OAuth2Config{Provider: "google", ServiceAccountJSON: saKey, Subject: oauthUser}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := emailtest.StartOAuthSMTP(t, tokens, tc.scope)
			w := newWorld(t)
			s := oauthSender(t, srv, w, newOAuth2(t, tc.cfg), nil)
			id := fmt.Sprintf("C-%d", 1100+i)
			if _, err := s.Send(context.Background(), ack(id, "en")); err != nil {
				t.Fatal(err)
			}
			got := srv.To("jan@voorbeeld.nl")
			if len(got) != 1 || got[0].Auth != oauthUser {
				t.Fatalf("received %+v, want one mail sent signed in as %s", got, oauthUser)
			}
			if err := s.Check(); err != nil {
				t.Errorf("check after a good sign-in: %v", err)
			}
		})
	}
}

// TestSMTPOAuthRefusal: a refused token is replaced once and the mail goes;
// when the fresh token is refused too (the app lost its permission on the
// mailbox), the send fails retryably (it is not the customer's fault), the
// check says why in the server's and provider's words, and the metrics count
// it.
func TestSMTPOAuthRefusal(t *testing.T) {
	tokens := emailtest.StartTokenServer(t)
	tokens.MicrosoftApp("contoso", "app", "secret", oauthUser)
	srv := emailtest.StartOAuthSMTP(t, tokens, emailtest.MicrosoftMailScope)
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	s := oauthSender(t, srv, w, newOAuth2(t, email.OAuth2Config{Provider: "microsoft", TokenURL: tokens.MicrosoftTokenURL("contoso"), ClientID: "app", ClientSecret: "secret"}), reg)
	if _, err := s.Send(context.Background(), ack("C-1201", "en")); err != nil {
		t.Fatal(err)
	}
	tokens.RevokeAccessTokens()
	if _, err := s.Send(context.Background(), replyMsg("C-1201")); err != nil {
		t.Fatalf("a revoked token was not replaced: %v", err)
	}
	if n := tokens.Requests(); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}

	tokens.SetMailboxes("app") // permission withdrawn
	_, err := s.Send(context.Background(), replyMsg("C-1202"))
	if err == nil || router.IsPermanent(err) {
		t.Fatalf("send = %v; want a retryable failure", err)
	}
	check := s.Check()
	for _, want := range []string{"535 5.7.8", "status 401", "freshly fetched token was refused too"} {
		if check == nil || !strings.Contains(check.Error(), want) {
			t.Errorf("check = %v; want %q in it", check, want)
		}
	}
	if got := metricValue(t, reg, "forgetmenot_email_signin_failures_total", "refused", "smtp"); got != 1 {
		t.Errorf("smtp refusals counted %v, want 1", got)
	}
	if got := metricValue(t, reg, "forgetmenot_email_signed_in", "smtp"); got != 0 {
		t.Errorf("smtp signed_in = %v, want 0", got)
	}
	tokens.SetMailboxes("app", oauthUser)
	if _, err := s.Send(context.Background(), replyMsg("C-1203")); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Errorf("check after the permission came back: %v", err)
	}
}

// TestOAuthSecretsNeverLogged: through good sign-ins, refusals and token
// failures, neither the logs (at debug level) nor the checks show a client
// secret, an access token or a refresh token.
func TestOAuthSecretsNeverLogged(t *testing.T) {
	tokens := emailtest.StartTokenServer(t)
	tokens.MicrosoftApp("contoso", "app", "the-client-secret-value", oauthUser)
	tokens.RefreshClient("client", "refresh-client-secret")
	rt := tokens.IssueRefreshToken("client", oauthUser, emailtest.MicrosoftMailScope, true)
	d := oauthDovecot(t, tokens, emailtest.MicrosoftMailScope)
	d.Append(t, oauthUser, "INBOX", mailN(1, ""))
	w := newWorld(t)
	good := newOAuth2(t, email.OAuth2Config{Provider: "microsoft", TokenURL: tokens.MicrosoftTokenURL("contoso"), ClientID: "app", ClientSecret: "the-client-secret-value"})
	in := runIngester(t, w, oauthMailbox(d, good))
	testkit.WaitFor(t, "the mail", func() bool { return len(w.inbound(t)) == 1 })
	var checks []string
	tokens.RevokeAccessTokens()
	tokens.SetMailboxes("app") // refused from now on
	d.Restart(t)
	testkit.WaitFor(t, "the refusal", func() bool {
		if err := in.Check(); err != nil && strings.Contains(err.Error(), "(XOAUTH2) refused") {
			checks = append(checks, err.Error())
			return true
		}
		return false
	})
	bad := newOAuth2(t, email.OAuth2Config{Provider: "refresh_token", TokenURL: tokens.MicrosoftTokenURL("contoso"), ClientID: "client", ClientSecret: "wrong-refresh-client-secret",
		RefreshToken: rt, Scopes: []string{emailtest.MicrosoftMailScope}})
	in2 := runIngester(t, w, oauthMailbox(d, bad))
	testkit.WaitFor(t, "the token failure", func() bool {
		if err := in2.Check(); err != nil {
			checks = append(checks, err.Error())
			return true
		}
		return false
	})
	all := w.log.String() + strings.Join(checks, "\n")
	secrets := append([]string{"the-client-secret-value", "refresh-client-secret", "wrong-refresh-client-secret"}, tokens.Issued()...)
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("a secret (%.8s…) is in the logs or checks", s)
		}
	}
	if !strings.Contains(all, "(XOAUTH2) refused") || !strings.Contains(all, "invalid_client") {
		t.Errorf("the failures are not described:\n%s", all)
	}
}

// replyMsg is staff's answer (not rate-limited like acknowledgements).
func replyMsg(id string) router.CustomerMessage {
	m := ack(id, "en")
	m.ID, m.Kind, m.Body = id+":v2:reply", router.ToCustomerReply, "Uw pakket is onderweg."
	return m
}

// TestOAuthMechanismNotOffered: a server that does not offer the mechanism
// is told apart from a refused token, and no token is fetched for it.
func TestOAuthMechanismNotOffered(t *testing.T) {
	tokens := emailtest.StartTokenServer(t)
	tokens.MicrosoftApp("contoso", "app", "secret", oauthUser)
	cfg := email.OAuth2Config{Provider: "microsoft", Mechanism: "oauthbearer", TokenURL: tokens.MicrosoftTokenURL("contoso"), ClientID: "app", ClientSecret: "secret"}

	d := testdovecot.Start(t, testdovecot.Options{Users: map[string]string{oauthUser: "pw"}}) // PLAIN and LOGIN only
	r := email.CheckMailbox(context.Background(), oauthMailbox(d, newOAuth2(t, cfg)))
	if !strings.Contains(r.Error, "the server does not offer OAUTHBEARER (it offers: LOGIN PLAIN)") {
		t.Errorf("IMAP check = %q", r.Error)
	}
	srv := emailtest.StartSMTP(t, map[string]string{"mailer": "pw"}) // AUTH PLAIN only
	sc := email.CheckSMTP(context.Background(), email.SMTPConfig{Host: srv.Host, Port: srv.Port, TLS: email.TLSNone, Username: oauthUser,
		OAuth2: newOAuth2(t, cfg), From: oauthUser})
	if !strings.Contains(sc.Error, "the server does not offer OAUTHBEARER (it offers: PLAIN)") {
		t.Errorf("SMTP check = %q", sc.Error)
	}
	if n := tokens.Requests(); n != 0 {
		t.Errorf("%d token requests for servers without the mechanism, want 0", n)
	}
}

// TestHostileTokenAnswer: an access token that could smuggle fields into
// the SASL message (a \x01, a comma) is refused before it is sent anywhere.
func TestHostileTokenAnswer(t *testing.T) {
	for _, tok := range []string{"abc\x01auth=Bearer other\x01\x01", "a,b", "tok en", ""} {
		var asked atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			asked.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3599})
		}))
		o := newOAuth2(t, email.OAuth2Config{Provider: "microsoft", TokenURL: srv.URL, ClientID: "app", ClientSecret: "secret"})
		_, err := o.Token()
		if err == nil || (tok != "" && !strings.Contains(err.Error(), "characters a bearer token cannot have")) {
			t.Errorf("token %q: error %v", tok, err)
		}
		if tok != "" && strings.Contains(err.Error(), tok) {
			t.Errorf("the error repeats the token: %v", err)
		}
		if _, err := o.Token(); err == nil || asked.Load() != 2 {
			t.Errorf("token %q: kept in the cache (%d requests for two asks)", tok, asked.Load())
		}
		srv.Close()
	}
}
