package email

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// SASL mechanisms for OAuth 2.0 sign-in.
const (
	// MechXOAUTH2 is Google's and Microsoft's mechanism (Microsoft 365
	// accepts only this one).
	MechXOAUTH2 = "XOAUTH2"
	// MechOAUTHBEARER is the standard one (RFC 7628).
	MechOAUTHBEARER = "OAUTHBEARER"
)

// bearerClient signs in with an access token by XOAUTH2 or OAUTHBEARER.
//
// On a refused token both mechanisms have the server send a JSON error as a
// challenge and wait for the client to end the exchange (XOAUTH2: an empty
// response; OAUTHBEARER: a single 0x01, RFC 7628 §3.2.3) before it answers
// NO / 535. go-sasl's OAUTHBEARER client returns an error at that point
// instead, which makes go-imap and go-smtp abandon the exchange half-way, so
// this client answers as the RFC asks and keeps the JSON for the error.
type bearerClient struct {
	mech  string
	start []byte
	// dummy answers the error challenge. XOAUTH2 asks for an empty
	// response, but go-imap (v2.0.0-beta.8) writes an empty response as
	// "=", which Dovecot rejects as invalid base64 and drops the
	// connection; over IMAP a single 0x01 (OAUTHBEARER's dummy response)
	// is sent instead, which servers answer with NO.
	dummy []byte
	// failure is the provider's JSON error, when the server sent one.
	failure []byte
}

func newBearerClient(mech, username, token, host string, port int) *bearerClient {
	c := &bearerClient{mech: mech, dummy: []byte{}}
	switch mech {
	case MechOAUTHBEARER:
		// go-sasl writes the GS2 header; the authzid needs RFC 5801 escaping.
		_, ir, _ := sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
			Username: gs2Escape(username), Token: token, Host: host, Port: port,
		}).Start()
		c.start = ir
		c.dummy = []byte{0x01}
	default:
		c.mech = MechXOAUTH2
		c.start = []byte("user=" + username + "\x01auth=Bearer " + token + "\x01\x01")
	}
	return c
}

func (c *bearerClient) Start() (string, []byte, error) { return c.mech, c.start, nil }

func (c *bearerClient) Next(challenge []byte) ([]byte, error) {
	if c.failure != nil {
		// A second challenge: no mechanism here has one. End the exchange.
		return nil, fmt.Errorf("%s: unexpected second challenge from the server", c.mech)
	}
	c.failure = append([]byte{}, challenge...)
	return c.dummy, nil
}

// refusedByChallenge: the server sent its error challenge, so whatever
// ended the exchange (NO, BAD), the token was refused.
func (c *bearerClient) refusedByChallenge() bool { return c.failure != nil }

// providerError is the server's JSON error in a few words, like
// `status 401, scope "https://mail.google.com/"`, or "" when it sent none.
func (c *bearerClient) providerError() string {
	if len(c.failure) == 0 {
		return ""
	}
	var e struct {
		Status  string `json:"status"`
		Schemes string `json:"schemes"`
		Scope   string `json:"scope"`
	}
	if json.Unmarshal(c.failure, &e) != nil || e.Status == "" {
		return clipRunes(cleanLine(string(c.failure)), 200)
	}
	s := "status " + e.Status
	if e.Scope != "" {
		s += fmt.Sprintf(", scope %q", e.Scope)
	}
	return clipRunes(cleanLine(s), 200)
}

// gs2Escape escapes a GS2 authzid (RFC 5801 §5.1).
func gs2Escape(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}
