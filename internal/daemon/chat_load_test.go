package daemon_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
)

// raiseFileLimit makes room for n more open files in this process (client
// and server ends of every socket live here).
func raiseFileLimit(t testing.TB, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Fatalf("this test needs %d open files; the hard limit is %d (raise it: ulimit -Hn)", n, lim.Max)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}

// upgrade sends a WebSocket handshake from the loopback address from and
// returns the connection and the status code of the answer.
func upgrade(addr, from string) (net.Conn, int, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = io.WriteString(conn, "GET /chat/ws HTTP/1.1\r\nHost: "+addr+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, resp.StatusCode, nil
}

// openSockets opens perIP upgrade attempts from each address, 32 at a time,
// and returns the open sockets and the answers counted per address.
func openSockets(t testing.TB, addr string, from []string, perIP int) ([]net.Conn, map[string]map[int]int) {
	t.Helper()
	var mu sync.Mutex
	var open []net.Conn
	counts := map[string]map[int]int{}
	work := make(chan string)
	var wg sync.WaitGroup
	var firstErr error
	for range 32 {
		wg.Go(func() {
			for ip := range work {
				conn, code, err := upgrade(addr, ip)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if counts[ip] == nil {
					counts[ip] = map[int]int{}
				}
				counts[ip][code]++
				if code == http.StatusSwitchingProtocols {
					open = append(open, conn)
				} else if conn != nil {
					conn.Close()
				}
				mu.Unlock()
			}
		})
	}
	for i := range perIP {
		for _, ip := range from {
			_ = i
			work <- ip
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("a handshake failed outright (the server must answer every one): %v", firstErr)
	}
	return open, counts
}

// TestChatSocketCapsHoldWith2000SocketsAndTheAPIStaysResponsive: 2,000
// sockets from four addresses against caps of 400 per address and 1,500 in
// all. Exactly 1,500 open, no address above 400, every other attempt gets a
// clear refusal, the metrics say so, and the API answers meanwhile.
func TestChatSocketCapsHoldWith2000SocketsAndTheAPIStaysResponsive(t *testing.T) {
	raiseFileLimit(t, 8000)
	r := start(t, testredis.URL(t), withChat, func(c *configs.Config) {
		c.ChatMaxConnectionsPerIP, c.ChatMaxConnections = 400, 1500
		c.ChatHelloTimeout = configs.Duration(time.Minute) // they stay silent for the test
	})
	addr := strings.TrimPrefix(r.base, "http://")
	from := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}

	apiDone := make(chan []time.Duration)
	stop := make(chan struct{})
	go func() { // the API is asked throughout
		var took []time.Duration
		for {
			select {
			case <-stop:
				apiDone <- took
				return
			default:
			}
			t0 := time.Now()
			resp, err := http.Get(r.base + "/v1/complaints?status=open")
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("the API did not answer while the chat was full: %v %v", err, resp)
			} else {
				took = append(took, time.Since(t0))
				resp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	open, counts := openSockets(t, addr, from, 500)
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	// While all 1,500 are open: the API still answers.
	code, _ := r.call("GET", "/v1/complaints?status=open", nil, "")
	close(stop)
	took := <-apiDone
	if code != 200 || len(took) == 0 {
		t.Fatalf("API answered %d (%d answers during the run)", code, len(took))
	}
	var worst time.Duration
	for _, d := range took {
		worst = max(worst, d)
	}
	t.Logf("API during the run: %d answers, slowest %s (latency is measured by BenchmarkAPIWhileChatSocketsAreOpen)", len(took), worst)

	accepted, refused := 0, map[int]int{}
	for ip, byCode := range counts {
		if byCode[101] > 400 {
			t.Errorf("%s holds %d sockets, over the cap of 400", ip, byCode[101])
		}
		for code, n := range byCode {
			if code == 101 {
				accepted += n
			} else {
				refused[code] += n
			}
		}
	}
	if accepted != 1500 || refused[429]+refused[503] != 500 || len(refused) > 2 {
		t.Fatalf("accepted %d, refused %v; want 1500 open and 500 refused with 429 (address) or 503 (capacity)", accepted, refused)
	}
	metric := func(name string) string {
		resp, err := http.Get(r.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				return v
			}
		}
		return ""
	}
	if got := metric("forgetmenot_chat_sockets"); got != "1500" {
		t.Errorf("forgetmenot_chat_sockets = %q, want 1500", got)
	}
	ip, capacity := metric(`forgetmenot_chat_refused_total{reason="ip_limit"}`), metric(`forgetmenot_chat_refused_total{reason="capacity"}`)
	if ip != fmt.Sprint(refused[429]) || capacity != fmt.Sprint(refused[503]) {
		t.Errorf("refusal metrics ip_limit=%s capacity=%s, want %d and %d", ip, capacity, refused[429], refused[503])
	}
	// Closing them frees the slots.
	for _, c := range open {
		c.Close()
	}
	open = nil
	testkit.WaitFor(t, "the sockets to be released", func() bool { return metric("forgetmenot_chat_sockets") == "0" })
	if _, code, err := upgrade(addr, "127.0.0.1"); err != nil || code != 101 {
		t.Fatalf("after the flood a visitor gets in: %d %v", code, err)
	}
}

// BenchmarkAPIWhileChatSocketsAreOpen measures an API call with 1,000 idle
// chat sockets open on the daemon.
func BenchmarkAPIWhileChatSocketsAreOpen(b *testing.B) {
	raiseFileLimit(b, 4000)
	r := start(b, testredis.URL(b), withChat, func(c *configs.Config) {
		c.ChatMaxConnectionsPerIP = 1000
		c.ChatHelloTimeout = configs.Duration(time.Minute)
	})
	open, _ := openSockets(b, strings.TrimPrefix(r.base, "http://"), []string{"127.0.0.1"}, 1000)
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.Get(r.base + "/v1/complaints?status=open")
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("%v %v", err, resp)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
