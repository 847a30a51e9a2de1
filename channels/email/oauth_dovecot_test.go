package email_test

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/email"
	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/internal/testdovecot"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

const oauthUser = "support@winkel.example"

// oauthDovecot is a real Dovecot checking OAuth logins with its oauth2
// passdb against the token server (see emailtest.StartOAuthDovecot).
func oauthDovecot(t testing.TB, tokens *emailtest.TokenServer, mailScope string) *testdovecot.Server {
	t.Helper()
	return emailtest.StartOAuthDovecot(t, tokens, mailScope, oauthUser)
}

func oauthMailbox(d *testdovecot.Server, o *email.OAuth2) email.Mailbox {
	return email.Mailbox{Name: "support", Host: d.Host, Port: d.Port, TLS: email.TLSNone, Username: oauthUser, OAuth2: o, DefaultTeam: "support-nl"}
}

func newOAuth2(t testing.TB, cfg email.OAuth2Config) *email.OAuth2 {
	t.Helper()
	o, err := email.NewOAuth2(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestDovecotOAuthSignIn: each token source signs in to a real Dovecot by
// XOAUTH2 and by OAUTHBEARER, and the mail is taken in.
func TestDovecotOAuthSignIn(t *testing.T) {
	tokens := emailtest.StartTokenServer(t)
	msCert, msKey := tokens.MicrosoftCertApp(t, "contoso", "cert-app", oauthUser)
	tokens.MicrosoftApp("contoso", "secret-app", "app-secret-value", oauthUser)
	saKey := tokens.GoogleServiceAccount(t, "mail-reader@forgetmenot-test.iam.gserviceaccount.com", oauthUser)
	tokens.RefreshClient("desktop-client", "desktop-secret")
	refresh := tokens.IssueRefreshToken("desktop-client", oauthUser, emailtest.MicrosoftIMAPScope, true)

	cases := []struct {
		name  string
		scope string // what Dovecot demands
		cfg   email.OAuth2Config
	}{
		{"microsoft client secret, XOAUTH2", emailtest.MicrosoftMailScope, email.OAuth2Config{Provider: email.ProviderMicrosoft,
			TokenURL: tokens.MicrosoftTokenURL("contoso"), ClientID: "secret-app", ClientSecret: "app-secret-value"}},
		{"microsoft certificate, XOAUTH2", emailtest.MicrosoftMailScope, email.OAuth2Config{Provider: email.ProviderMicrosoft,
			TokenURL: tokens.MicrosoftTokenURL("contoso"), ClientID: "cert-app", CertificatePEM: msCert, PrivateKeyPEM: msKey}},
		{"google service account, XOAUTH2", emailtest.GoogleMailScope, email.OAuth2Config{Provider: email.ProviderGoogle,
			ServiceAccountJSON: saKey, Subject: oauthUser}},
		{"google service account, OAUTHBEARER", emailtest.GoogleMailScope, email.OAuth2Config{Provider: email.ProviderGoogle,
			Mechanism: "oauthbearer", ServiceAccountJSON: saKey, Subject: oauthUser}},
		{"refresh token, OAUTHBEARER", emailtest.MicrosoftIMAPScope, email.OAuth2Config{Provider: email.ProviderRefreshToken,
			Mechanism: "OAUTHBEARER", TokenURL: tokens.MicrosoftTokenURL("contoso"), ClientID: "desktop-client", ClientSecret: "desktop-secret",
			RefreshToken: refresh, Scopes: []string{emailtest.MicrosoftIMAPScope, "offline_access"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := oauthDovecot(t, tokens, tc.scope)
			d.Append(t, oauthUser, "INBOX", mailN(1, ""))
			w := newWorld(t)
			w.run(t, oauthMailbox(d, newOAuth2(t, tc.cfg)))
			testkit.WaitFor(t, "the mail taken in after an OAuth sign-in", func() bool { return len(w.inbound(t)) == 1 })
			mech := strings.ToUpper(tc.cfg.Mechanism)
			if mech == "" {
				mech = email.MechXOAUTH2
			}
			if want := "Login: user=<" + oauthUser + ">, method=" + mech; !strings.Contains(d.Log(), want) {
				t.Errorf("Dovecot's log lacks %q: the sign-in did not go through its oauth2 passdb", want)
			}
		})
	}
}

// TestDovecotOAuthRefusedTokenIsReplacedOnce: when the server refuses a
// cached token (revoked, permissions changed), exactly one new token is
// fetched and the sign-in succeeds with it.
func TestDovecotOAuthRefusedTokenIsReplacedOnce(t *testing.T) {
	tokens := emailtest.StartTokenServer(t)
	tokens.MicrosoftApp("contoso", "app", "secret", oauthUser)
	d := oauthDovecot(t, tokens, emailtest.MicrosoftMailScope)
	d.Append(t, oauthUser, "INBOX", mailN(1, ""))
	w := newWorld(t)
	o := newOAuth2(t, email.OAuth2Config{Provider: email.ProviderMicrosoft, TokenURL: tokens.MicrosoftTokenURL("contoso"), ClientID: "app", ClientSecret: "secret"})
	w.run(t, oauthMailbox(d, o))
	testkit.WaitFor(t, "the first mail", func() bool { return len(w.inbound(t)) == 1 })
	if n := tokens.Requests(); n != 1 {
		t.Fatalf("%d token requests for one sign-in, want 1 (the token is cached)", n)
	}

	tokens.RevokeAccessTokens()
	d.Restart(t) // the ingester reconnects with its cached, now refused token
	d.Append(t, oauthUser, "INBOX", mailN(2, ""))
	testkit.WaitFor(t, "the second mail after the refused token was replaced", func() bool { return len(w.inbound(t)) == 2 })
	if n := tokens.Requests(); n != 2 {
		t.Errorf("%d token requests, want 2: one refusal fetches one new token", n)
	}
}

// TestDovecotOAuthWrongScopeBacksOffAndSays: a token for the wrong resource
// (Graph instead of Exchange) is issued but refused by the server; after one
// fresh token is refused too, the mailbox backs off for at least
// AuthFailureBackoff (as the README says; the jitter comes on top) and
// /readyz (Check) says why in the server's words.
func TestDovecotOAuthWrongScopeBacksOffAndSays(t *testing.T) {
	tokens := emailtest.StartTokenServer(t)
	tokens.MicrosoftApp("contoso", "app", "secret", oauthUser)
	d := oauthDovecot(t, tokens, emailtest.MicrosoftMailScope)
	w := newWorld(t)
	o := newOAuth2(t, email.OAuth2Config{Provider: email.ProviderMicrosoft, TokenURL: tokens.MicrosoftTokenURL("contoso"),
		ClientID: "app", ClientSecret: "secret", Scopes: []string{emailtest.MicrosoftGraph}})
	reg := prometheus.NewRegistry()
	metrics := email.NewMetrics(reg)
	in := runIngester(t, w, oauthMailbox(d, o), func(c *email.IngesterConfig) { c.MaxBackoff = time.Hour; c.Metrics = metrics })
	var err error
	testkit.WaitFor(t, "the refusal on the mailbox's check", func() bool { err = in.Check(); return err != nil })
	msg := err.Error()
	for _, want := range []string{"mailbox support is not connected", "support@winkel.example (XOAUTH2) refused", "AUTHENTICATIONFAILED", "freshly fetched token was refused too"} {
		if !strings.Contains(msg, want) {
			t.Errorf("check = %q\nwant it to contain %q", msg, want)
		}
	}
	if n := tokens.Requests(); n != 2 {
		t.Errorf("%d token requests, want 2 (the cached token, then one fresh one)", n)
	}
	testkit.WaitFor(t, "the reconnect wait logged", func() bool { return strings.Contains(w.log.String(), "reconnecting") })
	m := regexp.MustCompile(`reconnecting" mailbox=\S+ in=(\S+)`).FindStringSubmatch(w.log.String())
	if m == nil {
		t.Fatalf("no reconnect wait in the log:\n%s", w.log)
	}
	if wait, err := time.ParseDuration(m[1]); err != nil || wait < email.AuthFailureBackoff {
		t.Errorf("reconnect in %s after refused credentials, want at least %s", m[1], email.AuthFailureBackoff)
	}
	if got := metricValue(t, reg, "forgetmenot_email_signin_failures_total", "refused", "support"); got != 1 {
		t.Errorf("sign-in failures{support,refused} = %v, want 1", got)
	}
}

// TestDovecotOAuthRevokedRefreshToken: a revoked refresh token is the
// provider's invalid_grant, shown on the check with its description.
func TestDovecotOAuthRevokedRefreshToken(t *testing.T) {
	tokens := emailtest.StartTokenServer(t)
	tokens.RefreshClient("web-client", "web-secret")
	rt := tokens.IssueRefreshToken("web-client", oauthUser, emailtest.GoogleMailScope, false)
	tokens.RevokeRefreshToken(rt)
	d := oauthDovecot(t, tokens, emailtest.GoogleMailScope)
	w := newWorld(t)
	o := newOAuth2(t, email.OAuth2Config{Provider: email.ProviderRefreshToken, TokenURL: tokens.GoogleTokenURL(),
		ClientID: "web-client", ClientSecret: "web-secret", RefreshToken: rt})
	in := runIngester(t, w, oauthMailbox(d, o))
	var err error
	testkit.WaitFor(t, "the token failure on the check", func() bool { err = in.Check(); return err != nil })
	if !strings.Contains(err.Error(), "invalid_grant: Token has been expired or revoked.") || !strings.Contains(err.Error(), tokens.GoogleTokenURL()) {
		t.Errorf("check = %v; want the provider's invalid_grant and where it came from", err)
	}
}

// runIngester is world.run that also returns the ingester (for Check).
func runIngester(t testing.TB, w *world, mb email.Mailbox, tweak ...func(*email.IngesterConfig)) *email.Ingester {
	t.Helper()
	cfg := email.IngesterConfig{
		Mailbox: mb, Queue: w.store, State: w.state,
		Logger:     slog.New(slog.NewTextHandler(w.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	in, err := email.NewIngester(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = in.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return in
}

// metricValue is the value of a metric with the given label values (in
// order of the label names), or -1 when there is none.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for i, l := range m.GetLabel() {
				if l.GetValue() != labels[i] {
					continue next
				}
			}
			if m.Counter != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// TestDovecotOAuthTokenNearExpiryIsReplacedBeforeSignIn: a cached token
// with less than EarlyExpiry left is replaced before the next sign-in, so
// the server never sees an expiring token and nothing is refused.
func TestDovecotOAuthTokenNearExpiryIsReplacedBeforeSignIn(t *testing.T) {
	tokens := emailtest.StartTokenServer(t)
	tokens.MicrosoftApp("contoso", "app", "secret", oauthUser)
	tokens.SetTTL(4 * time.Minute) // under the 5-minute early expiry
	d := oauthDovecot(t, tokens, emailtest.MicrosoftMailScope)
	d.Append(t, oauthUser, "INBOX", mailN(1, ""))
	w := newWorld(t)
	o := newOAuth2(t, email.OAuth2Config{Provider: email.ProviderMicrosoft, TokenURL: tokens.MicrosoftTokenURL("contoso"), ClientID: "app", ClientSecret: "secret"})
	w.run(t, oauthMailbox(d, o))
	testkit.WaitFor(t, "the first mail", func() bool { return len(w.inbound(t)) == 1 })
	d.Restart(t)
	d.Append(t, oauthUser, "INBOX", mailN(2, ""))
	testkit.WaitFor(t, "the second mail after the reconnect", func() bool { return len(w.inbound(t)) == 2 })
	if n := tokens.Requests(); n != 2 {
		t.Errorf("%d token requests, want 2: the near-expiry token is replaced before the second sign-in", n)
	}
	if strings.Contains(w.log.String(), "the server refused the access token") {
		t.Errorf("a token was refused; it should have been replaced before:\n%s", w.log)
	}
}
