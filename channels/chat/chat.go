// Package chat is the web chat channel: an embeddable widget (one script tag)
// talks over a WebSocket to the daemon. A chat session, identified by a random
// token the browser keeps in localStorage, is one complaint thread; a
// returning visitor sees its history, and staff replies appear live in every
// open window of the session, on whichever replica it is connected.
//
// The token is the visitor's secret: only its SHA-256 digest (the session id)
// is stored, logged or shown to staff.
package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/texts"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/prometheus/client_golang/prometheus"
)

// MetaSession is the message metadata naming the chat session.
const MetaSession = "chat_session"

// Enqueuer stores an inbound message durably, once per (channel, source id).
type Enqueuer interface {
	Enqueue(ctx context.Context, msg router.Message) (id string, duplicate bool, err error)
}

// State is the shared store: presence, rate limits and live fan-out across
// replicas.
type State interface {
	Get(ctx context.Context, k string) (string, bool, error)
	Set(ctx context.Context, k, value string, ttl time.Duration) error
	Delete(ctx context.Context, k string) error
	CountWithin(ctx context.Context, k string, window time.Duration) (int64, error)
	Publish(ctx context.Context, topic, msg string) error
	// Subscribe calls resubscribed when the subscription was lost and
	// re-established: what was published meanwhile did not arrive.
	Subscribe(ctx context.Context, topic string, resubscribed func()) <-chan string
}

// Conversation is one complaint of a session with its timeline.
type Conversation struct {
	Complaint router.Complaint
	Timeline  []router.Entry
}

// History finds the complaints a thread key led to, oldest first.
type History interface {
	Conversations(ctx context.Context, threadKey string) ([]Conversation, error)
}

// Receipts records that the visitor saw a staff line (router.RecordSeen).
type Receipts interface {
	RecordSeen(ctx context.Context, complaintID, ref string, via router.Channel) error
}

// Config configures the chat server.
type Config struct {
	Queue   Enqueuer
	State   State
	History History
	// Receipts records seen receipts; nil ignores them.
	Receipts Receipts
	// Texts word everything the visitor reads (internal/texts; the shipped
	// configs/chat-templates). Required.
	Texts *texts.Set
	// Expect tells the greeting what a visitor can expect now (answer time,
	// or when the team is back); nil: the greeting alone.
	Expect func() router.Expectation
	// OwnerName gives an owner's display name.
	OwnerName func(id string) string
	// AllowedOrigins are the pages allowed to open the WebSocket: origins
	// (https://shop.example.com, normalised: a trailing slash and a default
	// port are ignored, a path is refused) or host patterns (*.example.com).
	// The daemon's own host is always allowed.
	AllowedOrigins  []string
	MaxMessageBytes int
	// RatePerMinute limits messages per session; IPRatePerMinute per client IP.
	RatePerMinute   int
	IPRatePerMinute int
	// MaxConnections and MaxConnectionsPerIP cap this replica's open
	// sockets; SessionsPerIPPerMinute caps new sessions per client IP.
	MaxConnections         int
	MaxConnectionsPerIP    int
	SessionsPerIPPerMinute int
	// HelloTimeout closes a socket that does not say hello in time;
	// IdleTimeout one that sends nothing (the widget pings) for this long.
	HelloTimeout time.Duration
	IdleTimeout  time.Duration
	// UnseenAfter: a reply delivered live but not seen this long is
	// e-mailed (when an address is known); 0: never.
	UnseenAfter time.Duration
	// PresenceTTL is how long a session counts as connected after its last
	// sign of life; 0 means 45s.
	PresenceTTL time.Duration
	// Metrics registers the chat's collectors; nil: not exported.
	Metrics prometheus.Registerer
	Logger  *slog.Logger
}

// Defaults of the socket limits.
const (
	DefaultMaxConnections         = 10000
	DefaultMaxConnectionsPerIP    = 20
	DefaultSessionsPerIPPerMinute = 10
	DefaultHelloTimeout           = 10 * time.Second
	DefaultIdleTimeout            = 10 * time.Minute
)

// Server serves the widget, the demo page and the WebSocket.
type Server struct {
	cfg      Config
	log      *slog.Logger
	hub      *hub
	origins  origins
	limits   *limiter
	metrics  *socketMetrics
	refused  *onceEvery
	widgetJS []byte
}

// New checks the configuration and builds the chat server; call Run to
// receive live replies.
func New(cfg Config) (*Server, error) {
	if cfg.Texts == nil {
		return nil, errors.New("chat: texts are required")
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 4000
	}
	if cfg.RatePerMinute <= 0 {
		cfg.RatePerMinute = 20
	}
	if cfg.IPRatePerMinute <= 0 {
		cfg.IPRatePerMinute = 60
	}
	cfg.MaxConnections = orDefault(cfg.MaxConnections, DefaultMaxConnections)
	cfg.MaxConnectionsPerIP = orDefault(cfg.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP)
	cfg.SessionsPerIPPerMinute = orDefault(cfg.SessionsPerIPPerMinute, DefaultSessionsPerIPPerMinute)
	cfg.HelloTimeout = orDefault(cfg.HelloTimeout, DefaultHelloTimeout)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	if cfg.PresenceTTL <= 0 {
		cfg.PresenceTTL = 45 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OwnerName == nil {
		cfg.OwnerName = func(id string) string { return id }
	}
	o, err := parseOrigins(cfg.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, origins: o, refused: newOnceEvery(time.Minute, 1000)}
	s.limits = &limiter{maxTotal: cfg.MaxConnections, maxPerIP: cfg.MaxConnectionsPerIP, perIP: map[string]int{}}
	s.metrics = newSocketMetrics(cfg.Metrics)
	s.hub = newHub(cfg.State, cfg.PresenceTTL, cfg.Logger, s.deliver)
	if s.widgetJS, err = s.buildWidget(); err != nil {
		return nil, err
	}
	return s, nil
}

func orDefault[T int | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// Routes are the HTTP routes to mount.
func (s *Server) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /chat/widget.js": http.HandlerFunc(s.widget),
		"GET /chat/demo":      http.HandlerFunc(s.demo),
		"GET /chat/status":    http.HandlerFunc(s.status),
		"GET /chat/ws":        http.HandlerFunc(s.socket),
	}
}

// Run receives live lines for this replica's sockets and keeps their
// presence fresh until ctx ends, then closes every socket.
func (s *Server) Run(ctx context.Context) error { return s.hub.run(ctx) }

// Ready is closed once Run receives live lines (for tests and embedding).
func (s *Server) Ready() <-chan struct{} { return s.hub.ready }

//go:embed static
var static embed.FS

// buildWidget puts the widget's texts in every language, and the message
// limit, into the script, so it speaks the page's language from the first
// paint (before any socket).
func (s *Server) buildWidget() ([]byte, error) {
	src, err := static.ReadFile("static/widget.js")
	if err != nil {
		return nil, err
	}
	labels := map[string]map[string]string{}
	for _, lang := range s.cfg.Texts.Languages() {
		labels[lang] = map[string]string{}
		for _, name := range s.cfg.Texts.Names(lang) {
			key, ok := strings.CutPrefix(name, "widget.")
			if !ok && strings.HasPrefix(name, "error.") {
				key, ok = name, true
			}
			if !ok {
				continue
			}
			text, err := s.cfg.Texts.Render(name, lang, TextData{Max: s.cfg.MaxMessageBytes})
			if err != nil {
				return nil, fmt.Errorf("chat text %s (%s): %w", name, lang, err)
			}
			labels[lang][key] = text
		}
	}
	// json.Marshal escapes <, > and &, so no text can end the script.
	raw, err := json.Marshal(labels)
	if err != nil {
		return nil, err
	}
	out := bytes.Replace(src, []byte("/*TEXTS*/{}"), raw, 1)
	out = bytes.Replace(out, []byte("/*MAX_BYTES*/4000"), []byte(strconv.Itoa(s.cfg.MaxMessageBytes)), 1)
	if bytes.Equal(out, src) {
		return nil, errors.New("chat: the widget script lost its /*TEXTS*/ placeholder")
	}
	return out, nil
}

func (s *Server) widget(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(s.widgetJS)
}

func (s *Server) demo(w http.ResponseWriter, r *http.Request) {
	b, _ := static.ReadFile("static/demo.html")
	// ?lang=nl shows the demo as a page in that language would.
	if l := texts.Primary(r.URL.Query().Get("lang")); l != "" && s.cfg.Texts.Lang(l) == l {
		b = bytes.Replace(b, []byte(`<html lang="en">`), []byte(`<html lang="`+l+`">`), 1)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

// Frames. The browser sends hello once, then messages, pings and seen
// receipts; the server answers welcome (with the history and the greeting),
// ack per message, line for live lines, and error frames that say what went
// wrong.
type inFrame struct {
	Type  string `json:"type"`
	Token string `json:"token,omitempty"`
	// Lang and Zone come with hello: the page's language and the browser's
	// IANA time zone, for the texts and the times in them.
	Lang  string   `json:"lang,omitempty"`
	Zone  string   `json:"zone,omitempty"`
	ID    string   `json:"id,omitempty"`
	Text  string   `json:"text,omitempty"`
	Name  string   `json:"name,omitempty"`
	Email string   `json:"email,omitempty"`
	IDs   []string `json:"ids,omitempty"` // seen: the staff lines on screen
}

// Line is one line of the conversation as the widget shows it.
type Line struct {
	// ID lets the widget show a line once, whether it came live or in history.
	ID string `json:"id"`
	// From is "visitor", "staff" or "system".
	From   string    `json:"from"`
	Text   string    `json:"text"`
	Author string    `json:"author,omitempty"`
	At     time.Time `json:"at"`
}

type outFrame struct {
	Type      string `json:"type"`
	Token     string `json:"token,omitempty"`
	Lang      string `json:"lang,omitempty"`
	Greeting  string `json:"greeting,omitempty"`
	Expect    string `json:"expect,omitempty"`
	History   []Line `json:"history,omitempty"`
	ID        string `json:"id,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Line      *Line  `json:"line,omitempty"`
	Code      string `json:"code,omitempty"`
	Error     string `json:"error,omitempty"`
}

var (
	tokenPattern    = regexp.MustCompile(`^[A-Za-z0-9_-]{32,64}$`)
	clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// SessionID is the stored identity of a token: its digest, so that nothing
// kept or shown to staff lets anyone read the visitor's chat.
func SessionID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:16])
}

// ThreadKey is the thread key of a chat session.
func ThreadKey(session string) string { return "chat:" + session }

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
