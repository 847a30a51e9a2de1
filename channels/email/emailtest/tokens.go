package emailtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Scopes the token server knows. A token works for mail only with the
// provider's mail scope; any other valid scope (Graph, a Google API) gets a
// token that mail servers refuse, as the real services do.
const (
	MicrosoftMailScope = "https://outlook.office365.com/.default"
	MicrosoftIMAPScope = "https://outlook.office365.com/IMAP.AccessAsUser.All"
	MicrosoftSMTPScope = "https://outlook.office365.com/SMTP.Send"
	MicrosoftGraph     = "https://graph.microsoft.com/.default"
	GoogleMailScope    = "https://mail.google.com/"
)

// microsoftResources are the resources (application ID URIs) the Microsoft
// endpoint issues tokens for.
var microsoftResources = []string{"https://outlook.office365.com", "https://graph.microsoft.com"}

// TokenServer plays the Microsoft identity platform's and Google's OAuth 2.0
// token endpoints, and a token introspection endpoint (RFC 7662) for
// Dovecot's oauth2 passdb. It refuses what they refuse, with their error
// shapes: Microsoft's {"error", "error_description": "AADSTSnnnn: …",
// "error_codes", "timestamp", "trace_id", "correlation_id"}, Google's
// {"error", "error_description"}.
type TokenServer struct {
	URL string
	srv *httptest.Server

	mu       sync.Mutex
	ttl      time.Duration
	apps     map[string]*msApp // client id → app
	accounts map[string]*serviceAccount
	clients  map[string]string // refresh-token clients: id → secret
	access   map[string]*accessToken
	refresh  map[string]*refreshGrant
	requests int
	failures []string
}

type msApp struct {
	tenant, secret string
	certS256       string // x5t#S256 of the registered certificate
	certSHA1       string
	key            *rsa.PublicKey
	mailboxes      map[string]bool // Exchange mailbox permissions of the app
}

type serviceAccount struct {
	email, keyID string
	key          *rsa.PublicKey
	delegated    map[string]bool // Workspace users domain-wide delegation covers
}

type accessToken struct {
	subject string // the mailbox, or "" for an app token (see mailboxes)
	app     *msApp
	scope   string
	expiry  time.Time
	revoked bool
}

type refreshGrant struct {
	clientID, user, scope string
	revoked               bool
	rotate                bool
}

// StartTokenServer starts the endpoints; they stop when the test ends.
func StartTokenServer(t testing.TB) *TokenServer {
	t.Helper()
	s := &TokenServer{ttl: 3599 * time.Second, apps: map[string]*msApp{}, accounts: map[string]*serviceAccount{},
		clients: map[string]string{}, access: map[string]*accessToken{}, refresh: map[string]*refreshGrant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/{tenant}/oauth2/v2.0/token", s.microsoft)
	mux.HandleFunc("/google/token", s.google)
	mux.HandleFunc("/introspect", s.introspect)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// MicrosoftTokenURL is the tenant's token endpoint.
func (s *TokenServer) MicrosoftTokenURL(tenant string) string {
	return s.URL + "/" + tenant + "/oauth2/v2.0/token"
}

// GoogleTokenURL is Google's token endpoint.
func (s *TokenServer) GoogleTokenURL() string { return s.URL + "/google/token" }

// IntrospectionURL is where a mail server checks a token (POST token=…).
func (s *TokenServer) IntrospectionURL() string { return s.URL + "/introspect" }

// SetTTL sets the lifetime (expires_in) of tokens issued from now on.
func (s *TokenServer) SetTTL(d time.Duration) {
	s.mu.Lock()
	s.ttl = d
	s.mu.Unlock()
}

// Requests is the number of token requests answered (good or bad).
func (s *TokenServer) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Failures are the error descriptions the token endpoints answered with.
func (s *TokenServer) Failures() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.failures...)
}

// MicrosoftApp registers an app with a client secret in a tenant, with
// Exchange permission on the mailboxes (Add-MailboxPermission for its
// service principal).
func (s *TokenServer) MicrosoftApp(tenant, clientID, secret string, mailboxes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[clientID] = &msApp{tenant: tenant, secret: secret, mailboxes: set(mailboxes)}
}

// MicrosoftCertApp registers an app that proves itself with a certificate;
// it returns the certificate and private key as PEM files would hold them.
func (s *TokenServer) MicrosoftCertApp(t testing.TB, tenant, clientID string, mailboxes ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "forgetmenot test app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	s1, s256 := sha1.Sum(der), sha256.Sum256(der)
	s.mu.Lock()
	s.apps[clientID] = &msApp{tenant: tenant, key: &key.PublicKey, mailboxes: set(mailboxes),
		certSHA1: base64.RawURLEncoding.EncodeToString(s1[:]), certS256: base64.RawURLEncoding.EncodeToString(s256[:])}
	s.mu.Unlock()
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return certPEM, keyPEM
}

// GoogleServiceAccount creates a service account whose domain-wide
// delegation covers the users, and returns its JSON key file.
func (s *TokenServer) GoogleServiceAccount(t testing.TB, email string, users ...string) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var id [20]byte
	_, _ = rand.Read(id[:])
	sa := &serviceAccount{email: email, keyID: hex.EncodeToString(id[:]), key: &key.PublicKey, delegated: set(users)}
	s.mu.Lock()
	s.accounts[email] = sa
	s.mu.Unlock()
	b, _ := json.MarshalIndent(map[string]string{
		"type": "service_account", "project_id": "forgetmenot-test", "private_key_id": sa.keyID,
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})),
		"client_email": email, "client_id": "1234567890", "auth_uri": "https://accounts.google.com/o/oauth2/auth",
		"token_uri": s.GoogleTokenURL(),
	}, "", "  ")
	return b
}

// RefreshClient registers an OAuth client for the refresh-token flow.
func (s *TokenServer) RefreshClient(clientID, secret string) {
	s.mu.Lock()
	s.clients[clientID] = secret
	s.mu.Unlock()
}

// IssueRefreshToken hands out a refresh token for user with scope, as the
// consent flow would. rotate: every refresh answers with a new refresh
// token (Microsoft does; Google does not).
func (s *TokenServer) IssueRefreshToken(clientID, user, scope string, rotate bool) string {
	rt := "rt-" + randomHex(24)
	s.mu.Lock()
	s.refresh[rt] = &refreshGrant{clientID: clientID, user: user, scope: scope, rotate: rotate}
	s.mu.Unlock()
	return rt
}

// RevokeRefreshToken revokes a refresh token (the user withdrew consent, a
// password reset): refreshing answers invalid_grant.
func (s *TokenServer) RevokeRefreshToken(rt string) {
	s.mu.Lock()
	if g := s.refresh[rt]; g != nil {
		g.revoked = true
	}
	s.mu.Unlock()
}

// RevokeAllRefreshTokens revokes every refresh token of user.
func (s *TokenServer) RevokeAllRefreshTokens(user string) {
	s.mu.Lock()
	for _, g := range s.refresh {
		if g.user == user {
			g.revoked = true
		}
	}
	s.mu.Unlock()
}

// RevokeAccessTokens makes every access token issued so far invalid at the
// mail server (a permission change, a revoked session), while the token
// endpoint still issues new ones.
func (s *TokenServer) RevokeAccessTokens() {
	s.mu.Lock()
	for _, a := range s.access {
		a.revoked = true
	}
	s.mu.Unlock()
}

// SetMailboxes replaces the mailboxes a Microsoft app may open.
func (s *TokenServer) SetMailboxes(clientID string, mailboxes ...string) {
	s.mu.Lock()
	if a := s.apps[clientID]; a != nil {
		a.mailboxes = set(mailboxes)
	}
	s.mu.Unlock()
}

// Delegate replaces the users a service account's delegation covers.
func (s *TokenServer) Delegate(email string, users ...string) {
	s.mu.Lock()
	if a := s.accounts[email]; a != nil {
		a.delegated = set(users)
	}
	s.mu.Unlock()
}

// Bearer checks a token as a mail server would for user and mailScope: nil
// when it may open that mailbox. It is what the SMTP server in this package
// asks; Dovecot asks the introspection endpoint, which gives the same
// answer.
func (s *TokenServer) Bearer(user, token, mailScope string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.access[token]
	switch {
	case a == nil:
		return fmt.Errorf("unknown token")
	case a.revoked:
		return fmt.Errorf("token revoked")
	case time.Now().After(a.expiry):
		return fmt.Errorf("token expired")
	case !hasScope(a.scope, mailScope):
		return fmt.Errorf("token scope %q lacks %q", a.scope, mailScope)
	}
	subject := a.subject
	if a.app != nil {
		if !a.app.mailboxes[strings.ToLower(user)] {
			return fmt.Errorf("the app has no permission on mailbox %s", user)
		}
		subject = user
	}
	if !strings.EqualFold(subject, user) {
		return fmt.Errorf("token is for %s, not %s", subject, user)
	}
	return nil
}

// introspect answers RFC 7662 introspection. An app-only token does not
// name a mailbox, and Dovecot's introspection sends only the token, so the
// app's mailbox is reported as its subject when it may open exactly one;
// otherwise such a token is inactive here (tests grant one mailbox).
func (s *TokenServer) introspect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		http.Error(w, "POST token=… expected", http.StatusBadRequest)
		return
	}
	tok := r.PostForm.Get("token")
	s.mu.Lock()
	a := s.access[tok]
	resp := map[string]any{"active": false}
	if a != nil && !a.revoked && time.Now().Before(a.expiry) {
		subject := a.subject
		if a.app != nil {
			subject = ""
			if len(a.app.mailboxes) == 1 {
				for m := range a.app.mailboxes {
					subject = m
				}
			}
		}
		if subject != "" {
			resp = map[string]any{"active": true, "email": subject, "scope": a.scope, "exp": a.expiry.Unix(), "token_type": "Bearer"}
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// --- Microsoft ------------------------------------------------------------

func (s *TokenServer) microsoft(w http.ResponseWriter, r *http.Request) {
	s.count()
	fail := func(status int, code string, aadsts int, desc string) {
		s.msError(w, status, code, aadsts, desc)
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests. Received a GET request.")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") || r.ParseForm() != nil {
		fail(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	f := r.PostForm
	tenant := r.PathValue("tenant")
	clientID := f.Get("client_id")
	secret := f.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok { // client_secret_basic is accepted too
		clientID, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
	}
	switch f.Get("grant_type") {
	case "client_credentials":
	case "refresh_token":
		s.msRefresh(w, f, clientID, secret)
		return
	case "":
		fail(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	default:
		fail(http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+f.Get("grant_type")+"'.")
		return
	}
	if clientID == "" {
		fail(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
		return
	}
	s.mu.Lock()
	app := s.apps[clientID]
	s.mu.Unlock()
	if app == nil || app.tenant != tenant {
		fail(http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", clientID, tenant))
		return
	}
	scope := f.Get("scope")
	if scope == "" {
		fail(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
		return
	}
	if !strings.HasSuffix(scope, "/.default") || strings.Contains(scope, " ") {
		fail(http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope))
		return
	}
	if resource := strings.TrimSuffix(scope, "/.default"); !contains(microsoftResources, resource) {
		fail(http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", resource, tenant))
		return
	}
	assertion, assertionType := f.Get("client_assertion"), f.Get("client_assertion_type")
	switch {
	case secret != "" && assertion != "":
		fail(http.StatusBadRequest, "invalid_request", 9002313, "Invalid request. Request is malformed or invalid: both client_secret and client_assertion were sent.")
		return
	case secret == "" && assertion == "":
		fail(http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	case secret != "":
		if app.secret == "" || secret != app.secret {
			fail(http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+clientID+"'.")
			return
		}
	default:
		if assertionType != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			fail(http.StatusBadRequest, "invalid_request", 50027, "Invalid client_assertion_type: "+assertionType)
			return
		}
		if code, desc := s.checkAssertion(app, clientID, s.MicrosoftTokenURL(tenant), assertion); code != 0 {
			fail(http.StatusUnauthorized, "invalid_client", code, desc)
			return
		}
	}
	tok := s.mint(&accessToken{app: app, scope: scope})
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": int(s.ttlNow().Seconds()), "ext_expires_in": int(s.ttlNow().Seconds()), "access_token": tok})
}

// checkAssertion verifies a certificate client assertion as the Microsoft
// identity platform does: a registered certificate's thumbprint, RS256 or
// PS256 signature, aud the token endpoint, iss and sub the client id, a
// jti, and a time window that includes now.
func (s *TokenServer) checkAssertion(app *msApp, clientID, aud, jwt string) (int, string) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return 50027, "JWT token is invalid or malformed."
	}
	var header struct {
		Alg  string `json:"alg"`
		Typ  string `json:"typ"`
		X5t  string `json:"x5t"`
		X5tS string `json:"x5t#S256"`
	}
	var claims struct {
		Aud string `json:"aud"`
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Jti string `json:"jti"`
		Nbf int64  `json:"nbf"`
		Exp int64  `json:"exp"`
	}
	if decodeSegment(parts[0], &header) != nil || decodeSegment(parts[1], &claims) != nil {
		return 50027, "JWT token is invalid or malformed."
	}
	if app.key == nil || (header.X5tS != app.certS256 && header.X5t != app.certSHA1) {
		return 700027, "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found.]"
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return 50027, "JWT token is invalid or malformed."
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch header.Alg {
	case "PS256":
		err = rsa.VerifyPSS(app.key, crypto.SHA256, sum[:], sig, nil)
	case "RS256":
		err = rsa.VerifyPKCS1v15(app.key, crypto.SHA256, sum[:], sig)
	default:
		err = fmt.Errorf("alg %q", header.Alg)
	}
	if err != nil {
		return 700027, "Client assertion failed signature validation."
	}
	now := time.Now().Unix()
	switch {
	case claims.Aud != aud:
		return 700212, "No matching federated identity record found for presented assertion audience '" + claims.Aud + "'."
	case claims.Iss != clientID || claims.Sub != clientID:
		return 700021, "Client assertion application identifier doesn't match 'client_id' parameter."
	case claims.Jti == "":
		return 50027, "JWT token is invalid or malformed: jti is missing."
	case claims.Exp == 0 || claims.Exp < now || claims.Nbf > now+300:
		return 700024, "Client assertion is not within its valid time range."
	}
	return 0, ""
}

func (s *TokenServer) msRefresh(w http.ResponseWriter, f url.Values, clientID, secret string) {
	rt := f.Get("refresh_token")
	s.mu.Lock()
	g := s.refresh[rt]
	wantSecret, known := s.clients[clientID]
	s.mu.Unlock()
	switch {
	case rt == "":
		s.msError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'refresh_token'.")
	case f.Get("scope") == "": // required on the v2.0 endpoint (MSAL always sends it)
		s.msError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
	case !known:
		s.msError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory.", clientID))
	case known && wantSecret != "" && secret != wantSecret:
		s.msError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
	case g == nil || g.clientID != clientID:
		s.msError(w, http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
	case g.revoked:
		s.msError(w, http.StatusBadRequest, "invalid_grant", 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.")
	default:
		req := f.Get("scope")
		if !allScopes(g.scope+" offline_access openid profile", req) {
			s.msError(w, http.StatusBadRequest, "invalid_grant", 65001, "The user or administrator has not consented to use the application with ID '"+clientID+"'. Send an interactive authorization request for this user and resource.")
			return
		}
		scope := strings.Join(withoutOIDC(req), " ")
		tok := s.mint(&accessToken{subject: g.user, scope: scope})
		resp := map[string]any{"token_type": "Bearer", "scope": scope, "expires_in": int(s.ttlNow().Seconds()), "ext_expires_in": int(s.ttlNow().Seconds()), "access_token": tok}
		if g.rotate {
			resp["refresh_token"] = s.IssueRefreshToken(clientID, g.user, g.scope, true)
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

func (s *TokenServer) msError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	trace := newUUID()
	full := fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", aadsts, desc, trace, newUUID(), time.Now().UTC().Format("2006-01-02 15:04:05Z"))
	s.failed(full)
	writeJSON(w, status, map[string]any{
		"error": code, "error_description": full, "error_codes": []int{aadsts},
		"timestamp": time.Now().UTC().Format("2006-01-02 15:04:05Z"), "trace_id": trace, "correlation_id": newUUID(),
		"error_uri": "https://login.microsoftonline.com/error?code=" + fmt.Sprint(aadsts),
	})
}

// --- Google ---------------------------------------------------------------

func (s *TokenServer) google(w http.ResponseWriter, r *http.Request) {
	s.count()
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		s.googleError(w, http.StatusBadRequest, "invalid_request", "Invalid request method or body.")
		return
	}
	f := r.PostForm
	switch f.Get("grant_type") {
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		s.googleJWT(w, f.Get("assertion"))
	case "refresh_token":
		s.googleRefresh(w, f)
	case "":
		s.googleError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: ")
	default:
		s.googleError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+f.Get("grant_type"))
	}
}

// googleJWT checks a service account's assertion as Google does: RS256
// signed by the account's key, aud the token endpoint, a lifetime of at most
// an hour that includes now, a scope, and for sub a user the account's
// domain-wide delegation covers for that scope.
func (s *TokenServer) googleJWT(w http.ResponseWriter, jwt string) {
	parts := strings.Split(jwt, ".")
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var claims struct {
		Iss   string `json:"iss"`
		Scope string `json:"scope"`
		Aud   string `json:"aud"`
		Sub   string `json:"sub"`
		Iat   int64  `json:"iat"`
		Exp   int64  `json:"exp"`
	}
	if len(parts) != 3 || decodeSegment(parts[0], &header) != nil || decodeSegment(parts[1], &claims) != nil {
		s.googleError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: Failed to parse the assertion.")
		return
	}
	s.mu.Lock()
	sa := s.accounts[claims.Iss]
	s.mu.Unlock()
	if sa == nil {
		s.googleError(w, http.StatusBadRequest, "invalid_grant", "Invalid grant: account not found")
		return
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if header.Alg != "RS256" || rsa.VerifyPKCS1v15(sa.key, crypto.SHA256, sum[:], sig) != nil {
		s.googleError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT Signature.")
		return
	}
	now := time.Now().Unix()
	switch {
	case claims.Aud != s.GoogleTokenURL():
		s.googleError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: Failed audience check. The expected value was "+s.GoogleTokenURL()+".")
		return
	case claims.Exp-claims.Iat > 3600 || claims.Exp < now || claims.Iat > now+300:
		s.googleError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
		return
	case claims.Scope == "":
		s.googleError(w, http.StatusBadRequest, "invalid_scope", "Invalid oauth scope or ID token audience provided.")
		return
	}
	subject := claims.Sub
	if subject != "" {
		s.mu.Lock()
		ok := sa.delegated[strings.ToLower(subject)]
		s.mu.Unlock()
		if !ok {
			// Delegation missing for this user or this scope.
			s.googleError(w, http.StatusUnauthorized, "unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.")
			return
		}
	}
	tok := s.mint(&accessToken{subject: subject, scope: claims.Scope})
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": int(s.ttlNow().Seconds()), "token_type": "Bearer"})
}

func (s *TokenServer) googleRefresh(w http.ResponseWriter, f url.Values) {
	clientID, secret, rt := f.Get("client_id"), f.Get("client_secret"), f.Get("refresh_token")
	s.mu.Lock()
	want, known := s.clients[clientID]
	g := s.refresh[rt]
	s.mu.Unlock()
	switch {
	case !known || secret != want:
		s.googleError(w, http.StatusUnauthorized, "invalid_client", "Unauthorized")
	case g == nil || g.clientID != clientID || g.revoked:
		s.googleError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
	default:
		scope := g.scope
		if req := f.Get("scope"); req != "" {
			if !allScopes(g.scope, req) {
				s.googleError(w, http.StatusBadRequest, "invalid_scope", "Some requested scopes were invalid. {invalid=["+req+"]}")
				return
			}
			scope = req
		}
		tok := s.mint(&accessToken{subject: g.user, scope: scope})
		writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": int(s.ttlNow().Seconds()), "scope": scope, "token_type": "Bearer"})
	}
}

func (s *TokenServer) googleError(w http.ResponseWriter, status int, code, desc string) {
	s.failed(desc)
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// --- helpers --------------------------------------------------------------

func (s *TokenServer) mint(a *accessToken) string {
	tok := "at-" + randomHex(32)
	s.mu.Lock()
	a.expiry = time.Now().Add(s.ttl)
	s.access[tok] = a
	s.mu.Unlock()
	return tok
}

func (s *TokenServer) ttlNow() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ttl
}

func (s *TokenServer) count() {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
}

func (s *TokenServer) failed(desc string) {
	s.mu.Lock()
	s.failures = append(s.failures, desc)
	s.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func hasScope(granted, want string) bool {
	for _, s := range strings.Fields(granted) {
		if s == want {
			return true
		}
	}
	return false
}

// allScopes: every scope of req (OpenID ones aside) is among granted.
func allScopes(granted, req string) bool {
	for _, s := range withoutOIDC(req) {
		if !hasScope(granted, s) {
			return false
		}
	}
	return true
}

func withoutOIDC(scopes string) []string {
	var out []string
	for _, s := range strings.Fields(scopes) {
		if !contains([]string{"offline_access", "openid", "profile", "email"}, s) {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func set(items []string) map[string]bool {
	m := map[string]bool{}
	for _, i := range items {
		m[strings.ToLower(i)] = true
	}
	return m
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Issued returns every access and refresh token handed out so far (for
// tests that check no secret reaches a log).
func (s *TokenServer) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for t := range s.access {
		out = append(out, t)
	}
	for t := range s.refresh {
		out = append(out, t)
	}
	return out
}
