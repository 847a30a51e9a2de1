package email

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/mailauth"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/google"
)

// OAuth 2.0 token providers.
const (
	// ProviderMicrosoft is Microsoft 365 / Exchange Online with an app's
	// client credentials (a secret or a certificate).
	ProviderMicrosoft = "microsoft"
	// ProviderGoogle is Google Workspace with a service account that has
	// domain-wide delegation; the token is for the mailbox (subject).
	ProviderGoogle = "google"
	// ProviderRefreshToken is any provider, with a refresh token obtained
	// once by a person.
	ProviderRefreshToken = "refresh_token"
)

// Provider defaults (overridable for sovereign clouds and tests).
const (
	MicrosoftTokenURL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
	MicrosoftScope    = "https://outlook.office365.com/.default"
	GoogleTokenURL    = "https://oauth2.googleapis.com/token"
	GoogleScope       = "https://mail.google.com/"
	// DefaultEarlyExpiry: a token is replaced this long before it expires,
	// so a session never starts with a token about to run out.
	DefaultEarlyExpiry = 5 * time.Minute
)

// OAuth2Config says where a mailbox's (or the SMTP server's) access tokens
// come from: the type the configuration loads.
type OAuth2Config = mailauth.OAuth2

// OAuth2 hands out access tokens for SASL sign-in: cached, replaced
// EarlyExpiry before they expire, and replaced at once when a server refuses
// one.
type OAuth2 struct {
	mech     string
	provider string
	tokenURL string
	base     oauth2.TokenSource
	early    time.Duration

	mu    sync.Mutex
	cache oauth2.TokenSource
	// current is the access token last handed out.
	current string
}

// NewOAuth2 checks the configuration and builds the token source. Nothing is
// fetched yet.
func NewOAuth2(cfg OAuth2Config) (*OAuth2, error) {
	mech := strings.ToUpper(cfg.Mechanism)
	switch mech {
	case "":
		mech = MechXOAUTH2
	case MechXOAUTH2, MechOAUTHBEARER:
	default:
		return nil, fmt.Errorf("mechanism %q: use xoauth2 or oauthbearer", cfg.Mechanism)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	// The token sources take their HTTP client from this context; it lives
	// as long as the process.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	o := &OAuth2{mech: mech, provider: cfg.Provider, early: cfg.EarlyExpiry}
	if o.early <= 0 {
		o.early = DefaultEarlyExpiry
	}
	var err error
	switch cfg.Provider {
	case ProviderMicrosoft:
		o.tokenURL, o.base, err = microsoftSource(ctx, cfg)
	case ProviderGoogle:
		o.tokenURL, o.base, err = googleSource(ctx, cfg)
	case ProviderRefreshToken:
		o.tokenURL, o.base, err = refreshSource(ctx, cfg)
	default:
		return nil, fmt.Errorf("provider %q: use microsoft, google or refresh_token", cfg.Provider)
	}
	if err != nil {
		return nil, err
	}
	o.cache = oauth2.ReuseTokenSourceWithExpiry(nil, o.base, o.early)
	return o, nil
}

// Mechanism is the SASL mechanism to sign in with.
func (o *OAuth2) Mechanism() string { return o.mech }

// Token returns a valid access token, fetching one when the cached one is
// missing or about to expire. The error carries the provider's own words.
func (o *OAuth2) Token() (*oauth2.Token, error) {
	o.mu.Lock()
	src := o.cache
	o.mu.Unlock()
	tok, err := src.Token()
	if err != nil {
		return nil, &TokenError{Provider: o.provider, URL: o.tokenURL, Err: err}
	}
	if tok.AccessToken == "" {
		return nil, &TokenError{Provider: o.provider, URL: o.tokenURL, Err: errors.New("the answer holds no access_token")}
	}
	if !bearerToken.MatchString(tok.AccessToken) {
		// A \x01 or a comma would let the endpoint add fields to the SASL
		// message; its words are not repeated (it may be a secret), and it
		// leaves the cache.
		o.mu.Lock()
		if o.cache == src {
			o.cache = oauth2.ReuseTokenSourceWithExpiry(nil, o.base, o.early)
		}
		o.mu.Unlock()
		return nil, &TokenError{Provider: o.provider, URL: o.tokenURL, Err: errors.New("the access_token has characters a bearer token cannot have (RFC 6750)")}
	}
	o.mu.Lock()
	o.current = tok.AccessToken
	o.mu.Unlock()
	return tok, nil
}

// bearerToken is RFC 6750's b64token.
var bearerToken = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

// Refused drops the cached token after a server refused it, so the next
// Token fetches a new one (revoked, or its permissions changed since).
func (o *OAuth2) Refused(tok *oauth2.Token) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if tok != nil && o.current != tok.AccessToken {
		return // another session already replaced it
	}
	o.current = ""
	o.cache = oauth2.ReuseTokenSourceWithExpiry(nil, o.base, o.early)
}

// TokenError is a failure to get an access token, in the token endpoint's
// words (error code and description; never a secret).
type TokenError struct {
	Provider string
	URL      string
	Err      error
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("getting an access token from %s (%s): %s", e.URL, e.Provider, describeTokenError(e.Err))
}

func (e *TokenError) Unwrap() error { return e.Err }

// describeTokenError keeps the provider's error code and description:
// `invalid_grant: Token has been expired or revoked.`
func describeTokenError(err error) string {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return clipRunes(cleanLine(err.Error()), 300)
	}
	code, desc := re.ErrorCode, re.ErrorDescription
	if code == "" {
		// The JWT flow leaves the body unparsed.
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(re.Body, &body) == nil {
			code, desc = body.Error, body.Description
		}
	}
	status := ""
	if re.Response != nil {
		status = re.Response.Status
	}
	switch {
	case code == "":
		return clipRunes(cleanLine("HTTP "+status+": "+string(re.Body)), 300)
	case desc == "":
		return clipRunes(cleanLine(code), 300)
	}
	return clipRunes(cleanLine(code+": "+desc), 300)
}

func microsoftSource(ctx context.Context, cfg OAuth2Config) (string, oauth2.TokenSource, error) {
	if cfg.ClientID == "" {
		return "", nil, errors.New("microsoft: client_id is required")
	}
	tokenURL := cfg.TokenURL
	if tokenURL == "" {
		if cfg.Tenant == "" {
			return "", nil, errors.New("microsoft: tenant is required (the directory id, or the domain)")
		}
		tokenURL = strings.Replace(MicrosoftTokenURL, "{tenant}", url.PathEscape(cfg.Tenant), 1)
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{MicrosoftScope}
	}
	cc := clientcredentials.Config{ClientID: cfg.ClientID, TokenURL: tokenURL, Scopes: scopes, AuthStyle: oauth2.AuthStyleInParams}
	hasCert := len(cfg.CertificatePEM) > 0 || len(cfg.PrivateKeyPEM) > 0
	switch {
	case cfg.ClientSecret != "" && hasCert:
		return "", nil, errors.New("microsoft: give a client secret or a certificate, not both")
	case cfg.ClientSecret != "":
		secret := clientSecret(cfg)
		// A fresh clientcredentials source per call: the cache is ours.
		return tokenURL, tokenFunc(func() (*oauth2.Token, error) {
			c := cc
			c.ClientSecret = secret()
			return c.Token(ctx)
		}), nil
	case hasCert:
		a, err := newCertAssertion(cfg.ClientID, tokenURL, cfg.CertificatePEM, cfg.PrivateKeyPEM)
		if err != nil {
			return "", nil, fmt.Errorf("microsoft: %w", err)
		}
		return tokenURL, tokenFunc(func() (*oauth2.Token, error) {
			jwt, err := a.sign(time.Now())
			if err != nil {
				return nil, err
			}
			c := cc
			c.EndpointParams = url.Values{
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {jwt},
			}
			return c.Token(ctx)
		}), nil
	}
	return "", nil, errors.New("microsoft: give a client secret or a certificate with its private key")
}

func googleSource(ctx context.Context, cfg OAuth2Config) (string, oauth2.TokenSource, error) {
	if len(cfg.ServiceAccountJSON) == 0 {
		return "", nil, errors.New("google: the service account's JSON key is required")
	}
	if cfg.Subject == "" {
		return "", nil, errors.New("google: the subject (the mailbox to act for) is required")
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{GoogleScope}
	}
	jc, err := google.JWTConfigFromJSON(cfg.ServiceAccountJSON, scopes...)
	if err != nil {
		return "", nil, fmt.Errorf("google: the service account key: %w", err)
	}
	if jc.Email == "" || len(jc.PrivateKey) == 0 {
		return "", nil, errors.New("google: the service account key lacks client_email or private_key")
	}
	jc.Subject = cfg.Subject
	if cfg.TokenURL != "" {
		jc.TokenURL = cfg.TokenURL
	}
	if jc.TokenURL == "" {
		jc.TokenURL = GoogleTokenURL
	}
	// jwt.Config.TokenSource caches; its inner source is what we want.
	return jc.TokenURL, tokenFunc(func() (*oauth2.Token, error) { return jc.TokenSource(ctx).Token() }), nil
}

func refreshSource(ctx context.Context, cfg OAuth2Config) (string, oauth2.TokenSource, error) {
	switch {
	case cfg.TokenURL == "":
		return "", nil, errors.New("refresh_token: token_url is required")
	case cfg.ClientID == "":
		return "", nil, errors.New("refresh_token: client_id is required")
	case cfg.RefreshToken == "":
		return "", nil, errors.New("refresh_token: the refresh token is required")
	}
	var mu sync.Mutex
	refresh := cfg.RefreshToken
	secret := clientSecret(cfg)
	return cfg.TokenURL, tokenFunc(func() (*oauth2.Token, error) {
		mu.Lock()
		defer mu.Unlock()
		// oauth2.Config's refresh sends no scope, which Microsoft's v2.0
		// endpoint requires; the client-credentials request with its grant
		// type replaced is the same refresh request with the scope.
		cc := clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: secret(), TokenURL: cfg.TokenURL, Scopes: cfg.Scopes,
			AuthStyle:      oauth2.AuthStyleInParams,
			EndpointParams: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}}
		tok, err := cc.Token(ctx)
		if err != nil {
			return nil, err
		}
		// Providers that rotate refresh tokens (Microsoft) send a new one.
		if tok.RefreshToken != "" {
			refresh = tok.RefreshToken
		}
		return tok, nil
	}), nil
}

// clientSecret returns the client's secret for each token request: read
// again from its file when it came from one, so that a secret rotated
// before the old one expires (Microsoft's last two years at most) is used
// without a restart. While the file cannot be read or is empty (being
// replaced), the secret read last stands.
func clientSecret(cfg OAuth2Config) func() string {
	if cfg.ClientSecretFile == "" {
		return func() string { return cfg.ClientSecret }
	}
	var mu sync.Mutex
	last := cfg.ClientSecret
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		if b, err := os.ReadFile(cfg.ClientSecretFile); err == nil {
			if v := strings.TrimRight(string(b), "\r\n"); strings.TrimSpace(v) != "" {
				last = v
			}
		}
		return last
	}
}

type tokenFunc func() (*oauth2.Token, error)

func (f tokenFunc) Token() (*oauth2.Token, error) { return f() }

// certAssertion signs the JWT with which a Microsoft app proves itself by
// certificate (private_key_jwt): PS256, x5t#S256 and x5t thumbprints of the
// certificate, aud the token URL, iss and sub the client id, valid for ten
// minutes.
type certAssertion struct {
	clientID, aud string
	key           *rsa.PrivateKey
	x5t, x5tS256  string
}

func newCertAssertion(clientID, tokenURL string, certPEM, keyPEM []byte) (*certAssertion, error) {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, errors.New("a certificate needs both the certificate and its private key")
	}
	var certDER []byte
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			certDER = b.Bytes
			break
		}
	}
	if certDER == nil {
		return nil, errors.New("the certificate file holds no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("the certificate: %w", err)
	}
	key, err := parseRSAKey(keyPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("the private key does not belong to the certificate")
	}
	s1 := sha1.Sum(certDER)
	s256 := sha256.Sum256(certDER)
	return &certAssertion{
		clientID: clientID, aud: tokenURL, key: key,
		x5t: base64.RawURLEncoding.EncodeToString(s1[:]), x5tS256: base64.RawURLEncoding.EncodeToString(s256[:]),
	}, nil
}

func parseRSAKey(keyPEM []byte) (*rsa.PrivateKey, error) {
	for rest := keyPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("the private key file holds no PEM private key")
		}
		switch b.Type {
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(b.Bytes)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("the private key: %w", err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, errors.New("the private key is not an RSA key (Microsoft certificates for apps are RSA)")
			}
			return rk, nil
		}
	}
}

func (a *certAssertion) sign(now time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	header, _ := json.Marshal(map[string]string{"alg": "PS256", "typ": "JWT", "x5t#S256": a.x5tS256, "x5t": a.x5t})
	claims, _ := json.Marshal(map[string]any{
		"aud": a.aud, "iss": a.clientID, "sub": a.clientID, "jti": hex.EncodeToString(jti[:]),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPSS(rand.Reader, a.key, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		return "", fmt.Errorf("signing the client assertion: %w", err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
