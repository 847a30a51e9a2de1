package faults_test

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/redis/go-redis/v9"
)

var (
	cyclesFlag = flag.Int("faults.cycles", 0, "kill -9 cycles in the kill scenario (0: 3, or 2 with -short)")
	benchFlag  = flag.String("faults.bench", "", "run the benchmark report and write it to this file (scripts/bench)")
)

// binPath is the forgetmenot binary built once for the whole suite.
var binPath string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "forgetmenot-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "forgetmenot")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/forgetmenot/forgetmenot/cmd/forgetmenot")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building forgetmenot: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is where configs/ lives.
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// needRedis skips (or, under CI, fails) when redis-server is missing.
func needRedis(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range append([]string{"redis-server"}, bins...) {
		if _, err := exec.LookPath(b); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required: %v", b, err)
			}
			t.Skipf("%s is not installed: %v", b, err)
		}
	}
}

const testSecret = "faults-secret-0123456789abcdef"

// Settings of the replicas under test: a short reclaim idle so takeovers
// happen within a scenario, few attempts so poison reaches the dead letters
// quickly, and JSON logs the harness reads notifications from.
const (
	reclaimIdle     = 3 * time.Second
	maxAttempts     = 3
	routerWorkers   = 8 // the default
	deliveryWorkers = 2
	maxMessageBytes = 8192
)

type harnessOptions struct {
	replicas int
	// redisArgs are extra redis-server arguments (persistence).
	redisArgs []string
	// redisURL, when set, is used instead of a private redis-server (a
	// cluster); no proxy is put in front of it.
	redisURL string
	// direct connects the replicas to Redis without the fault proxy (for
	// benchmarks).
	direct bool
	// namespace, when set, replaces the fresh random one.
	namespace string
	env       []string
	// beforeStart, when set, runs before the first start of each replica
	// (a test of the harness takes the replica's port there).
	beforeStart func(r *replica)
}

// harness is one scenario's world: a redis-server, a proxy per replica, the
// replicas, and what their logs told.
type harness struct {
	t        testing.TB
	dir      string
	redis    *testredis.Server
	ns       string
	rdb      redis.UniversalClient
	store    *queue.Store
	replicas []*replica
	opts     harnessOptions

	mu sync.Mutex
	// notified counts how often each notification id was logged as
	// "complaint assigned", over all replicas and restarts.
	notified map[string]int
	// routed records when each message was routed ("message routed" log
	// lines), when trackRouted is set.
	trackRouted bool
	routed      map[string]time.Time
	assignments int
	races       int
	log         *os.File
	logw        *bufio.Writer // buffers log; written under mu
	logLines    int
}

func newHarness(t testing.TB, opts harnessOptions) *harness {
	t.Helper()
	needRedis(t)
	if opts.replicas == 0 {
		opts.replicas = 2
	}
	h := &harness{t: t, dir: t.TempDir(), ns: testredis.Namespace(), notified: map[string]int{}, routed: map[string]time.Time{}, opts: opts}
	if opts.namespace != "" {
		h.ns = opts.namespace
	}
	var err error
	h.log, err = os.Create(filepath.Join(h.dir, "replicas.log"))
	if err != nil {
		t.Fatal(err)
	}
	h.logw = bufio.NewWriterSize(h.log, 256<<10)
	url := opts.redisURL
	if url == "" {
		h.redis, err = testredis.StartServer(h.dir, opts.redisArgs...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.redis.Cleanup)
		url = h.redis.URL()
	}
	h.rdb, err = queue.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.rdb.Close() })
	keys, err := queue.NewKeys(h.ns)
	if err != nil {
		t.Fatal(err)
	}
	h.store = queue.NewStore(h.rdb, keys, 0)
	for i := range opts.replicas {
		r := &replica{h: h, name: fmt.Sprintf("replica-%c", 'a'+i)}
		port, err := testredis.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		r.port = port
		r.redisURL = url
		if opts.redisURL == "" && !opts.direct {
			r.proxy = startProxy(t, h.redis.Addr())
			r.redisURL = "redis://" + r.proxy.Addr()
		}
		h.replicas = append(h.replicas, r)
	}
	t.Cleanup(func() {
		for _, r := range h.replicas {
			r.kill()
		}
		h.mu.Lock()
		_ = h.logw.Flush()
		h.mu.Unlock()
		_ = h.log.Close()
		if t.Failed() {
			t.Logf("replica logs kept in %s", h.log.Name())
			if b, err := os.ReadFile(h.log.Name()); err == nil {
				// The last lines of each replica, so a busy replica's lines
				// do not hide why another one died.
				per := map[string][]string{}
				var names []string
				for _, l := range strings.Split(string(b), "\n") {
					if l == "" {
						continue // the end of the last line
					}
					name, _, _ := strings.Cut(l, "#")
					if _, seen := per[name]; !seen {
						names = append(names, name)
					}
					if per[name] = append(per[name], l); len(per[name]) > 40 {
						per[name] = per[name][1:]
					}
				}
				for _, name := range names {
					t.Logf("last log lines of %s:\n%s", name, strings.Join(per[name], "\n"))
				}
			}
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.races > 0 {
			t.Errorf("the race detector reported %d data race(s) in the replicas (see the log)", h.races)
		}
	})
	for _, r := range h.replicas {
		if opts.beforeStart != nil {
			opts.beforeStart(r)
		}
		r.start()
	}
	for _, r := range h.replicas {
		r.waitFirstReady()
	}
	return h
}

// waitFirstReady waits for a replica's first start. The port FreePort chose
// was free when it was chosen, not necessarily when the replica binds it:
// with many tests running, another listener or a client connection's
// ephemeral port can take it in between, and the replica exits with
// "address already in use". It then starts again on another port, a few
// times. (Restarts keep their port, as a StatefulSet pod would.)
func (r *replica) waitFirstReady() {
	r.h.t.Helper()
	for tries := 1; ; tries++ {
		if _, ok := r.awaitReady(); ok {
			return
		}
		if !r.portTaken.Load() || tries == 3 {
			r.h.t.Fatalf("%s exited before it was ready (see its log lines below)", r.name)
		}
		port, err := testredis.FreePort()
		if err != nil {
			r.h.t.Fatal(err)
		}
		r.h.t.Logf("%s could not listen on port %d (taken since it was chosen); starting it on %d", r.name, r.port, port)
		r.mu.Lock()
		r.port = port
		r.mu.Unlock()
		r.portTaken.Store(false)
		r.start()
	}
}

// observe reads one log line of a replica.
func (h *harness) observe(name, line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Buffered: at a few thousand lines a second, a write per line costs
	// the machine the benchmark measures; flushed when the test ends.
	fmt.Fprintf(h.logw, "%s %s\n", name, line)
	h.logLines++
	if strings.Contains(line, "WARNING: DATA RACE") {
		h.races++
	}
	if !strings.HasPrefix(line, "{") {
		return
	}
	var rec struct {
		Time         time.Time `json:"time"`
		Msg          string    `json:"msg"`
		Notification string    `json:"notification"`
		Message      string    `json:"message"`
	}
	if json.Unmarshal([]byte(line), &rec) != nil {
		return
	}
	switch rec.Msg {
	case "complaint assigned":
		h.notified[rec.Notification]++
		h.assignments++
	case "message routed":
		if _, seen := h.routed[rec.Message]; h.trackRouted && !seen {
			h.routed[rec.Message] = rec.Time
		}
	}
}

func (h *harness) notifiedCount(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.notified[id]
}

// replica is one `forgetmenot serve` process; it keeps its port and consumer
// name across restarts, as a StatefulSet pod would.
type replica struct {
	h        *harness
	name     string
	port     int
	redisURL string
	proxy    *proxy

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	starts  int
	stopped bool
	// portTaken is set when the process said its HTTP port was in use.
	portTaken atomic.Bool
}

func (r *replica) base() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "http://127.0.0.1:" + strconv.Itoa(r.port)
}

func (r *replica) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FORGETMENOT_") {
			env = append(env, kv)
		}
	}
	root := repoRoot(r.h.t)
	env = append(env,
		"FORGETMENOT_REDIS_URL="+r.redisURL,
		"FORGETMENOT_NAMESPACE="+r.h.ns,
		"FORGETMENOT_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(r.port),
		"FORGETMENOT_OWNERS_FILE="+filepath.Join(root, "configs", "owners.yaml"),
		"FORGETMENOT_ROUTING_FILE="+filepath.Join(root, "configs", "routing.yaml"),
		"FORGETMENOT_WEBHOOK_SECRET="+testSecret,
		"FORGETMENOT_CONSUMER_NAME="+r.name,
		"FORGETMENOT_RECLAIM_IDLE="+reclaimIdle.String(),
		"FORGETMENOT_MAX_ATTEMPTS="+strconv.Itoa(maxAttempts),
		"FORGETMENOT_ROUTER_WORKERS="+strconv.Itoa(routerWorkers),
		"FORGETMENOT_DELIVERY_WORKERS="+strconv.Itoa(deliveryWorkers),
		"FORGETMENOT_MAX_MESSAGE_BYTES="+strconv.Itoa(maxMessageBytes),
		"FORGETMENOT_SHUTDOWN_TIMEOUT=5s",
		"FORGETMENOT_LOG_FORMAT=json",
	)
	return append(env, r.h.opts.env...)
}

// start launches the process; its output goes to the harness line by line.
func (r *replica) start() {
	r.h.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(binPath, "serve")
	// From the repository root, like the quick start: every configs/ default
	// resolves, including files added after this harness was written.
	cmd.Dir = repoRoot(r.h.t)
	cmd.Env = r.env()
	pr, pw, err := os.Pipe()
	if err != nil {
		r.h.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		r.h.t.Fatalf("starting %s: %v", r.name, err)
	}
	_ = pw.Close()
	r.starts++
	name := fmt.Sprintf("%s#%d", r.name, r.starts)
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "address already in use") {
				r.portTaken.Store(true)
			}
			r.h.observe(name, sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
		_ = pr.Close()
		_ = cmd.Wait()
		close(exited)
	}()
	r.cmd, r.exited, r.stopped = cmd, exited, false
}

// waitReady waits until /readyz answers 200 (Redis reachable).
func (r *replica) waitReady() time.Duration {
	r.h.t.Helper()
	d, ok := r.awaitReady()
	if !ok {
		r.h.t.Fatalf("%s exited before it was ready (see its log lines below)", r.name)
	}
	return d
}

var readyClient = &http.Client{Timeout: 2 * time.Second}

// awaitReady waits until /readyz answers 200; false when the process exited
// first.
func (r *replica) awaitReady() (time.Duration, bool) {
	r.h.t.Helper()
	began := time.Now()
	r.mu.Lock()
	exited := r.exited
	r.mu.Unlock()
	gone := false
	waitFor(r.h.t, 30*time.Second, r.name+" to be ready", func() bool {
		select {
		case <-exited:
			gone = true
			return true
		default:
		}
		// Bounded: whatever took the port may accept and never answer.
		resp, err := readyClient.Get(r.base() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return time.Since(began), !gone
}

// kill sends SIGKILL (kill -9) and waits until the process is gone.
func (r *replica) kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process must run to die cleanly in tests
	_ = cmd.Process.Kill()
	<-exited
}

func (r *replica) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		if err := r.cmd.Process.Signal(sig); err != nil {
			r.h.t.Errorf("signalling %s: %v", r.name, err)
		}
	}
}

func (r *replica) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// waitFor polls cond until it holds or limit passes. Limits are generous
// bounds on "eventually", never measurements.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiGet reads a JSON API answer from the first replica that answers.
func (h *harness) apiGet(path string, out any) (int, error) {
	var lastErr error
	for _, r := range h.replicas {
		resp, err := http.Get(r.base() + path)
		if err != nil {
			lastErr = err
			continue
		}
		defer resp.Body.Close()
		if out != nil {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil && resp.StatusCode == http.StatusOK {
				return resp.StatusCode, err
			}
		}
		return resp.StatusCode, nil
	}
	return 0, lastErr
}

func (h *harness) apiPost(path string, body any) (int, error) {
	b, _ := json.Marshal(body)
	var lastErr error
	for _, r := range h.replicas {
		resp, err := http.Post(r.base()+path, "application/json", strings.NewReader(string(b)))
		if err != nil {
			lastErr = err
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	return 0, lastErr
}

// The harness itself: a replica whose chosen port was taken before it could
// listen (by another test's listener or a client's ephemeral port) is
// started on another port instead of failing the scenario.
func TestHarnessMovesAReplicaOffATakenPort(t *testing.T) {
	var held []net.Listener
	t.Cleanup(func() {
		for _, l := range held {
			_ = l.Close()
		}
	})
	h := newHarness(t, harnessOptions{replicas: 1, beforeStart: func(r *replica) {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(r.port))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
	}})
	r := h.replicas[0]
	if taken := held[0].Addr().(*net.TCPAddr).Port; r.port == taken {
		t.Fatalf("%s is ready on port %d, which the test holds", r.name, taken)
	}
	if r.starts != 2 {
		t.Errorf("%s was started %d times; want 2 (the taken port, then another)", r.name, r.starts)
	}
	resp, err := http.Get(r.base() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %d", resp.StatusCode)
	}
}
