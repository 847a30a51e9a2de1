package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"
	"github.com/forgetmenot/forgetmenot/internal/ctxtime"
	"github.com/forgetmenot/forgetmenot/router"
)

// Enqueuer stores an inbound message durably; only a nil error means it is
// stored. A duplicate (same channel and source id) is not an error.
type Enqueuer interface {
	Enqueue(ctx context.Context, msg router.Message) (id string, duplicate bool, err error)
}

// State is the small durable state the channel keeps: UID checkpoints, the
// quarantine, acknowledgement rate limits.
type State interface {
	Get(ctx context.Context, k string) (string, bool, error)
	Set(ctx context.Context, k, value string, ttl time.Duration) error
	SetMax(ctx context.Context, k string, value int64) error
	Claim(ctx context.Context, k, value string, ttl time.Duration) (bool, error)
	Append(ctx context.Context, k, value string, max int) error
	List(ctx context.Context, k string, n int) ([]string, error)
}

// TLSMode says how a connection is secured.
type TLSMode string

// TLS modes for IMAP and SMTP.
const (
	TLSImplicit TLSMode = "implicit"
	TLSStartTLS TLSMode = "starttls"
	TLSNone     TLSMode = "none"
)

// Defaults for a mailbox.
const (
	DefaultFolder       = "INBOX"
	DefaultMaxSize      = 25 << 20
	DefaultPollInterval = time.Minute
	// DefaultIdleRestart re-issues IDLE well before the 30 minutes after which
	// RFC 9051 lets servers drop an idle client, and before NAT boxes forget a
	// quiet connection.
	DefaultIdleRestart = 9 * time.Minute
	// DefaultStallTimeout: a command without any answer this long means a
	// server that accepted the connection and stopped answering, which TCP
	// keepalive does not see (the peer's TCP still acknowledges).
	DefaultStallTimeout = 2 * time.Minute
)

// QuarantineKey is the State list of mail that could not be read.
const QuarantineKey = "quarantine"

// quarantineMax bounds the quarantine list; the mail itself stays in the
// mailbox.
const quarantineMax = 1000

// Mailbox is one IMAP mailbox to read customer mail from.
type Mailbox struct {
	// Name identifies the mailbox in logs, checkpoints and the quarantine.
	Name     string
	Host     string
	Port     int
	TLS      TLSMode
	Username string
	Password string
	// OAuth2, when set, signs in with an access token (XOAUTH2 or
	// OAUTHBEARER) instead of the password.
	OAuth2 *OAuth2
	// Folder is the IMAP mailbox to read (default INBOX).
	Folder string
	// DefaultTeam gets mail no routing rule claims.
	DefaultTeam string
	// PollInterval is how often the mailbox is checked when the server has no
	// IDLE.
	PollInterval time.Duration
	// IdleRestart is how long one IDLE runs before it is renewed.
	IdleRestart time.Duration
	// MoveTo and Keyword, when set, are applied to ingested mail.
	MoveTo  string
	Keyword string
	// MaxSize: larger mail is recorded from its headers only.
	MaxSize   int64
	TLSConfig *tls.Config
	// StallTimeout is how long a command may go without an answer before
	// the server is taken for stalled and the session reconnects.
	StallTimeout time.Duration
}

func (m Mailbox) withDefaults() Mailbox {
	if m.Folder == "" {
		m.Folder = DefaultFolder
	}
	if m.PollInterval <= 0 {
		m.PollInterval = DefaultPollInterval
	}
	if m.IdleRestart <= 0 {
		m.IdleRestart = DefaultIdleRestart
	}
	if m.MaxSize <= 0 {
		m.MaxSize = DefaultMaxSize
	}
	if m.StallTimeout <= 0 {
		m.StallTimeout = DefaultStallTimeout
	}
	if m.TLS == "" {
		m.TLS = TLSImplicit
	}
	if m.Name == "" {
		m.Name = m.Username + "@" + m.Host + "/" + m.Folder
	}
	return m
}

// IngesterConfig wires an Ingester.
type IngesterConfig struct {
	Mailbox Mailbox
	Parse   ParseOptions
	Queue   Enqueuer
	State   State
	Logger  *slog.Logger
	// MinBackoff and MaxBackoff bound the wait before reconnecting.
	MinBackoff, MaxBackoff time.Duration
	// BatchMessages and BatchBytes bound one download round.
	BatchMessages int
	BatchBytes    int64
	// OnIngested is told of each message stored (tests, metrics).
	OnIngested func(msg router.Message, duplicate bool)
	// Metrics counts sign-ins (optional).
	Metrics *Metrics
}

// Ingester reads one mailbox into the inbound queue for as long as it runs.
type Ingester struct {
	cfg IngesterConfig
	mb  Mailbox
	log *slog.Logger

	mu        sync.Mutex
	connected bool
	lastErr   error
	ids       *MessageIDs
}

// NewIngester checks the configuration and builds an Ingester.
func NewIngester(cfg IngesterConfig) (*Ingester, error) {
	if cfg.Queue == nil || cfg.State == nil {
		return nil, errors.New("email: ingester needs a queue and state")
	}
	mb := cfg.Mailbox.withDefaults()
	if mb.Host == "" || mb.Port <= 0 {
		return nil, fmt.Errorf("email: mailbox %s: host and port are required", mb.Name)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.BatchMessages <= 0 {
		cfg.BatchMessages = 100
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 32 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Ingester{cfg: cfg, mb: mb, log: cfg.Logger.With("mailbox", mb.Name), ids: NewMessageIDs(cfg.State)}, nil
}

// Name is the mailbox's name.
func (in *Ingester) Name() string { return in.mb.Name }

// Check reports the last connection error while the mailbox is not
// connected; nil while it is.
func (in *Ingester) Check() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.connected || in.lastErr == nil {
		return nil
	}
	return fmt.Errorf("mailbox %s is not connected: %w", in.mb.Name, in.lastErr)
}

func (in *Ingester) setStatus(connected bool, err error) {
	in.mu.Lock()
	in.connected = connected
	if err != nil {
		in.lastErr = err
	}
	in.mu.Unlock()
}

// Run reads the mailbox until ctx ends, reconnecting after every failure
// with capped exponential backoff.
func (in *Ingester) Run(ctx context.Context) error {
	backoff := in.cfg.MinBackoff
	for {
		connected, err := in.session(ctx)
		if ctx.Err() != nil {
			in.setStatus(false, nil)
			return nil
		}
		if err == nil {
			err = errors.New("session ended")
		}
		in.setStatus(false, err)
		if connected {
			backoff = in.cfg.MinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if IsAuthFailure(err) {
			// At least AuthFailureBackoff after a refused sign-in, jitter
			// on top: a provider locks accounts that retry too often.
			floor := min(AuthFailureBackoff, in.cfg.MaxBackoff)
			backoff = max(backoff, floor)
			wait = max(wait, floor+rand.N(floor/4+1))
		}
		in.log.Warn("mailbox disconnected; reconnecting", "in", wait.Round(time.Millisecond), "err", err)
		if ctxtime.Sleep(ctx, wait) != nil {
			return nil
		}
		backoff = min(backoff*2, in.cfg.MaxBackoff)
	}
}

// session is one connection: log in, catch up, then IDLE (or poll) and
// catch up on every change. connected reports whether it got as far as
// selecting the mailbox.
func (in *Ingester) session(ctx context.Context) (connected bool, err error) {
	newMail := make(chan struct{}, 1)
	c, err := in.open(ctx, newMail)
	if err != nil {
		return false, err
	}
	defer c.Close()
	// Wait() takes no context: closing the client unblocks every command.
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()

	g := in.guard(c)
	sel, err := c.Select(in.mb.Folder, nil).Wait()
	g.stop()
	if err != nil {
		return false, fmt.Errorf("selecting %s: %w", in.mb.Folder, err)
	}
	key, err := in.checkpointKey(ctx, sel.UIDValidity)
	if err != nil {
		return false, err
	}
	canIdle := c.Caps().Has(imap.CapIdle)
	in.setStatus(true, nil)
	in.log.Info("mailbox connected", "folder", in.mb.Folder, "uidvalidity", sel.UIDValidity, "messages", sel.NumMessages, "idle", canIdle)

	for {
		if err := in.catchUp(ctx, c, sel.UIDValidity, key); err != nil {
			return true, err
		}
		if canIdle {
			err = in.idle(ctx, c, newMail)
		} else {
			err = in.poll(ctx, c, newMail)
		}
		if ctx.Err() != nil {
			return true, nil
		}
		if err != nil {
			return true, err
		}
	}
}

// dial connects and waits for the server's greeting (and the TLS
// handshake, and STARTTLS), all within ctx and the stall timeout: a server
// that takes the connection and then says nothing is left, and named as
// such, instead of holding a check or the intake for minutes.
func (in *Ingester) dial(ctx context.Context, newMail chan struct{}) (*imapclient.Client, error) {
	opts := &imapclient.Options{
		WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			// Runs on the client's reader goroutine: only signal from here.
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case newMail <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	addr := net.JoinHostPort(in.mb.Host, strconv.Itoa(in.mb.Port))
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	limit := in.mb.StallTimeout
	if limit <= 0 {
		limit = DefaultStallTimeout
	}
	deadline := time.Now().Add(limit)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	bound := time.Until(deadline).Round(time.Second)
	// Until the greeting is in, the connection is closed at the deadline or
	// when ctx ends. (Not a deadline on the connection: the IMAP client sets
	// its own read and write deadlines, which would replace it.)
	var expired atomic.Bool
	timer := time.AfterFunc(time.Until(deadline), func() { expired.Store(true); _ = conn.Close() })
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	leave := func() bool { // false: the connection was closed
		t, c := timer.Stop(), stop()
		return t && c
	}
	// The server's name is checked as go-imap's own dialers check it.
	tlsCfg := &tls.Config{}
	if in.mb.TLSConfig != nil {
		tlsCfg = in.mb.TLSConfig.Clone()
	}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = in.mb.Host
	}
	var c *imapclient.Client
	switch in.mb.TLS {
	case TLSStartTLS:
		opts.TLSConfig = tlsCfg
		c, err = imapclient.NewStartTLS(conn, opts)
	case TLSNone:
		c = imapclient.New(conn, opts)
	default:
		if tlsCfg.NextProtos == nil {
			tlsCfg.NextProtos = []string{"imap"}
		}
		tc := tls.Client(conn, tlsCfg)
		if err = tc.HandshakeContext(ctx); err == nil {
			c = imapclient.New(tc, opts)
		}
	}
	if err == nil {
		err = c.WaitGreeting()
		if err != nil {
			_ = c.Close()
		}
	}
	if err != nil {
		_ = conn.Close()
		leave()
		if expired.Load() || ctx.Err() != nil {
			return nil, fmt.Errorf("the server took the connection but did not greet us (or finish TLS) within %s: %w", bound, err)
		}
		return nil, err
	}
	if !leave() {
		// The deadline or ctx closed the connection just as the greeting
		// came in.
		_ = c.Close()
		return nil, fmt.Errorf("the server took the connection but did not greet us (or finish TLS) within %s", bound)
	}
	return c, nil
}

// checkpointKey is the checkpoint for this UIDVALIDITY. A new UIDVALIDITY
// means the server renumbered the mailbox: the whole mailbox is read again
// from UID 1 and Message-ID deduplication keeps every mail single.
func (in *Ingester) checkpointKey(ctx context.Context, validity uint32) (string, error) {
	vkey := "uidvalidity:" + in.mb.Name
	cur := strconv.FormatUint(uint64(validity), 10)
	prev, found, err := in.cfg.State.Get(ctx, vkey)
	if err != nil {
		return "", fmt.Errorf("reading the checkpoint: %w", err)
	}
	if found && prev != cur {
		in.log.Warn("UIDVALIDITY changed: the server renumbered the mailbox, so all of it is read again; mail already ingested is recognised by its Message-ID and not doubled",
			"previous", prev, "now", cur)
	}
	if !found || prev != cur {
		if err := in.cfg.State.Set(ctx, vkey, cur, 0); err != nil {
			return "", fmt.Errorf("recording UIDVALIDITY: %w", err)
		}
	}
	return "uid:" + in.mb.Name + ":" + cur, nil
}

// idle waits in IDLE for new mail, the restart interval or the end. Even
// while idling the mailbox is checked every poll interval: some servers drop
// IDLE notifications, and a missed one must not leave mail waiting.
func (in *Ingester) idle(ctx context.Context, c *imapclient.Client, newMail chan struct{}) error {
	// A NOOP first collects news the server held back since the last command.
	if err := in.noop(c); err != nil {
		return fmt.Errorf("NOOP before IDLE: %w", err)
	}
	select {
	case <-newMail:
		return nil
	default:
	}
	cmd, err := c.Idle()
	if err != nil {
		return fmt.Errorf("starting IDLE: %w", err)
	}
	in.log.Debug("idling")
	restart := time.NewTimer(in.mb.IdleRestart)
	defer restart.Stop()
	poll := time.NewTimer(in.mb.PollInterval)
	defer poll.Stop()
	renew := false
	select {
	case <-ctx.Done():
	case <-newMail:
	case <-poll.C:
	case <-restart.C:
		renew = true
	case <-c.Closed():
		return errors.New("the server closed the connection during IDLE")
	}
	// A half-open connection never answers DONE: close it after a while so
	// the session reconnects instead of hanging.
	watchdog := time.AfterFunc(30*time.Second, func() { _ = c.Close() })
	defer watchdog.Stop()
	if err := cmd.Close(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("ending IDLE: %w", err)
	}
	if err := cmd.Wait(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("ending IDLE: %w", err)
	}
	if renew {
		// Prove the connection is alive before idling again.
		if err := in.noop(c); err != nil {
			return fmt.Errorf("NOOP after IDLE: %w", err)
		}
	}
	return nil
}

// poll waits the poll interval, then asks the server for news.
func (in *Ingester) poll(ctx context.Context, c *imapclient.Client, newMail chan struct{}) error {
	t := time.NewTimer(in.mb.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-t.C:
	case <-newMail:
	}
	if err := in.noop(c); err != nil {
		return fmt.Errorf("NOOP: %w", err)
	}
	return nil
}

// noop runs NOOP under the stall guard.
func (in *Ingester) noop(c *imapclient.Client) error {
	g := in.guard(c)
	defer g.stop()
	return c.Noop().Wait()
}

// stallGuard closes the client when a command makes no progress for the
// mailbox's StallTimeout: closing it ends every command, and the session
// reconnects (and /readyz shows the mailbox as not connected meanwhile).
type stallGuard struct {
	timer *time.Timer
	limit time.Duration
}

func (in *Ingester) guard(c *imapclient.Client) *stallGuard {
	limit := in.mb.StallTimeout
	return &stallGuard{limit: limit, timer: time.AfterFunc(limit, func() {
		in.log.Warn("the mail server stopped answering in the middle of a command; reconnecting", "waited", limit)
		_ = c.Close()
	})}
}

// progress is called when the command moved on (a mail arrived).
func (g *stallGuard) progress() { g.timer.Reset(g.limit) }

func (g *stallGuard) stop() { g.timer.Stop() }

// progressReader tells the guard of every read that brought bytes: a big
// mail on a slow line is progress, not a stall.
type progressReader struct {
	r io.Reader
	g *stallGuard
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.g.progress()
	}
	return n, err
}

type pending struct {
	uid  imap.UID
	size int64
}

// catchUp ingests every mail above the checkpoint, oldest first, and moves
// the checkpoint only past mail that is stored (or quarantined).
func (in *Ingester) catchUp(ctx context.Context, c *imapclient.Client, validity uint32, key string) error {
	last, err := in.checkpoint(ctx, key)
	if err != nil {
		return err
	}
	// "n:*" always matches the highest UID, even below n: filter afterwards.
	opts := &imap.FetchOptions{UID: true, RFC822Size: true}
	if in.mb.Keyword != "" {
		opts.Flags = true
	}
	g := in.guard(c)
	list, err := c.Fetch(imap.UIDSet{{Start: imap.UID(last + 1), Stop: 0}}, opts).Collect()
	g.stop()
	if err != nil {
		return fmt.Errorf("listing new mail: %w", err)
	}
	var todo []pending
	var marked imap.UID
	for _, m := range list {
		if uint32(m.UID) <= last {
			continue
		}
		if in.mb.Keyword != "" && slices.ContainsFunc(m.Flags, func(f imap.Flag) bool { return strings.EqualFold(string(f), in.mb.Keyword) }) {
			// Taken in before (the mailbox's keyword says so): a mailbox
			// read again from the start, or renumbered by a UIDVALIDITY
			// change, does not take it in again, not even once its dedup
			// key has expired or an erasure removed it.
			marked = max(marked, m.UID)
			continue
		}
		todo = append(todo, pending{uid: m.UID, size: m.RFC822Size})
	}
	if len(todo) == 0 && marked > 0 {
		if err := in.cfg.State.SetMax(ctx, key, int64(marked)); err != nil {
			return fmt.Errorf("advancing the checkpoint to UID %d: %w", marked, err)
		}
	}
	slices.SortFunc(todo, func(a, b pending) int { return int(a.uid) - int(b.uid) })
	for len(todo) > 0 {
		n, size := 0, int64(0)
		for n < len(todo) && n < in.cfg.BatchMessages && (n == 0 || size+min(todo[n].size, in.mb.MaxSize) <= in.cfg.BatchBytes) {
			size += min(todo[n].size, in.mb.MaxSize)
			n++
		}
		if err := in.batch(ctx, c, validity, key, todo[:n]); err != nil {
			return err
		}
		todo = todo[n:]
	}
	return nil
}

func (in *Ingester) checkpoint(ctx context.Context, key string) (uint32, error) {
	v, found, err := in.cfg.State.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("reading the checkpoint: %w", err)
	}
	if !found {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("checkpoint %s holds %q, not a UID", key, v)
	}
	return uint32(n), nil
}

// batch downloads and ingests a few mails, then advances the checkpoint.
func (in *Ingester) batch(ctx context.Context, c *imapclient.Client, validity uint32, key string, items []pending) error {
	var whole, large imap.UIDSet
	for _, p := range items {
		if p.size > in.mb.MaxSize {
			large.AddNum(p.uid)
		} else {
			whole.AddNum(p.uid)
		}
	}
	raw := map[imap.UID][]byte{}
	// BODY.PEEK leaves \Seen alone: a human's view of the mailbox is not ours
	// to change.
	if len(whole) > 0 {
		if err := in.download(c, whole, &imap.FetchItemBodySection{Peek: true}, raw); err != nil {
			return err
		}
	}
	if len(large) > 0 {
		if err := in.download(c, large, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}, raw); err != nil {
			return err
		}
	}

	var done uint32
	var ingested imap.UIDSet
	var failed error
	for _, p := range items {
		body, ok := raw[p.uid]
		if !ok {
			// Expunged by someone else between listing and download.
			in.log.Info("mail vanished before it could be read", "uid", p.uid)
			done = uint32(p.uid)
			continue
		}
		stored, err := in.ingest(ctx, validity, p, body)
		if err != nil {
			failed = err
			break
		}
		done = uint32(p.uid)
		if stored {
			ingested.AddNum(p.uid)
		}
	}
	if done > 0 {
		if err := in.cfg.State.SetMax(ctx, key, int64(done)); err != nil {
			return fmt.Errorf("advancing the checkpoint to UID %d: %w", done, err)
		}
	}
	if failed != nil {
		return failed
	}
	in.afterIngest(c, ingested)
	return nil
}

func (in *Ingester) download(c *imapclient.Client, set imap.UIDSet, section *imap.FetchItemBodySection, into map[imap.UID][]byte) error {
	g := in.guard(c)
	defer g.stop()
	cmd := c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		g.progress()
		var uid imap.UID
		var body []byte
		var readErr error
		for readErr == nil {
			item := msg.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataBodySection:
				if it.Literal != nil {
					body, readErr = io.ReadAll(io.LimitReader(progressReader{it.Literal, g}, in.mb.MaxSize+1))
					if readErr == nil && int64(len(body)) < min(it.Literal.Size(), in.mb.MaxSize+1) {
						// The library reports a connection closed inside
						// the literal as its end.
						readErr = io.ErrUnexpectedEOF
					}
				}
			}
		}
		if readErr != nil {
			// The connection broke inside a literal. Asking the command for
			// more would make the library discard the half-read literal while
			// its reader goroutine moves on: close the client instead.
			_ = c.Close()
			return fmt.Errorf("downloading UID %d: %w", uid, readErr)
		}
		if uid != 0 && body != nil {
			into[uid] = body
		}
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("downloading mail: %w", err)
	}
	return nil
}

// ingest stores one mail, or quarantines it when it cannot be read. stored
// reports that it went into the queue.
func (in *Ingester) ingest(ctx context.Context, validity uint32, p pending, raw []byte) (stored bool, err error) {
	where := fmt.Sprintf("mailbox %s (%s), UID %d", in.mb.Name, in.mb.Folder, p.uid)
	var msg router.Message
	if p.size > in.mb.MaxSize || int64(len(raw)) > in.mb.MaxSize {
		hdr := raw
		if int64(len(raw)) > in.mb.MaxSize {
			// The server under-reported the size: keep the header only.
			hdr = headerOf(raw)
		}
		msg, err = ParseTooLarge(hdr, max(p.size, int64(len(raw))), in.mb.MaxSize, where, in.cfg.Parse)
	} else {
		msg, err = Parse(raw, in.cfg.Parse)
	}
	if err != nil {
		return false, in.quarantine(ctx, validity, p, raw, err)
	}
	if rep := msg.DeliveryReport; rep != nil {
		// Only a bounce of a mail we really sent may reach that mail's
		// complaint: anyone can write a delivery report naming a Message-ID
		// (a customer's own, one they guessed).
		ours, err := in.ids.Ours(ctx, strings.TrimPrefix(rep.For, ThreadKey("")))
		if err != nil {
			return false, fmt.Errorf("checking the bounce in UID %d: %w", p.uid, err)
		}
		if !ours {
			msg.DeliveryReport = nil
			note := "a delivery report about a mail we did not send (" + strings.TrimPrefix(rep.For, ThreadKey("")) + "): kept as an ordinary message"
			if msg.Metadata[MetaNotes] != "" {
				note = msg.Metadata[MetaNotes] + "; " + note
			}
			msg.Metadata[MetaNotes] = note
		}
	}
	msg.DefaultTeam = in.mb.DefaultTeam
	msg.Metadata[MetaMailbox] = in.mb.Name
	msg.Metadata[MetaUID] = strconv.FormatUint(uint64(p.uid), 10)
	_, dup, err := in.cfg.Queue.Enqueue(ctx, msg)
	if err != nil {
		return false, fmt.Errorf("storing UID %d (%s): %w", p.uid, msg.SourceID, err)
	}
	if dup {
		in.log.Info("mail already ingested", "uid", p.uid, "message_id", msg.Metadata[MetaMessageID], "source_id", msg.SourceID)
	} else {
		in.log.Info("mail ingested", "uid", p.uid, "message_id", msg.Metadata[MetaMessageID], "source_id", msg.SourceID, "from", msg.Customer.Email)
	}
	if in.cfg.OnIngested != nil {
		in.cfg.OnIngested(msg, dup)
	}
	return true, nil
}

// Quarantined is a mail that could not be read; it stays in the mailbox.
type Quarantined struct {
	At          time.Time `json:"at"`
	Mailbox     string    `json:"mailbox"`
	Folder      string    `json:"folder"`
	UIDValidity uint32    `json:"uidvalidity"`
	UID         uint32    `json:"uid"`
	Size        int64     `json:"size"`
	From        string    `json:"from,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	Error       string    `json:"error"`
}

func (in *Ingester) quarantine(ctx context.Context, validity uint32, p pending, raw []byte, cause error) error {
	q := Quarantined{
		At: time.Now().UTC(), Mailbox: in.mb.Name, Folder: in.mb.Folder, UIDValidity: validity, UID: uint32(p.uid),
		Size: max(p.size, int64(len(raw))), From: rawHeaderValue(raw, "From"), Subject: rawHeaderValue(raw, "Subject"), Error: cause.Error(),
	}
	once := fmt.Sprintf("quarantined:%s:%d:%d", in.mb.Name, validity, p.uid)
	first, err := in.cfg.State.Claim(ctx, once, "1", 0)
	if err != nil {
		return fmt.Errorf("quarantining UID %d: %w", p.uid, err)
	}
	if first {
		b, _ := json.Marshal(q)
		if err := in.cfg.State.Append(ctx, QuarantineKey, string(b), quarantineMax); err != nil {
			return fmt.Errorf("quarantining UID %d: %w", p.uid, err)
		}
	}
	in.log.Error("mail cannot be read: quarantined, left in the mailbox; see `forgetmenot email quarantine`", "uid", p.uid, "err", cause)
	return nil
}

// afterIngest applies the configured keyword and move to stored mail. A
// failure is logged: the checkpoint already keeps the mail from being read
// twice.
func (in *Ingester) afterIngest(c *imapclient.Client, set imap.UIDSet) {
	if len(set) == 0 {
		return
	}
	g := in.guard(c)
	defer g.stop()
	if in.mb.Keyword != "" {
		err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.Flag(in.mb.Keyword)}}, nil).Close()
		if err != nil {
			in.log.Warn("could not set the keyword on ingested mail", "keyword", in.mb.Keyword, "uids", set.String(), "err", err)
		}
	}
	if in.mb.MoveTo != "" {
		_, err := c.Move(set, in.mb.MoveTo).Wait()
		if missingFolder(err) {
			// The folder named by move_to is not there (yet): create it,
			// as the operator asked for mail to go there (subscribed, so
			// mail programs show it), and move again. A create that fails
			// because another session just made it still lets the move
			// through.
			cerr := c.Create(in.mb.MoveTo, nil).Wait()
			if cerr == nil {
				in.log.Info("created the move_to folder", "folder", in.mb.MoveTo)
				_ = c.Subscribe(in.mb.MoveTo).Wait()
			}
			if _, err = c.Move(set, in.mb.MoveTo).Wait(); err != nil && cerr != nil {
				err = fmt.Errorf("%w (creating the folder: %w)", err, cerr)
			}
		}
		if err != nil {
			in.log.Error("could not move ingested mail; it stays in the mailbox (taken in once all the same)", "to", in.mb.MoveTo, "uids", set.String(), "err", err)
		}
	}
}

// missingFolder tells whether the server refused a move or copy because the
// target folder does not exist (RFC 9051's TRYCREATE; some servers answer
// NONEXISTENT).
func missingFolder(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && (ie.Code == imap.ResponseCodeTryCreate || ie.Code == imap.ResponseCodeNonExistent)
}

// headerOf returns the header block of a raw mail.
func headerOf(raw []byte) []byte {
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := bytes.Index(raw, []byte(sep)); i >= 0 {
			return raw[:i+len(sep)]
		}
	}
	return raw
}

// rawHeaderValue picks a header out of mail that may not parse, for the
// quarantine record.
func rawHeaderValue(raw []byte, key string) string {
	re := regexp.MustCompile(`(?im)^` + regexp.QuoteMeta(key) + `:[ \t]*(.*)$`)
	m := re.FindSubmatch(headerOf(raw))
	if m == nil {
		return ""
	}
	return clipRunes(cleanLine(decodeLoose(string(m[1]))), 200)
}
