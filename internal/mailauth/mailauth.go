// Package mailauth holds what a mailbox (or the SMTP server) signs in with
// by OAuth 2.0. The configuration reads it from mailboxes.yaml and the
// e-mail channel gets tokens with it; one type, so the two cannot drift
// apart field by field.
package mailauth

import (
	"net/http"
	"time"
)

// OAuth2 says where access tokens come from. Secrets are values here: the
// configuration reads them from files or the environment.
type OAuth2 struct {
	// Provider is microsoft, google or refresh_token.
	Provider string
	// Mechanism is XOAUTH2 (default) or OAUTHBEARER, in either case.
	Mechanism string
	// TokenURL overrides the provider's token endpoint.
	TokenURL string
	// Scopes override the provider's default scope.
	Scopes []string

	// Microsoft: the directory (tenant) id, the app's client id, and either
	// its secret or its certificate with the private key (PEM).
	Tenant       string
	ClientID     string
	ClientSecret string
	// ClientSecretFile, when the secret came from a file, is read again for
	// every token request, so a rotated secret is used without a restart
	// (ClientSecret, read at start, stands while the file cannot be read).
	ClientSecretFile string
	CertificatePEM   []byte
	PrivateKeyPEM    []byte

	// Google: the service account's JSON key; Subject is the mailbox the
	// token acts for.
	ServiceAccountJSON []byte
	Subject            string

	// Refresh token flow (with ClientID, ClientSecret and TokenURL).
	RefreshToken string

	// EarlyExpiry: how long before expiry a token is replaced (0: the
	// channel's default). The configuration leaves it and HTTPClient unset.
	EarlyExpiry time.Duration
	// HTTPClient talks to the token endpoint (nil: 30 s timeout).
	HTTPClient *http.Client
}
