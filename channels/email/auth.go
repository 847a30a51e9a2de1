package email

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
)

// AuthFailureBackoff is the least wait before signing in again after a
// server refused the credentials or no token could be had: retrying at once
// only adds to the provider's failed sign-ins (and may lock the account).
const AuthFailureBackoff = 30 * time.Second

// AuthError is a sign-in the server refused, in its words and, for OAuth,
// the provider's (the JSON error the server sent). It never holds a secret.
type AuthError struct {
	Mechanism string
	Username  string
	// Server is the server's refusal ("NO [AUTHENTICATIONFAILED] …", "535 …").
	Server string
	// Provider is the OAuth error the server relayed, like "status 401".
	Provider string
	// Refreshed: the refusal came with a freshly fetched token.
	Refreshed bool
	// tokenRefused: an OAuth token was refused (and dropped from the cache),
	// so one more try with a fresh token is worth it.
	tokenRefused bool
}

func (e *AuthError) Error() string {
	s := fmt.Sprintf("logging in as %s (%s) refused: %s", e.Username, e.Mechanism, e.Server)
	if e.Provider != "" {
		s += " (provider: " + e.Provider + ")"
	}
	if e.Refreshed {
		s += "; a freshly fetched token was refused too: check that the app may use this mailbox"
	}
	return s
}

// IsAuthFailure reports whether err is a refused sign-in or a failure to
// get a token: something a reconnect alone does not fix.
func IsAuthFailure(err error) bool {
	var ae *AuthError
	var te *TokenError
	return errors.As(err, &ae) || errors.As(err, &te)
}

// imapRefused: the server answered AUTHENTICATE or LOGIN with NO.
func imapRefused(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo
}

// smtpRefused: 535 is "authentication credentials invalid" (RFC 4954);
// Microsoft 365 answers 535 5.7.3, Gmail 535 5.7.8.
func smtpRefused(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code == 535
}

// oauthSignIn signs in with a token. When the server refuses it, the token
// is dropped from the cache and the AuthError says a fresh token is worth
// one more try (see retryRefusedToken).
func oauthSignIn(retry bool, o *OAuth2, username string, auth func(sasl.Client) error, refused func(error) bool, newClient func(tok string) *bearerClient) error {
	tok, err := o.Token()
	if err != nil {
		return err
	}
	bc := newClient(tok.AccessToken)
	err = auth(bc)
	if err == nil {
		return nil
	}
	// A server that sent its error challenge refused the token, however it
	// ended the exchange (NO, BAD, or hanging up).
	if !refused(err) && !bc.refusedByChallenge() {
		return fmt.Errorf("%s sign-in as %s: %w", o.Mechanism(), username, err)
	}
	o.Refused(tok)
	return &AuthError{Mechanism: o.Mechanism(), Username: username, Server: serverText(err), Provider: bc.providerError(), tokenRefused: true, Refreshed: retry}
}

// retryRefusedToken runs connect (connect and sign in) and, when the
// server refused the token, once more on a new connection with a freshly
// fetched token: some servers hang up after a refused token, and a new
// connection has no failed attempt counted against it. A second refusal is
// final until the caller's backoff. connect's retry says which try it is.
func retryRefusedToken[C any](log *slog.Logger, connect func(retry bool) (C, error)) (C, error) {
	c, err := connect(false)
	var ae *AuthError
	if err == nil || !errors.As(err, &ae) || !ae.tokenRefused {
		return c, err
	}
	log.Info("the server refused the access token; signing in again with a new one", "mechanism", ae.Mechanism,
		"username", ae.Username, "server", ae.Server, "provider", ae.Provider)
	return connect(true)
}

// serverText is a server's answer without the library's prefixes.
func serverText(err error) string {
	var ie *imap.Error
	if errors.As(err, &ie) {
		s := string(ie.Type)
		if ie.Code != "" {
			s += " [" + string(ie.Code) + "]"
		}
		return clipRunes(cleanLine(s+" "+ie.Text), 300)
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return clipRunes(cleanLine(fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)), 300)
	}
	return clipRunes(cleanLine(err.Error()), 300)
}

// open connects and signs in (a refused token is replaced once, on a new
// connection).
func (in *Ingester) open(ctx context.Context, newMail chan struct{}) (*imapclient.Client, error) {
	c, err := retryRefusedToken(in.log, func(retry bool) (*imapclient.Client, error) {
		c, err := in.dial(ctx, newMail)
		if err != nil {
			return nil, fmt.Errorf("connecting to %s:%d: %w", in.mb.Host, in.mb.Port, err)
		}
		// Wait() takes no context: closing the client unblocks the login.
		stop := context.AfterFunc(ctx, func() { _ = c.Close() })
		defer stop()
		// A server that stops answering at the greeting or sign-in is left
		// too (the token fetch of an OAuth sign-in has its own timeout).
		g := in.guard(c)
		defer g.stop()
		if err := in.signIn(c, retry); err != nil {
			_ = c.Close()
			return nil, err
		}
		return c, nil
	})
	if err == nil || IsAuthFailure(err) {
		in.cfg.Metrics.signIn(in.mb.Name, err)
	}
	return c, err
}

// signIn logs in to the IMAP server with the mailbox's password or token.
func (in *Ingester) signIn(c *imapclient.Client, retry bool) error {
	mb := in.mb
	if mb.OAuth2 == nil {
		if err := c.Login(mb.Username, mb.Password).Wait(); err != nil {
			if imapRefused(err) {
				return &AuthError{Mechanism: "LOGIN", Username: mb.Username, Server: serverText(err)}
			}
			return fmt.Errorf("logging in as %s: %w", mb.Username, err)
		}
		return nil
	}
	if offered := c.Caps().AuthMechanisms(); !slices.Contains(offered, mb.OAuth2.Mechanism()) {
		return &AuthError{Mechanism: mb.OAuth2.Mechanism(), Username: mb.Username,
			Server: fmt.Sprintf("the server does not offer %s (it offers: %s)", mb.OAuth2.Mechanism(), orNone(offered))}
	}
	return oauthSignIn(retry, mb.OAuth2, mb.Username, c.Authenticate, imapRefused, func(tok string) *bearerClient {
		bc := newBearerClient(mb.OAuth2.Mechanism(), mb.Username, tok, mb.Host, mb.Port)
		bc.dummy = []byte{0x01} // see bearerClient.dummy
		return bc
	})
}

// signIn authenticates an SMTP connection with the password or token.
func (s *Sender) signIn(c *smtp.Client, retry bool) error {
	cfg := s.cfg
	var err error
	switch {
	case cfg.OAuth2 != nil && !c.SupportsAuth(cfg.OAuth2.Mechanism()):
		_, offered := c.Extension("AUTH")
		err = &AuthError{Mechanism: cfg.OAuth2.Mechanism(), Username: cfg.Username,
			Server: fmt.Sprintf("the server does not offer %s (it offers: %s)", cfg.OAuth2.Mechanism(), orNone(strings.Fields(offered)))}
	case cfg.OAuth2 != nil:
		err = oauthSignIn(retry, cfg.OAuth2, cfg.Username, c.Auth, smtpRefused, func(tok string) *bearerClient {
			return newBearerClient(cfg.OAuth2.Mechanism(), cfg.Username, tok, cfg.Host, cfg.Port)
		})
	case cfg.Username != "":
		err = c.Auth(sasl.NewPlainClient("", cfg.Username, cfg.Password))
		if smtpRefused(err) {
			err = &AuthError{Mechanism: "PLAIN", Username: cfg.Username, Server: serverText(err)}
		}
	}
	return err
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "no AUTH mechanisms; TLS may be required first"
	}
	return strings.Join(slices.Sorted(slices.Values(list)), " ")
}

// authStatus remembers the last sign-in failure until a sign-in succeeds.
type authStatus struct {
	mu  sync.Mutex
	err error
}

func (a *authStatus) record(err error) {
	if err != nil && !IsAuthFailure(err) {
		return // a network failure says nothing about the credentials
	}
	a.mu.Lock()
	a.err = err
	a.mu.Unlock()
}

func (a *authStatus) get() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Metrics count sign-ins per mailbox (and "smtp").
type Metrics struct {
	signedIn *prometheus.GaugeVec
	failures *prometheus.CounterVec
}

// NewMetrics registers the e-mail channel's metrics (reg may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		signedIn: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "forgetmenot_email_signed_in",
			Help: "1 when the last sign-in of this mailbox (or smtp) succeeded, 0 when it failed; the reason is on /readyz.",
		}, []string{"mailbox"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "forgetmenot_email_signin_failures_total",
			Help: "Failed sign-ins by mailbox (or smtp) and error: the token endpoint's OAuth error code (invalid_grant, invalid_client, …), token_endpoint (another token endpoint failure) or refused (the server refused the credentials or does not offer the mechanism).",
		}, []string{"mailbox", "error"}),
	}
	if reg != nil {
		reg.MustRegister(m.signedIn, m.failures)
	}
	return m
}

func (m *Metrics) signIn(mailbox string, err error) {
	if m == nil {
		return
	}
	if err == nil {
		m.signedIn.WithLabelValues(mailbox).Set(1)
		return
	}
	m.signedIn.WithLabelValues(mailbox).Set(0)
	m.failures.WithLabelValues(mailbox, failureLabel(err)).Inc()
}

// failureLabel is a short, bounded label for a sign-in failure.
func failureLabel(err error) string {
	var ae *AuthError
	if errors.As(err, &ae) {
		return "refused"
	}
	var te *TokenError
	if !errors.As(err, &te) {
		return "other"
	}
	code := strings.SplitN(describeTokenError(te.Err), ":", 2)[0]
	switch code {
	case "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
		"invalid_scope", "access_denied", "temporarily_unavailable", "server_error", "interaction_required":
		return code
	}
	return "token_endpoint"
}

// Check reports the last SMTP sign-in failure until a sign-in succeeds
// (for /readyz): refused credentials or no token to be had.
func (s *Sender) Check() error {
	if err := s.auth.get(); err != nil {
		return fmt.Errorf("smtp %s: %w", s.cfg.Host, err)
	}
	return nil
}
