package emailtest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// StartOAuthSMTP starts an SMTP server that signs in only by XOAUTH2 and
// OAUTHBEARER, checking each token with tokens.Bearer for mailScope, and
// answering as Microsoft 365 and Gmail do: a refused token gets the JSON
// error as a 334 challenge, the client must answer it (empty line for
// XOAUTH2, 0x01 for OAUTHBEARER), and then 535 5.7.8 ends the exchange.
func StartOAuthSMTP(t testing.TB, tokens *TokenServer, mailScope string) *SMTP {
	t.Helper()
	s := &SMTP{users: map[string]string{}} // non-nil: MAIL needs a sign-in
	s.serve(t, func() smtp.Session { return &oauthSession{session: &session{s: s}, tokens: tokens, scope: mailScope} })
	return s
}

type oauthSession struct {
	*session
	tokens *TokenServer
	scope  string
}

func (x *oauthSession) AuthMechanisms() []string { return []string{"XOAUTH2", sasl.OAuthBearer} }

var errAuthRefused = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Username and Password not accepted"}

func (x *oauthSession) refusal() []byte {
	b, _ := json.Marshal(map[string]string{"status": "401", "schemes": "Bearer", "scope": x.scope})
	return b
}

func (x *oauthSession) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case "XOAUTH2":
		return &xoauth2Server{x: x}, nil
	case sasl.OAuthBearer:
		inner := sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if err := x.tokens.Bearer(o.Username, o.Token, x.scope); err != nil {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer", Scope: x.scope}
			}
			x.session.auth = o.Username
			return nil
		})
		return bearerServer{inner}, nil
	}
	return nil, &smtp.SMTPError{Code: 504, EnhancedCode: smtp.EnhancedCode{5, 5, 4}, Message: "Unrecognized authentication type"}
}

// bearerServer turns go-sasl's failures into the 535 a real server sends.
type bearerServer struct{ sasl.Server }

func (b bearerServer) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := b.Server.Next(resp)
	if err != nil {
		return nil, true, errAuthRefused
	}
	return ch, done, nil
}

// xoauth2Server is the server side of XOAUTH2 (Google's and Microsoft's
// documented exchange).
type xoauth2Server struct {
	x       *oauthSession
	refused bool
}

func (s *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if s.refused {
		if len(resp) != 0 {
			return nil, true, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Syntax error: expected an empty response after the error"}
		}
		return nil, true, errAuthRefused
	}
	if resp == nil {
		return []byte{}, false, nil // ask for the initial response
	}
	// user=<address>\x01auth=Bearer <token>\x01\x01
	if !bytes.HasSuffix(resp, []byte("\x01\x01")) {
		return nil, true, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Syntax error: malformed XOAUTH2 response"}
	}
	parts := bytes.Split(bytes.TrimSuffix(resp, []byte("\x01\x01")), []byte("\x01"))
	var user, token string
	for _, p := range parts {
		switch {
		case bytes.HasPrefix(p, []byte("user=")):
			user = string(p[len("user="):])
		case bytes.HasPrefix(p, []byte("auth=Bearer ")):
			token = string(p[len("auth=Bearer "):])
		default:
			return nil, true, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Syntax error: unknown XOAUTH2 field"}
		}
	}
	if user == "" || token == "" {
		return nil, true, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Syntax error: user and auth are required"}
	}
	if err := s.x.tokens.Bearer(user, token, s.x.scope); err != nil {
		s.refused = true
		return s.x.refusal(), false, nil
	}
	s.x.session.auth = user
	return nil, true, nil
}
