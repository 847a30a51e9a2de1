// Package emailtest runs real mail servers on loopback for tests: go-imap's
// in-memory IMAP server and a go-smtp server that keeps what it receives.
package emailtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// IMAP is an in-memory IMAP server with one user and an INBOX.
type IMAP struct {
	Addr     string
	Host     string
	Port     int
	Username string
	Password string
	User     *imapmemserver.User
}

// StartIMAP starts the server; it stops when the test ends. caps nil means
// IMAP4rev2 (with IDLE).
func StartIMAP(t testing.TB, caps imap.CapSet) *IMAP {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("support", "hunter2")
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	if caps == nil {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps: caps, InsecureAuth: true, Logger: quiet{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	host, port := splitAddr(ln.Addr().String())
	return &IMAP{Addr: ln.Addr().String(), Host: host, Port: port, Username: "support", Password: "hunter2", User: user}
}

// Deliver puts a mail in the folder, as an MTA would.
func (s *IMAP) Deliver(t testing.TB, folder string, raw []byte, flags ...imap.Flag) {
	t.Helper()
	if _, err := s.User.Append(folder, bytes.NewReader(raw), &imap.AppendOptions{Flags: flags}); err != nil {
		t.Fatal(err)
	}
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
func (quiet) Println(...any)        {}

// Received is one mail the SMTP server accepted.
type Received struct {
	From string
	To   []string
	Data []byte
	// Auth is the user that logged in, if any.
	Auth string
}

// SMTP is a mail server that keeps what it receives.
type SMTP struct {
	Addr string
	Host string
	Port int

	mu       sync.Mutex
	received []Received
	// Reject, when set, answers RCPT TO for an address with this error.
	reject func(to string) error
	users  map[string]string
}

// StartSMTP starts the server; it stops when the test ends. users (name →
// password) enables AUTH PLAIN.
func StartSMTP(t testing.TB, users map[string]string) *SMTP {
	t.Helper()
	s := &SMTP{users: users}
	s.serve(t, func() smtp.Session { return &session{s: s} })
	return s
}

// serve runs go-smtp's server on loopback with sessions from newSession.
func (s *SMTP) serve(t testing.TB, newSession func() smtp.Session) {
	t.Helper()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return newSession(), nil }))
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = true
	srv.ErrorLog = quiet{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.Addr = ln.Addr().String()
	s.Host, s.Port = splitAddr(s.Addr)
}

// RejectWith makes RCPT TO fail for addresses f returns an error for.
func (s *SMTP) RejectWith(f func(to string) error) {
	s.mu.Lock()
	s.reject = f
	s.mu.Unlock()
}

// Received returns the accepted mail so far.
func (s *SMTP) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// To returns the accepted mail for one recipient.
func (s *SMTP) To(addr string) []Received {
	var out []Received
	for _, r := range s.Received() {
		for _, to := range r.To {
			if strings.EqualFold(to, addr) {
				out = append(out, r)
			}
		}
	}
	return out
}

type session struct {
	s    *SMTP
	cur  Received
	auth string
}

func (x *session) AuthMechanisms() []string {
	if x.s.users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if p, ok := x.s.users[username]; !ok || p != password {
			return errors.New("invalid credentials")
		}
		x.auth = username
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.users != nil && x.auth == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	x.cur = Received{From: from, Auth: x.auth}
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	reject := x.s.reject
	x.s.mu.Unlock()
	if reject != nil {
		if err := reject(to); err != nil {
			return err
		}
	}
	x.cur.To = append(x.cur.To, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.cur.Data = b
	x.s.mu.Lock()
	x.s.received = append(x.s.received, x.cur)
	x.s.mu.Unlock()
	return nil
}

func (x *session) Reset()        { x.cur = Received{} }
func (x *session) Logout() error { return nil }

func splitAddr(addr string) (string, int) {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return host, n
}

// IdleSignal is a log handler that signals on its channel each time a
// mailbox goes into IDLE (the ingester logs "idling"), so a test or benchmark
// delivers new mail only once the mailbox is listening.
type IdleSignal chan struct{}

func (h IdleSignal) Enabled(context.Context, slog.Level) bool { return true }

func (h IdleSignal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "idling" {
		select {
		case h <- struct{}{}:
		default:
		}
	}
	return nil
}

func (h IdleSignal) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h IdleSignal) WithGroup(string) slog.Handler      { return h }
