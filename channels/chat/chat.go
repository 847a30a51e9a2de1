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
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/forgetmenot/forgetmenot/internal/mailaddr"
	"github.com/forgetmenot/forgetmenot/router"
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
	Subscribe(ctx context.Context, topic string) <-chan string
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

// Config configures the chat server.
type Config struct {
	Queue   Enqueuer
	State   State
	History History
	// OwnerName gives an owner's display name.
	OwnerName func(id string) string
	// AllowedOrigins are the pages allowed to open the WebSocket: origins
	// (https://shop.example.com) or host patterns (*.example.com). Empty: the
	// daemon's own host only.
	AllowedOrigins  []string
	MaxMessageBytes int
	// RatePerMinute limits messages per session; IPRatePerMinute per client IP.
	RatePerMinute   int
	IPRatePerMinute int
	// PresenceTTL is how long a session counts as connected after its last
	// sign of life; 0 means 45s.
	PresenceTTL time.Duration
	Logger      *slog.Logger
}

// Server serves the widget, the demo page and the WebSocket.
type Server struct {
	cfg Config
	log *slog.Logger
	hub *hub
}

// New builds the chat server; call Run to receive live replies.
func New(cfg Config) *Server {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 4000
	}
	if cfg.RatePerMinute <= 0 {
		cfg.RatePerMinute = 20
	}
	if cfg.IPRatePerMinute <= 0 {
		cfg.IPRatePerMinute = 60
	}
	if cfg.PresenceTTL <= 0 {
		cfg.PresenceTTL = 45 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OwnerName == nil {
		cfg.OwnerName = func(id string) string { return id }
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.hub = newHub(cfg.State, cfg.PresenceTTL, cfg.Logger)
	return s
}

// Routes are the HTTP routes to mount.
func (s *Server) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /chat/widget.js": http.HandlerFunc(s.widget),
		"GET /chat/demo":      http.HandlerFunc(s.demo),
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

func (s *Server) widget(w http.ResponseWriter, r *http.Request) {
	b, _ := static.ReadFile("static/widget.js")
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

func (s *Server) demo(w http.ResponseWriter, r *http.Request) {
	b, _ := static.ReadFile("static/demo.html")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

// Frames. The browser sends hello once, then messages; the server answers
// welcome (with the history), ack per message, line for live staff lines, and
// error frames that say what went wrong.
type inFrame struct {
	Type  string `json:"type"`
	Token string `json:"token,omitempty"`
	ID    string `json:"id,omitempty"`
	Text  string `json:"text,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
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

const (
	writeTimeout = 10 * time.Second
	pingEvery    = 30 * time.Second
	helloTimeout = 30 * time.Second
	maxNameLen   = 200
)

func (s *Server) socket(w http.ResponseWriter, r *http.Request) {
	// The daemon's server read and write timeouts would cut a long-lived
	// socket after 30 s: lift them for this connection before hijacking.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.AllowedOrigins})
	if err != nil {
		s.log.Warn("chat: refused WebSocket", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	conn.SetReadLimit(int64(2*s.cfg.MaxMessageBytes + 4096))
	ctx, cancel := context.WithCancel(s.hub.context(r.Context()))
	defer cancel()
	defer conn.CloseNow()

	c := &client{conn: conn, out: make(chan outFrame, 32), ip: clientIP(r)}
	status, reason := s.serve(ctx, c)
	_ = conn.Close(status, reason)
}

type client struct {
	conn    *websocket.Conn
	out     chan outFrame
	ip      string
	session string
}

// serve runs one connection until it ends; it returns the close status.
func (s *Server) serve(ctx context.Context, c *client) (websocket.StatusCode, string) {
	helloCtx, cancel := context.WithTimeout(ctx, helloTimeout)
	var hello inFrame
	err := readJSON(helloCtx, c.conn, &hello)
	cancel()
	if err != nil || hello.Type != "hello" {
		return websocket.StatusPolicyViolation, "the first frame must be {\"type\":\"hello\"}"
	}
	token := hello.Token
	if !tokenPattern.MatchString(token) {
		token = newToken()
	}
	c.session = SessionID(token)
	// Register before loading the history: a reply sent meanwhile is then
	// both in the history and delivered live, never in neither (the widget
	// shows a line once).
	s.hub.add(ctx, c)
	defer s.hub.remove(c)
	history, err := s.history(ctx, c.session)
	if err != nil {
		s.log.Warn("chat: could not load history", "session", c.session, "err", err)
		_ = writeJSON(ctx, c.conn, outFrame{Type: "error", Code: "history_unavailable", Error: "your earlier messages cannot be shown right now; new ones still reach us"})
	}
	if err := writeJSON(ctx, c.conn, outFrame{Type: "welcome", Token: token, History: history}); err != nil {
		return websocket.StatusGoingAway, ""
	}

	go s.writer(ctx, c)
	for {
		var f inFrame
		if err := readJSON(ctx, c.conn, &f); err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) || ctx.Err() != nil {
				return websocket.StatusNormalClosure, ""
			}
			if errors.Is(err, errBadFrame) {
				c.send(outFrame{Type: "error", Code: "bad_frame", Error: err.Error()})
				continue
			}
			return websocket.StatusMessageTooBig, "frame too large or unreadable"
		}
		switch f.Type {
		case "message":
			c.send(s.message(ctx, c, f))
		case "ping":
			c.send(outFrame{Type: "pong"})
		default:
			c.send(outFrame{Type: "error", Code: "bad_frame", Error: fmt.Sprintf("unknown frame type %q", f.Type)})
		}
	}
}

// message queues one visitor message and says how it went.
func (s *Server) message(ctx context.Context, c *client, f inFrame) outFrame {
	fail := func(code, format string, args ...any) outFrame {
		return outFrame{Type: "error", ID: f.ID, Code: code, Error: fmt.Sprintf(format, args...)}
	}
	text := strings.TrimSpace(f.Text)
	name := strings.TrimSpace(f.Name)
	email := strings.TrimSpace(f.Email)
	switch {
	case !clientIDPattern.MatchString(f.ID):
		return fail("bad_frame", "a message needs an id of 1-64 letters, digits, '-' or '_'")
	case text == "":
		return fail("empty", "the message is empty")
	case len(text) > s.cfg.MaxMessageBytes:
		return fail("too_long", "the message is longer than %d bytes; split it up", s.cfg.MaxMessageBytes)
	case !utf8.ValidString(text) || !utf8.ValidString(name):
		return fail("bad_frame", "the text is not valid UTF-8")
	case len(name) > maxNameLen:
		return fail("bad_name", "the name is longer than %d bytes", maxNameLen)
	case email != "" && !mailaddr.Valid(email):
		return fail("bad_email", "%q is not an e-mail address", email)
	}
	for _, lim := range []struct {
		key   string
		limit int
		who   string
	}{
		{"rate:session:" + c.session, s.cfg.RatePerMinute, "this chat"},
		{"rate:ip:" + c.ip, s.cfg.IPRatePerMinute, "your network address"},
	} {
		n, err := s.cfg.State.CountWithin(ctx, lim.key, time.Minute)
		if err != nil {
			return fail("unavailable", "we cannot take messages right now; it will be sent again shortly")
		}
		if n > int64(lim.limit) {
			return fail("rate_limited", "too many messages from %s (at most %d a minute); wait a moment and send it again", lim.who, lim.limit)
		}
	}
	msg := router.Message{
		Channel:    router.ChannelChat,
		SourceID:   c.session + ":" + f.ID,
		Customer:   router.Customer{ID: c.session, Name: name, Email: email},
		Subject:    subject(text),
		Body:       text,
		ThreadKeys: []string{ThreadKey(c.session)},
		Metadata:   map[string]string{MetaSession: c.session},
		ReceivedAt: time.Now().UTC(),
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	id, dup, err := s.cfg.Queue.Enqueue(qctx, msg)
	if err != nil {
		s.log.Error("chat: could not queue message; the widget keeps it and sends it again", "session", c.session, "err", err)
		return fail("unavailable", "we cannot take messages right now; it will be sent again shortly")
	}
	return outFrame{Type: "ack", ID: f.ID, MessageID: id, Duplicate: dup}
}

// subject names a chat complaint in lists by its first words.
func subject(text string) string {
	line, _, _ := strings.Cut(text, "\n")
	line = strings.TrimSpace(line)
	if utf8.RuneCountInString(line) > 60 {
		r := []rune(line)
		line = strings.TrimSpace(string(r[:60])) + "…"
	}
	return "Chat: " + line
}

func (c *client) send(f outFrame) {
	select {
	case c.out <- f:
	default:
		// A socket that does not read is dropped by the writer's timeout;
		// what it misses is in the history on reconnect.
	}
}

func (s *Server) writer(ctx context.Context, c *client) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-c.out:
			if err := writeJSON(ctx, c.conn, f); err != nil {
				c.conn.CloseNow()
				return
			}
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, writeTimeout)
			err := c.conn.Ping(pctx)
			cancel()
			if err != nil {
				c.conn.CloseNow()
				return
			}
		}
	}
}

var errBadFrame = errors.New("frame is not a JSON object with a type")

func readJSON(ctx context.Context, conn *websocket.Conn, v *inFrame) error {
	typ, b, err := conn.Read(ctx)
	if err != nil {
		return err
	}
	if typ != websocket.MessageText || json.Unmarshal(b, v) != nil {
		return errBadFrame
	}
	return nil
}

func writeJSON(ctx context.Context, conn *websocket.Conn, f outFrame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return conn.Write(ctx, websocket.MessageText, b)
}

// clientIP is the connection's peer address; forwarding headers are set by
// the caller and prove nothing.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// hub knows this replica's open sockets per session, fans live lines out to
// them, and keeps their sessions marked present for the senders of every
// replica.
type hub struct {
	state    State
	ttl      time.Duration
	log      *slog.Logger
	mu       sync.Mutex
	sessions map[string]map[*client]bool
	ctx      context.Context // ends when the daemon stops
	stop     context.CancelFunc
	ready    chan struct{} // closed once live lines are subscribed to
}

func newHub(state State, ttl time.Duration, log *slog.Logger) *hub {
	ctx, stop := context.WithCancel(context.Background())
	return &hub{state: state, ttl: ttl, log: log, sessions: map[string]map[*client]bool{}, ctx: ctx, stop: stop, ready: make(chan struct{})}
}

// context ties a socket to both its request and the hub's life, so sockets
// close on shutdown (the HTTP server does not track hijacked connections).
func (h *hub) context(req context.Context) context.Context {
	ctx, cancel := context.WithCancel(req)
	stop := context.AfterFunc(h.ctx, cancel)
	go func() { <-ctx.Done(); stop() }()
	return ctx
}

// liveTopic carries every live line of every session to every replica.
const liveTopic = "live"

type liveLine struct {
	Session string `json:"session"`
	Line    Line   `json:"line"`
}

func (h *hub) run(ctx context.Context) error {
	defer h.stop()
	lines := h.state.Subscribe(ctx, liveTopic)
	close(h.ready)
	t := time.NewTicker(h.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case raw, ok := <-lines:
			if !ok {
				return nil
			}
			var l liveLine
			if err := json.Unmarshal([]byte(raw), &l); err != nil {
				h.log.Warn("chat: undecodable live line", "err", err)
				continue
			}
			h.mu.Lock()
			for c := range h.sessions[l.Session] {
				line := l.Line
				c.send(outFrame{Type: "line", Line: &line})
			}
			h.mu.Unlock()
		case <-t.C:
			h.mu.Lock()
			ids := make([]string, 0, len(h.sessions))
			for id := range h.sessions {
				ids = append(ids, id)
			}
			h.mu.Unlock()
			for _, id := range ids {
				if err := h.state.Set(ctx, presenceKey(id), "1", h.ttl); err != nil {
					h.log.Warn("chat: could not refresh presence", "err", err)
					break
				}
			}
		}
	}
}

func presenceKey(session string) string { return "online:" + session }

func (h *hub) add(ctx context.Context, c *client) {
	h.mu.Lock()
	if h.sessions[c.session] == nil {
		h.sessions[c.session] = map[*client]bool{}
	}
	h.sessions[c.session][c] = true
	h.mu.Unlock()
	if err := h.state.Set(ctx, presenceKey(c.session), "1", h.ttl); err != nil {
		h.log.Warn("chat: could not mark the session present", "err", err)
	}
}

func (h *hub) remove(c *client) {
	h.mu.Lock()
	delete(h.sessions[c.session], c)
	last := len(h.sessions[c.session]) == 0
	if last {
		delete(h.sessions, c.session)
	}
	h.mu.Unlock()
	if last {
		// Another replica holding a socket of this session marks it present
		// again within a third of the TTL; until then a reply also goes by
		// e-mail, which is the safe side.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = h.state.Delete(ctx, presenceKey(c.session))
	}
}
