package chat

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/forgetmenot/forgetmenot/internal/httpx"
	"github.com/forgetmenot/forgetmenot/internal/mailaddr"
	"github.com/forgetmenot/forgetmenot/internal/texts"
	"github.com/forgetmenot/forgetmenot/router"
)

// Close codes the widget acts on (4000-4999 are the application's).
const (
	// StatusIdle: nothing arrived for IdleTimeout; the widget reconnects
	// when the visitor is back.
	StatusIdle websocket.StatusCode = 4000
	// StatusHelloTimeout: no hello in time.
	StatusHelloTimeout websocket.StatusCode = 4001
	// StatusTooManySessions: the client IP started too many sessions this
	// minute; the widget tries again later.
	StatusTooManySessions websocket.StatusCode = 4029
	// StatusReconnect: live lines may have been missed; the widget
	// reconnects at once and rebuilds its window from the history.
	StatusReconnect websocket.StatusCode = 4012
)

const (
	writeTimeout = 10 * time.Second
	pingEvery    = 30 * time.Second
	maxNameLen   = 200
	// closeGrace is how long a close handshake may take before the socket is
	// cut; it also bounds the hard read deadline behind the hello timer.
	closeGrace = 5 * time.Second
	// maxSeenPerFrame bounds one seen receipt.
	maxSeenPerFrame = 50
)

// socket upgrades one visitor's connection. Everything that can refuse a
// connection happens before the upgrade, while the server's header and read
// timeouts still hold: a request with a body (a WebSocket handshake has
// none), a page not allowed to embed the chat, an address or a replica at its
// connection cap. Refusals are plain HTTP answers that close the connection;
// the widget learns why from /chat/status.
func (s *Server) socket(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	refuse := func(status int, reason, msg string) {
		s.metrics.refused.WithLabelValues(reason).Inc()
		w.Header().Set("Connection", "close") // do not wait for a body that may never come
		http.Error(w, msg, status)
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		// Answer and close at once: net/http would otherwise wait (up to its
		// read timeout) for a body the client may never send.
		s.metrics.refused.WithLabelValues("bad_request").Inc()
		if conn, rw, err := http.NewResponseController(w).Hijack(); err == nil {
			const msg = "a WebSocket handshake has no body\n"
			_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			_, _ = fmt.Fprintf(rw, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(msg), msg)
			_ = rw.Flush()
			_ = conn.Close()
			return
		}
		refuse(http.StatusBadRequest, "bad_request", "a WebSocket handshake has no body")
		return
	}
	if err := s.origins.check(r); err != nil {
		s.logRefusedOrigin(r, err)
		refuse(http.StatusForbidden, "origin", "This chat is not enabled for this site: "+err.Error())
		return
	}
	if why := s.limits.acquire(ip); why != "" {
		status := http.StatusTooManyRequests
		if why == limitTotal {
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "30")
		}
		refuse(status, why, s.limits.explain(why))
		return
	}
	defer s.limits.release(ip)

	hj := &hijackCapture{ResponseWriter: w}
	conn, err := websocket.Accept(hj, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // the origin is checked above
	if err != nil {
		s.metrics.refused.WithLabelValues("bad_request").Inc()
		s.log.Debug("chat: not a WebSocket handshake", "remote", r.RemoteAddr, "err", err)
		return
	}
	s.metrics.open.Inc()
	defer s.metrics.open.Dec()
	defer conn.CloseNow()
	// The upgrade succeeded and the origin passed: the server's 30 s read and
	// write deadlines would cut a long-lived socket, so the socket's own
	// limits take over — writes time out per frame, and until hello a hard
	// read deadline stands behind the hello timer.
	if hj.conn != nil {
		_ = hj.conn.SetWriteDeadline(time.Time{})
		_ = hj.conn.SetReadDeadline(time.Now().Add(s.cfg.HelloTimeout + closeGrace))
	}
	conn.SetReadLimit(int64(2*s.cfg.MaxMessageBytes + 4096))
	ctx, cancel := context.WithCancel(s.hub.context(r.Context()))
	defer cancel()

	c := &client{conn: conn, raw: hj.conn, out: make(chan outFrame, 32), ip: ip, watch: map[string]string{}, closeDone: make(chan struct{})}
	status, reason := s.serve(ctx, c)
	if r := c.closing.Load(); r != nil {
		// Closed with a reason (idle, no hello): let the close handshake
		// finish, so the widget gets the reason; it is bounded by its own
		// timeouts.
		s.metrics.closed.WithLabelValues(*r).Inc()
		<-c.closeDone
		return
	}
	s.metrics.closed.WithLabelValues("ended").Inc()
	_ = conn.Close(status, reason)
}

// hijackCapture keeps the raw connection websocket.Accept hijacks, so its
// deadlines can be managed after the upgrade.
type hijackCapture struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijackCapture) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = c
	return c, rw, err
}

type client struct {
	conn    *websocket.Conn
	raw     net.Conn
	out     chan outFrame
	ip      string
	session string
	lang    string
	zone    *time.Location
	closing atomic.Pointer[string]
	// closeDone is closed when a closeWith handshake ended.
	closeDone chan struct{}

	mu sync.Mutex
	// watch maps the staff lines shown to this socket to their complaint,
	// so a seen receipt can only name what this session was shown.
	watch map[string]string
}

// closeWith closes the socket with a reason the widget shows; metric names
// why. It does not wait for the close handshake.
func (c *client) closeWith(code websocket.StatusCode, metric, reason string) {
	if !c.closing.CompareAndSwap(nil, &metric) {
		return
	}
	go func() {
		defer close(c.closeDone)
		_ = c.conn.Close(code, reason)
	}()
}

func (c *client) watchLine(id, complaintID string) {
	c.mu.Lock()
	c.watch[id] = complaintID
	c.mu.Unlock()
}

// serve runs one connection until it ends; it returns the close status.
func (s *Server) serve(ctx context.Context, c *client) (websocket.StatusCode, string) {
	helloTimer := time.AfterFunc(s.cfg.HelloTimeout, func() {
		c.closeWith(StatusHelloTimeout, "hello_timeout", fmt.Sprintf("no hello within %s", s.cfg.HelloTimeout))
	})
	var hello inFrame
	err := readJSON(ctx, c.conn, &hello)
	if !helloTimer.Stop() {
		return 0, "" // closed with its reason
	}
	if err != nil || hello.Type != "hello" {
		return websocket.StatusPolicyViolation, "the first frame must be {\"type\":\"hello\"}"
	}
	if c.raw != nil {
		_ = c.raw.SetReadDeadline(time.Time{}) // the idle timer watches from here
	}
	token := hello.Token
	if !tokenPattern.MatchString(token) || !s.knownSession(ctx, SessionID(token)) {
		// A new chat: no token, or one that leads to no conversation (a
		// made-up token is well-formed too; counting only missing tokens
		// let anyone open chats without limit).
		n, err := s.cfg.State.CountWithin(ctx, "rate:sessions:"+c.ip, time.Minute)
		if err == nil && n > int64(s.cfg.SessionsPerIPPerMinute) {
			s.metrics.refused.WithLabelValues("session_rate").Inc()
			c.closeWith(StatusTooManySessions, "session_rate", fmt.Sprintf("too many new chats from your network address (at most %d a minute); try again in a minute", s.cfg.SessionsPerIPPerMinute))
			return 0, ""
		}
		if !tokenPattern.MatchString(token) {
			token = newToken()
		}
		if err := s.cfg.State.Set(ctx, knownKey(SessionID(token)), "1", knownSessionTTL); err != nil {
			s.log.Warn("chat: could not remember a new session; its next visit counts as a new chat", "err", err)
		}
	}
	c.session = SessionID(token)
	c.lang = ""
	if l := texts.Primary(hello.Lang); l != "" && s.cfg.Texts.Lang(l) == l {
		c.lang = l
	}
	c.zone = texts.Zone(hello.Zone)
	// Register before loading the history: a reply sent meanwhile is then
	// both in the history and delivered live, never in neither (the widget
	// shows a line once).
	s.hub.add(ctx, c)
	defer s.hub.remove(c)
	history, err := s.history(ctx, c)
	if err != nil {
		s.log.Warn("chat: could not load history", "session", c.session, "err", err)
		_ = writeJSON(ctx, c.conn, outFrame{Type: "error", Code: "history_unavailable", Error: "your earlier messages cannot be shown right now; new ones still reach us"})
	}
	welcome := outFrame{Type: "welcome", Token: token, Lang: s.cfg.Texts.Lang(c.lang), History: history}
	welcome.Greeting, welcome.Expect = s.greeting(c)
	if err := writeJSON(ctx, c.conn, welcome); err != nil {
		return websocket.StatusGoingAway, ""
	}

	idle := time.AfterFunc(s.cfg.IdleTimeout, func() {
		c.closeWith(StatusIdle, "idle", fmt.Sprintf("closed after %s without activity", s.cfg.IdleTimeout))
	})
	defer idle.Stop()
	go s.writer(ctx, c)
	for {
		var f inFrame
		err := readJSON(ctx, c.conn, &f)
		idle.Reset(s.cfg.IdleTimeout)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) || ctx.Err() != nil || c.closing.Load() != nil {
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
		case "seen":
			s.seen(ctx, c, f.IDs)
		case "ping":
			c.send(outFrame{Type: "pong"})
		default:
			c.send(outFrame{Type: "error", Code: "bad_frame", Error: fmt.Sprintf("unknown frame type %q", f.Type)})
		}
	}
}

// knownSessionTTL is how long a session this server admitted is known
// without a conversation (a visitor who opened the chat and said nothing
// yet); one with a conversation is known by it.
const knownSessionTTL = 30 * 24 * time.Hour

func knownKey(session string) string { return "known:" + session }

// knownSession reports whether session is a returning visitor's: one this
// server admitted before, or one that led to a conversation. A made-up
// token is neither. When that cannot be read, the session counts as new
// (the limit on new chats errs on the side of holding).
func (s *Server) knownSession(ctx context.Context, session string) bool {
	if _, ok, err := s.cfg.State.Get(ctx, knownKey(session)); err == nil && ok {
		return true
	}
	if s.cfg.History == nil {
		return false
	}
	convs, err := s.cfg.History.Conversations(ctx, ThreadKey(session))
	return err == nil && len(convs) > 0
}

// seen records the staff lines the widget reports on screen. Only lines this
// socket was shown count, each once per socket; the router records each
// once in all.
func (s *Server) seen(ctx context.Context, c *client, ids []string) {
	if s.cfg.Receipts == nil {
		return
	}
	if len(ids) > maxSeenPerFrame {
		ids = ids[:maxSeenPerFrame]
	}
	for _, id := range ids {
		c.mu.Lock()
		complaintID, ok := c.watch[id]
		delete(c.watch, id)
		c.mu.Unlock()
		if !ok {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.cfg.Receipts.RecordSeen(rctx, complaintID, id, router.ChannelChat)
		cancel()
		if err != nil {
			s.log.Warn("chat: could not record a seen receipt; the reply may be e-mailed although seen", "complaint", complaintID, "line", id, "err", err)
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

// clientIP is the address the chat's per-address limits count: the real
// client, which forwarding headers name only when a trusted proxy set them
// (FORGETMENOT_TRUSTED_PROXIES).
func clientIP(r *http.Request) string { return httpx.ClientIP(r) }
