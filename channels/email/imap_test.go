package email_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/forgetmenot/forgetmenot/channels/email"
	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/internal/testdovecot"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(testredis.Main(m)) }

// peer is a real IMAP server on loopback: go-imap's in-memory server or a
// real Dovecot. The end-to-end cases run against both.
type peer interface {
	// deliver puts a mail in the folder, as an MTA would.
	deliver(t testing.TB, folder string, raw []byte, flags ...imap.Flag)
	// peek lists UIDs and flags read-only, as a human's mail program would.
	peek(t testing.TB, folder string) []*imapclient.FetchMessageBuffer
	createFolder(t testing.TB, name string)
	// renumber gives the folder a new UIDVALIDITY holding exactly these
	// mails, in this order.
	renumber(t testing.TB, folder string, mails ...[]byte)
	addr() string
}

// servers are the IMAP servers every end-to-end case runs against.
var servers = []struct {
	name  string
	start func(t testing.TB) peer
}{
	{"imapmemserver", func(t testing.TB) peer { return startIMAP(t, nil) }},
	{"dovecot", func(t testing.TB) peer { return &dovecotPeer{testdovecot.Start(t, testdovecot.Options{})} }},
}

// eachServer runs the case once per server, as subtests.
func eachServer(t *testing.T, f func(t *testing.T, p peer)) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) { f(t, s.start(t)) })
	}
}

// memPeer is go-imap's in-memory server.
type memPeer struct {
	*emailtest.IMAP
	user *imapmemserver.User
}

func startIMAP(t testing.TB, caps imap.CapSet) *memPeer {
	t.Helper()
	s := emailtest.StartIMAP(t, caps)
	return &memPeer{IMAP: s, user: s.User}
}

func (p *memPeer) addr() string { return p.Addr }

func (p *memPeer) deliver(t testing.TB, folder string, raw []byte, flags ...imap.Flag) {
	t.Helper()
	p.Deliver(t, folder, raw, flags...)
}

func (p *memPeer) createFolder(t testing.TB, name string) {
	t.Helper()
	if err := p.user.Create(name, nil); err != nil {
		t.Fatal(err)
	}
}

func (p *memPeer) renumber(t testing.TB, folder string, mails ...[]byte) {
	t.Helper()
	if err := p.user.Delete(folder); err != nil {
		t.Fatal(err)
	}
	p.createFolder(t, folder)
	for _, m := range mails {
		p.deliver(t, folder, m)
	}
}

func (p *memPeer) peek(t testing.TB, folder string) []*imapclient.FetchMessageBuffer {
	t.Helper()
	c, err := imapclient.DialInsecure(p.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("support", "hunter2").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// dovecotPeer is a real Dovecot (internal/testdovecot), user support.
type dovecotPeer struct{ *testdovecot.Server }

func (p *dovecotPeer) addr() string { return p.Addr }

func (p *dovecotPeer) deliver(t testing.TB, folder string, raw []byte, flags ...imap.Flag) {
	t.Helper()
	p.Append(t, "", folder, raw, flags...)
}

func (p *dovecotPeer) peek(t testing.TB, folder string) []*imapclient.FetchMessageBuffer {
	t.Helper()
	return p.Fetch(t, "", folder)
}

func (p *dovecotPeer) createFolder(t testing.TB, name string) {
	t.Helper()
	p.CreateFolder(t, "", name)
}

func (p *dovecotPeer) renumber(t testing.TB, folder string, mails ...[]byte) {
	t.Helper()
	p.Renumber(t, "", folder, mails...)
}

// mailboxAt is the channel's configuration for the peer, reached at port
// (the peer's own, or a proxy's).
func mailboxAt(p peer, port int) email.Mailbox {
	host, _, _ := net.SplitHostPort(p.addr())
	return email.Mailbox{Name: "support", Host: host, Port: port, TLS: email.TLSNone, Username: "support", Password: "hunter2", DefaultTeam: "support-nl"}
}

func portOf(addr string) int {
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return n
}

// mailbox is the channel's configuration for the peer itself.
func mailbox(p peer) email.Mailbox { return mailboxAt(p, portOf(p.addr())) }

// world is the channel's far side: the real Redis queue and state.
type world struct {
	rdb   redis.UniversalClient
	keys  queue.Keys
	store *queue.Store
	state *queue.State
	log   *testkit.LockedBuffer
}

func newWorld(t testing.TB) *world {
	rdb, keys := testredis.Client(t)
	st := queue.NewStore(rdb, keys, 0)
	w := &world{rdb: rdb, keys: keys, store: st, state: st.State("email"), log: &testkit.LockedBuffer{}}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("DEBUGLOG") != "" {
			t.Logf("ingester log:\n%s", w.log)
		}
	})
	return w
}

// inbound returns every message in the inbound stream.
func (w *world) inbound(t testing.TB) []router.Message {
	t.Helper()
	entries, err := w.rdb.XRange(context.Background(), w.keys.Inbound(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []router.Message
	for _, e := range entries {
		var m router.Message
		if err := json.Unmarshal([]byte(e.Values["data"].(string)), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// run starts an ingester and returns its stop function.
func (w *world) run(t testing.TB, mb email.Mailbox, tweak ...func(*email.IngesterConfig)) (stop func()) {
	t.Helper()
	cfg := email.IngesterConfig{
		Mailbox: mb, Queue: w.store, State: w.state,
		Parse:      email.ParseOptions{OwnAddresses: []string{"support@winkel.example"}},
		Logger:     slog.New(slog.NewTextHandler(w.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	in, err := email.NewIngester(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = in.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func mailN(i int, extra string) []byte {
	return []byte(fmt.Sprintf("From: Klant %d <klant%d@voorbeeld.nl>\r\nTo: support@winkel.example\r\nSubject: Vraag %d\r\nDate: Mon, 10 Nov 2025 10:%02d:00 +0100\r\nMessage-ID: <vraag-%d@voorbeeld.nl>\r\n%s\r\nMijn bestelling %d is niet aangekomen.\r\n", i, i, i, i%60, i, extra, i))
}

// assertOnce: every expected source id is in the stream exactly once.
func assertOnce(t testing.TB, msgs []router.Message, want ...string) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.Metadata[email.MetaMessageID]]++
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("%s is in the inbound stream %d times, want exactly once", id, seen[id])
		}
	}
	if len(msgs) != len(want) {
		t.Errorf("%d messages in the stream, want %d", len(msgs), len(want))
	}
}

func ids(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("vraag-%d@voorbeeld.nl", i))
	}
	return out
}

// TestIngestOnceAcrossRestartsAndLeavesSeenAlone: mail already read by a
// human is ingested; a restarted ingester takes nothing twice; \Seen flags
// are not changed by us. On Dovecot the server itself restarts too, under a
// running ingester.
func TestIngestOnceAcrossRestartsAndLeavesSeenAlone(t *testing.T) {
	eachServer(t, testIngestOnceAcrossRestarts)
}

func testIngestOnceAcrossRestarts(t *testing.T, peer peer) {
	w := newWorld(t)
	peer.deliver(t, "INBOX", mailN(1, ""), imap.FlagSeen) // a colleague already read it
	peer.deliver(t, "INBOX", mailN(2, ""))
	peer.deliver(t, "INBOX", mailN(3, ""))

	stop := w.run(t, mailbox(peer))
	testkit.WaitFor(t, "three mails ingested", func() bool { return len(w.inbound(t)) >= 3 })
	stop()

	peer.deliver(t, "INBOX", mailN(4, ""))
	idling := strings.Count(w.log.String(), "idling")
	mb := mailbox(peer)
	mb.PollInterval = time.Hour // only IDLE can bring the next mail in
	stop = w.run(t, mb)
	testkit.WaitFor(t, "the fourth mail ingested after the restart", func() bool { return len(w.inbound(t)) >= 4 })
	testkit.WaitFor(t, "the ingester idling", func() bool { return strings.Count(w.log.String(), "idling") > idling })
	// New mail while idling arrives too.
	peer.deliver(t, "INBOX", mailN(5, ""))
	testkit.WaitFor(t, "the fifth mail ingested through IDLE", func() bool { return len(w.inbound(t)) >= 5 })
	want := ids(1, 5)
	if d, ok := peer.(*dovecotPeer); ok {
		// The server restarts under the idling ingester: it reconnects,
		// takes the mail that came meanwhile, and nothing twice.
		idling = strings.Count(w.log.String(), "idling")
		d.Restart(t)
		peer.deliver(t, "INBOX", mailN(6, ""))
		testkit.WaitFor(t, "the sixth mail ingested after the server restart", func() bool { return len(w.inbound(t)) >= 6 })
		testkit.WaitFor(t, "the ingester idling again", func() bool { return strings.Count(w.log.String(), "idling") > idling })
		peer.deliver(t, "INBOX", mailN(7, ""))
		testkit.WaitFor(t, "the seventh mail ingested through IDLE", func() bool { return len(w.inbound(t)) >= 7 })
		want = ids(1, 7)
	}
	stop()

	msgs := w.inbound(t)
	assertOnce(t, msgs, want...)
	for _, m := range msgs {
		if m.DefaultTeam != "support-nl" || m.Metadata[email.MetaMailbox] != "support" || m.Metadata[email.MetaUID] == "" {
			t.Errorf("message %s lacks its mailbox details: team %q meta %v", m.SourceID, m.DefaultTeam, m.Metadata)
		}
	}
	for _, m := range peer.peek(t, "INBOX") {
		seen := false
		for _, f := range m.Flags {
			seen = seen || f == imap.FlagSeen
		}
		if seen != (m.UID == 1) {
			t.Errorf("UID %d flags %v: only the mail the human read may be \\Seen", m.UID, m.Flags)
		}
	}
}

// cuttingProxy forwards to the IMAP server and cuts the first connections
// after a number of bytes from the server: a disconnect in mid-fetch.
type cuttingProxy struct {
	ln       net.Listener
	upstream string
	cutAfter int64
	cuts     atomic.Int32
	maxCuts  int32
}

func startCuttingProxy(t testing.TB, upstream string, cutAfter int64, maxCuts int32) *cuttingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{ln: ln, upstream: upstream, cutAfter: cutAfter, maxCuts: maxCuts}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *cuttingProxy) serve(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer u.Close()
	go func() { _, _ = io.Copy(u, c) }()
	if p.cuts.Add(1) <= p.maxCuts {
		_, _ = io.CopyN(c, u, p.cutAfter)
		return // both ends closed mid-stream
	}
	_, _ = io.Copy(c, u)
}

// TestDisconnectMidFetchLosesAndDoublesNothing: the connection breaks in
// the middle of downloads, several times; every mail ends up in the queue
// exactly once.
func TestDisconnectMidFetchLosesAndDoublesNothing(t *testing.T) {
	eachServer(t, testDisconnectMidFetch)
}

func testDisconnectMidFetch(t *testing.T, peer peer) {
	w := newWorld(t)
	padding := "X-Padding: " + strings.Repeat("p", 900) + "\r\n"
	for i := 1; i <= 30; i++ {
		peer.deliver(t, "INBOX", mailN(i, padding))
	}
	proxy := startCuttingProxy(t, peer.addr(), 9000, 3)
	stop := w.run(t, mailboxAt(peer, portOf(proxy.ln.Addr().String())), func(c *email.IngesterConfig) { c.BatchMessages = 4 })
	testkit.WaitFor(t, "all 30 mails ingested", func() bool { return len(w.inbound(t)) >= 30 })
	stop()
	if proxy.cuts.Load() <= 3 {
		t.Fatalf("the proxy cut %d connections, want more than 3 (3 cuts and a good one)", proxy.cuts.Load())
	}
	assertOnce(t, w.inbound(t), ids(1, 30)...)
	if !strings.Contains(w.log.String(), "reconnecting") {
		t.Errorf("disconnects must be logged:\n%s", w.log)
	}
}

// TestUIDValidityChangeResyncsWithoutDoubles: the server renumbers the
// mailbox; everything is read again and nothing is doubled.
func TestUIDValidityChangeResyncsWithoutDoubles(t *testing.T) {
	eachServer(t, testUIDValidityChange)
}

func testUIDValidityChange(t *testing.T, peer peer) {
	w := newWorld(t)
	for i := 1; i <= 3; i++ {
		peer.deliver(t, "INBOX", mailN(i, ""))
	}
	stop := w.run(t, mailbox(peer))
	testkit.WaitFor(t, "three mails ingested", func() bool { return len(w.inbound(t)) >= 3 })
	stop()

	// Rebuild the mailbox (new UIDVALIDITY), with the same mail in a new
	// order plus one new one (the server keeps the mail byte for byte).
	peer.renumber(t, "INBOX", mailN(3, ""), mailN(1, ""), mailN(4, ""), mailN(2, ""))
	stop = w.run(t, mailbox(peer))
	testkit.WaitFor(t, "the new mail ingested", func() bool { return len(w.inbound(t)) >= 4 })
	// Wait until the whole renumbered mailbox was read (the checkpoint of the
	// new UIDVALIDITY reaches UID 4).
	testkit.WaitFor(t, "the resync to finish", func() bool {
		return strings.Count(w.log.String(), "mail already ingested") >= 3
	})
	stop()
	assertOnce(t, w.inbound(t), ids(1, 4)...)
	if !strings.Contains(w.log.String(), "UIDVALIDITY changed") {
		t.Errorf("the resync must be logged:\n%s", w.log)
	}
}

// TestTooLargeAndUnreadableMail: oversized mail still becomes a message
// (headers and a note); unreadable mail is quarantined and the mailbox goes
// on.
func TestTooLargeAndUnreadableMail(t *testing.T) {
	eachServer(t, testTooLargeAndUnreadable)
}

func testTooLargeAndUnreadable(t *testing.T, peer peer) {
	w := newWorld(t)
	big, err := os.ReadFile("testdata/attachments.eml") // 12 KiB
	if err != nil {
		t.Fatal(err)
	}
	peer.deliver(t, "INBOX", mailN(1, ""))
	peer.deliver(t, "INBOX", big)
	peer.deliver(t, "INBOX", []byte(" From: nobody\r\n\r\nthis is not a mail\r\n"))
	peer.deliver(t, "INBOX", mailN(2, ""))
	mb := mailbox(peer)
	mb.MaxSize = 4096
	stop := w.run(t, mb)
	testkit.WaitFor(t, "the readable mail ingested", func() bool { return len(w.inbound(t)) >= 3 })
	stop()

	msgs := w.inbound(t)
	assertOnce(t, msgs, "vraag-1@voorbeeld.nl", "5f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f@voorbeeld.nl", "vraag-2@voorbeeld.nl")
	for _, m := range msgs {
		if m.Customer.Email == "k.bakker@voorbeeld.nl" {
			if m.Metadata[email.MetaTooLarge] != "true" || !strings.Contains(m.Body, "too large") || m.Subject != "Factuur klopt niet + foto van de schade" {
				t.Errorf("oversized mail became %+v", m)
			}
		}
	}
	q, err := w.state.List(context.Background(), email.QuarantineKey, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || !strings.Contains(q[0], `"uid":3`) || !strings.Contains(q[0], "unparseable") {
		t.Fatalf("quarantine = %v, want the unreadable mail (UID 3)", q)
	}
}

// TestMoveAndKeywordAfterIngest: ingested mail is moved (never deleted) and
// marked with the keyword.
func TestMoveAndKeywordAfterIngest(t *testing.T) {
	eachServer(t, testMoveAndKeyword)
}

func testMoveAndKeyword(t *testing.T, peer peer) {
	peer.createFolder(t, "Verwerkt")
	w := newWorld(t)
	peer.deliver(t, "INBOX", mailN(1, ""))
	peer.deliver(t, "INBOX", mailN(2, ""))
	mb := mailbox(peer)
	mb.MoveTo, mb.Keyword = "Verwerkt", "$Forgetmenot"
	stop := w.run(t, mb)
	testkit.WaitFor(t, "both mails moved", func() bool { return len(peer.peek(t, "Verwerkt")) == 2 })
	stop()
	assertOnce(t, w.inbound(t), ids(1, 2)...)
	if n := len(peer.peek(t, "INBOX")); n != 0 {
		t.Errorf("%d mails left in INBOX after the move", n)
	}
	for _, m := range peer.peek(t, "Verwerkt") {
		found := false
		for _, f := range m.Flags {
			found = found || strings.EqualFold(string(f), "$Forgetmenot")
		}
		if !found {
			t.Errorf("moved mail UID %d has flags %v, want the keyword", m.UID, m.Flags)
		}
	}
}

// TestMoveCreatesAMissingFolder: what must hold: a move_to folder that does
// not exist on the server (a typo fixed on the server later, a new
// mailbox) is created at the first move, so mail does not pile up in the
// inbox with only a log line to say why.
func TestMoveCreatesAMissingFolder(t *testing.T) {
	eachServer(t, func(t *testing.T, peer peer) {
		w := newWorld(t)
		peer.deliver(t, "INBOX", mailN(1, ""))
		mb := mailbox(peer)
		mb.MoveTo = "Verwerkt"
		stop := w.run(t, mb)
		testkit.WaitFor(t, "the mail moved out of INBOX", func() bool { return len(peer.peek(t, "INBOX")) == 0 })
		stop()
		assertOnce(t, w.inbound(t), ids(1, 1)...)
		if n := len(peer.peek(t, "Verwerkt")); n != 1 {
			t.Errorf("%d mails in the created folder, want the one moved", n)
		}
	})
}

// TestKeywordedMailIsNotTakenInAgain: mail that carries the mailbox's
// keyword was taken in before. A mailbox read again with nothing
// remembered (the checkpoint deleted to re-read it, dedup keys expired or
// removed by an erasure: here a fresh namespace) must not bring it back: an
// erased customer's mail would otherwise return as a new complaint and be
// acknowledged again. New mail still comes in.
func TestKeywordedMailIsNotTakenInAgain(t *testing.T) {
	eachServer(t, testKeywordedMailIsNotTakenInAgain)
}

func testKeywordedMailIsNotTakenInAgain(t *testing.T, peer peer) {
	peer.deliver(t, "INBOX", mailN(1, ""))
	peer.deliver(t, "INBOX", mailN(2, ""))
	mb := mailbox(peer)
	mb.Keyword = "$Forgetmenot"
	first := newWorld(t)
	stop := first.run(t, mb)
	testkit.WaitFor(t, "both mails marked", func() bool {
		marked := 0
		for _, m := range peer.peek(t, "INBOX") {
			for _, f := range m.Flags {
				if strings.EqualFold(string(f), "$Forgetmenot") {
					marked++
				}
			}
		}
		return marked == 2
	})
	stop()
	assertOnce(t, first.inbound(t), ids(1, 2)...)

	peer.deliver(t, "INBOX", mailN(3, ""))
	again := newWorld(t)
	stop = again.run(t, mb)
	testkit.WaitFor(t, "the new mail ingested", func() bool { return len(again.inbound(t)) >= 1 })
	stop()
	assertOnce(t, again.inbound(t), ids(3, 3)...)
}

// TestStalledServerIsLeftAndReadAgain: a server that accepts the
// connection and then stops answering in the middle of a FETCH (the peer's
// TCP still acknowledges, so keepalive sees nothing) must not hang intake:
// the command is given up after StallTimeout, the session reconnects, and
// every mail arrives once.
func TestStalledServerIsLeftAndReadAgain(t *testing.T) {
	eachServer(t, testStalledServer)
}

func testStalledServer(t *testing.T, peer peer) {
	w := newWorld(t)
	for i := 1; i <= 6; i++ {
		peer.deliver(t, "INBOX", append(mailN(i, ""), strings.Repeat("Het pakket is nog steeds niet bezorgd.\r\n", 500)...))
	}
	mb := mailboxAt(peer, stallProxy(t, peer.addr(), 20000))
	mb.StallTimeout = 500 * time.Millisecond
	stop := w.run(t, mb)
	testkit.WaitFor(t, "every mail ingested after the stall", func() bool { return len(w.inbound(t)) >= 6 })
	stop()
	assertOnce(t, w.inbound(t), ids(1, 6)...)
	if !strings.Contains(w.log.String(), "stopped answering") {
		t.Errorf("the stall must be logged:\n%s", w.log)
	}
}

// stallProxy forwards to upstream; on its first connection the server's
// answers stop after `after` bytes while the connection stays open.
func stallProxy(t testing.TB, upstream string, after int) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	var first atomic.Bool
	first.Store(true)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				return
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			limit := int64(-1)
			if first.Swap(false) {
				limit = int64(after)
			}
			go func() { _, _ = io.Copy(u, c) }()
			go func() {
				if limit < 0 {
					_, _ = io.Copy(c, u)
					return
				}
				_, _ = io.CopyN(c, u, limit)
				_, _ = io.Copy(io.Discard, u) // keep reading: the server sees nothing wrong
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(port)
	return n
}

// noIdleProxy hides IDLE from the server's capabilities, as servers
// without IDLE do.
func noIdleProxy(t testing.TB, upstream string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c) }()
				r := bufio.NewReader(u)
				for {
					line, err := r.ReadBytes('\n')
					if bytes.Contains(line, []byte("CAPABILITY")) {
						line = bytes.ReplaceAll(line, []byte(" IDLE"), nil)
						line = bytes.ReplaceAll(line, []byte(" IMAP4rev2"), nil)
					}
					if _, werr := c.Write(line); werr != nil || err != nil {
						return
					}
				}
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(port)
	return n
}

// TestPollingWithoutIdle: a server without IDLE is polled.
func TestPollingWithoutIdle(t *testing.T) {
	eachServer(t, testPollingWithoutIdle)
}

func testPollingWithoutIdle(t *testing.T, peer peer) {
	w := newWorld(t)
	mb := mailboxAt(peer, noIdleProxy(t, peer.addr()))
	mb.PollInterval = 50 * time.Millisecond
	stop := w.run(t, mb)
	testkit.WaitFor(t, "the poller connected", func() bool { return strings.Contains(w.log.String(), "idle=false") })
	peer.deliver(t, "INBOX", mailN(1, ""))
	testkit.WaitFor(t, "the mail ingested by polling", func() bool { return len(w.inbound(t)) >= 1 })
	stop()
	assertOnce(t, w.inbound(t), ids(1, 1)...)
}

// TestWrongPasswordIsReportedAndRetried: the check names the failure, and the
// ingester keeps trying with backoff instead of giving up.
func TestWrongPasswordIsReportedAndRetried(t *testing.T) {
	eachServer(t, testWrongPassword)
}

func testWrongPassword(t *testing.T, peer peer) {
	w := newWorld(t)
	mb := mailbox(peer)
	mb.Password = "wrong"
	in, err := email.NewIngester(email.IngesterConfig{Mailbox: mb, Queue: w.store, State: w.state,
		Logger: slog.New(slog.NewTextHandler(w.log, nil)), MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = in.Run(ctx) }()
	testkit.WaitFor(t, "several attempts", func() bool { return strings.Count(w.log.String(), "reconnecting") >= 3 })
	if err := in.Check(); err == nil || !strings.Contains(err.Error(), "logging in as support") {
		t.Errorf("Check() = %v, want the login failure", err)
	}
	cancel()
	<-done
}

// TestCheckOfASilentServerEndsInTimeAndSaysWhy: what must hold: `email
// check` against a server that takes the connection and then says nothing
// (a firewall's tarpit, a wrong port, a hung server) ends within the
// check's time, whatever the TLS mode, and names the silence instead of a
// sign-in or EOF error. The intake's own dial is bounded the same way.
func TestCheckOfASilentServerEndsInTimeAndSaysWhy(t *testing.T) {
	port := silentServer(t)
	for _, mode := range []email.TLSMode{email.TLSNone, email.TLSImplicit, email.TLSStartTLS} {
		for _, bound := range []string{"check time", "stall timeout"} {
			t.Run(string(mode)+" "+bound, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				mb := email.Mailbox{Name: "support", Host: "127.0.0.1", Port: port, TLS: mode, Username: "support", Password: "hunter2"}
				if bound == "stall timeout" { // as the intake dials: no deadline but the stall timeout
					ctx, mb.StallTimeout = context.Background(), time.Second
				}
				done := make(chan email.MailboxReport, 1)
				go func() { done <- email.CheckMailbox(ctx, mb) }()
				select {
				case r := <-done:
					if !strings.Contains(r.Error, "did not greet us") {
						t.Errorf("check of a silent server: %q, want it named as silent", r.Error)
					}
				case <-time.After(15 * time.Second): // the bound is 1 s; it took minutes before
					t.Fatal("the check of a silent server did not end")
				}
			})
		}
	}
}

// silentServer listens on a loopback port that takes every connection and
// never writes a byte (a tarpit, a hung server), until the test ends.
func silentServer(t *testing.T) (port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // kept open, never written to
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}
