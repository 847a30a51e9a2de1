package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/webhook"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// TestBenchReport measures forgetmenot against raw Redis on this machine and
// writes BENCHMARKS.md (scripts/bench runs it). It reports; it asserts
// nothing about speed.
func TestBenchReport(t *testing.T) {
	if *benchFlag == "" {
		t.Skip("benchmark report: run scripts/bench (or -faults.bench=FILE)")
	}
	ctx := context.Background()
	rep := &benchReport{started: time.Now()}
	h := newHarness(t, harnessOptions{direct: true, redisArgs: []string{"--appendonly", "yes", "--appendfsync", "everysec"}})
	h.mu.Lock()
	h.trackRouted = true
	h.mu.Unlock()
	raw := redis.NewClient(&redis.Options{Addr: h.redis.Addr(), PoolSize: 64})
	defer raw.Close()

	// Baselines: the floor any Redis queue pays, with as many concurrent
	// clients as the webhook load below.
	const clients = 32
	payload := h.newSender("payload").body(1)
	rep.xadd = rawRate(t, clients, 3*time.Second, func(i int) error {
		return raw.XAdd(ctx, &redis.XAddArgs{Stream: "bench:xadd", Values: []string{"data", string(payload), "attempt", "0"}}).Err()
	})
	ingestLua := redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[2], 'NX') then
  redis.call('XADD', KEYS[2], '*', 'data', ARGV[1], 'attempt', '0')
  return 1
end
return 0`)
	var seq atomic.Int64
	rep.lua = rawRate(t, clients, 3*time.Second, func(i int) error {
		n := seq.Add(1)
		return ingestLua.Run(ctx, raw, []string{"{bench}:dedup:" + strconv.FormatInt(n, 10), "{bench}:stream"}, payload, "M-"+strconv.FormatInt(n, 10)).Err()
	})
	// The ceiling issue 13 measures against: a 5-command routing script
	// (thread look-up, owner load, complaint write, owner set, outbox) by
	// EVALSHA from 50 clients.
	routingLua := redis.NewScript(`
local prev = redis.call('HGET', KEYS[1], ARGV[1])
local load = redis.call('SCARD', KEYS[2])
redis.call('HSET', KEYS[3], 'data', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[4], '*', 'data', ARGV[2])
return load`)
	// Measured three times, interleaved with the forgetmenot runs (before
	// the burst, after it, after the latency runs): the machine is shared,
	// and a baseline taken in a busy moment alone would skew the ratio.
	measureRoutingLua := func() {
		rate := rawRate(t, 50, 3*time.Second, func(i int) error {
			n := strconv.FormatInt(seq.Add(1), 10)
			return routingLua.Run(ctx, raw, []string{"{bench}:threads", "{bench}:owner:" + strconv.Itoa(i%8), "{bench}:complaint:" + n, "{bench}:outbox"}, "C-"+n, payload).Err()
		})
		rep.routingLuaRuns = append(rep.routingLuaRuns, rate)
		iter := raw.Scan(ctx, 0, "{bench}:*", 1000).Iterator()
		for iter.Next(ctx) {
			raw.Unlink(ctx, iter.Val())
		}
	}
	measureRoutingLua()
	if err := raw.FlushDB(ctx).Err(); err != nil { // the replicas' groups are recreated on their next read
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)

	// Saturation: as fast as 32 concurrent senders get answers, every message
	// a new complaint, until every complaint is assigned and notified. Three
	// bursts, back to back: this machine is shared, and one burst alone
	// moved by a quarter from run to run. The rate is their median, the CPU
	// their sum; commands, bytes and memory are counted on the first.
	const burst = 4000
	cpuBefore := cpuSnapshot(t, raw, h)
	for i := range 3 {
		statsBefore := testredis.CommandCalls(t, raw)
		memBefore := testredis.StoredMemory(t, raw)
		netBefore := testredis.InfoInt(t, raw, "stats", "total_net_input_bytes")
		h.mu.Lock()
		routedBefore, assignedBefore := len(h.routed), h.assignments
		h.mu.Unlock()
		sat := h.newSender(fmt.Sprintf("sat%d", i))
		began := time.Now()
		sendAll(sat, clients, burst, 0)
		waitFor(t, 5*time.Minute, "the burst to be routed and notified", func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return len(h.routed)-routedBefore >= burst && h.assignments-assignedBefore >= burst
		})
		rep.saturationRuns = append(rep.saturationRuns, float64(burst)/time.Since(began).Seconds())
		if i == 0 {
			rep.commands = commandDelta(statsBefore, testredis.CommandCalls(t, raw))
			rep.bytesIn = float64(testredis.InfoInt(t, raw, "stats", "total_net_input_bytes")-netBefore) / burst
			rep.memPerComplaint = float64(testredis.StoredMemory(t, raw)-memBefore) / burst
		}
	}
	rep.saturation = median(rep.saturationRuns)
	cpuAfter := cpuSnapshot(t, raw, h)
	perComplaint := func(before, after float64) float64 { return (after - before) / burst * 1e6 }
	perBurstComplaint := func(before, after float64) float64 { return perComplaint(before, after) / 3 }
	rep.cpu = cpuShare{
		redis:    perBurstComplaint(cpuBefore.redis, cpuAfter.redis),
		replicas: perBurstComplaint(cpuBefore.replicas, cpuAfter.replicas),
		load:     perBurstComplaint(cpuBefore.load, cpuAfter.load),
	}
	rep.burst = burst
	measureRoutingLua()

	// Latency at 10, 50 and 90 % of the saturation rate, open loop.
	for _, pct := range []int{10, 50, 90} {
		rate := rep.saturation * float64(pct) / 100
		n := int(rate * 6) // six seconds at that rate
		s := h.newSender(fmt.Sprintf("lat%d", pct))
		sent := sendAll(s, 0, n, rate)
		ids := s.acknowledged()
		waitFor(t, 5*time.Minute, fmt.Sprintf("the %d%% run to be routed", pct), func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			for _, id := range ids {
				if _, ok := h.routed[id]; !ok {
					return false
				}
			}
			return true
		})
		var e2e, ack []time.Duration
		h.mu.Lock()
		for src, id := range ids {
			e2e = append(e2e, h.routed[id].Sub(sent[src].sent))
			ack = append(ack, sent[src].got.Sub(sent[src].sent))
		}
		h.mu.Unlock()
		rep.latency = append(rep.latency, latencyRow{pct: pct, rate: rate, n: n, e2e: percentiles(e2e), ack: percentiles(ack)})
		time.Sleep(time.Second)
	}
	measureRoutingLua()
	rep.routingLua = median(rep.routingLuaRuns)
	for _, r := range h.replicas {
		r.kill()
	}

	// The ingest alone, as a ceiling for the whole: the same burst to
	// replicas whose routing is held to one worker each, timed until every
	// webhook is answered (the message durably queued). What P1 leaves for
	// routing, commit and delivery is what the two cores have beyond it.
	ing := newHarness(t, harnessOptions{direct: true, redisURL: h.redis.URL(), namespace: "ingestonly", env: []string{"FORGETMENOT_ROUTER_WORKERS=1"}})
	ingBefore := cpuSnapshot(t, raw, ing)
	began := time.Now()
	sendAll(ing.newSender("ing"), clients, burst, 0)
	rep.ingestOnly = float64(burst) / time.Since(began).Seconds()
	ingAfter := cpuSnapshot(t, raw, ing)
	rep.ingestCPU = cpuShare{
		redis:    perComplaint(ingBefore.redis, ingAfter.redis),
		replicas: perComplaint(ingBefore.replicas, ingAfter.replicas),
		load:     perComplaint(ingBefore.load, ingAfter.load),
	}
	for _, r := range ing.replicas {
		r.kill()
	}

	// RSS with 100k open complaints: seed them through the real router (in
	// this process, far faster than HTTP), then start a replica on them and
	// put 1,000 more messages through it.
	rep.seeded = 100_000
	if testing.Short() {
		rep.seeded = 10_000
	}
	ns := "bench100k"
	memBefore := testredis.StoredMemory(t, raw)
	rep.seedRate = seed(t, h.redis.URL(), ns, rep.seeded)
	rep.seedMemPerComplaint = float64(testredis.StoredMemory(t, raw)-memBefore) / float64(rep.seeded)
	big := newHarness(t, harnessOptions{direct: true, redisURL: h.redis.URL(), namespace: ns, replicas: 1})
	rep.rssIdle = rssKB(t, big.replicas[0].pid())
	bs := big.newSender("rss")
	sendAll(bs, clients, 1000, 0)
	waitFor(t, 5*time.Minute, "the 1,000 to be notified", func() bool {
		big.mu.Lock()
		defer big.mu.Unlock()
		return big.assignments >= 1000
	})
	rep.rssBusy = rssKB(t, big.replicas[0].pid())
	var list struct {
		Count int `json:"count"`
	}
	if _, err := big.apiGet("/v1/complaints?status=open&limit=50", &list); err != nil {
		t.Fatal(err)
	}
	rep.rssAfterList = rssKB(t, big.replicas[0].pid())
	// P4 at this size: the open list with a limit, a complaint shown, the
	// report of the last 28 days (every seeded complaint) and /metrics
	// scrapes (5 s apart, so none is answered from the gauges' short cache),
	// timed one by one, and the RSS after all of them.
	base := big.replicas[0].base()
	timeGet := func(path string, n int, gap time.Duration) pcts {
		var ds []time.Duration
		for range n {
			began := time.Now()
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d", path, resp.StatusCode)
			}
			ds = append(ds, time.Since(began))
			time.Sleep(gap)
		}
		return percentiles(ds)
	}
	rep.listTime = timeGet("/v1/complaints?status=open&limit=50", 20, 0)
	rep.showTime = timeGet("/v1/complaints/C-1500", 20, 0)
	rep.reportTime = timeGet("/v1/reports", 3, 0)
	rep.scrapeTime = timeGet("/metrics", 4, 5100*time.Millisecond)
	rep.rssAfterMix = rssKB(t, big.replicas[0].pid())
	rep.redisVersion = testredis.InfoField(t, raw, "server", "redis_version")

	// P3 per new complaint, counted by queue's cost test on a server of its
	// own: round trips, commands, bytes sent, memory.
	rep.costLines = goTestLines(t, h.redis.URL(), "./queue", "^TestCostPerNewComplaint$", "per new complaint:")
	// The in-process figures of queue/bench_test.go, on the same Redis.
	rep.microbench = goBench(t, h.redis.URL(), "./queue", "IngestToAssigned", "2000x")
	// The embedded default (no REDIS_URL): the rate of the first and the
	// last of five blocks of 2,000 new complaints.
	rep.embedded = goBench(t, h.redis.URL(), "./queue", "EmbeddedSteadyRate", "1x")
	// The e-mail channel against the real in-memory IMAP server: a
	// 10,000-mail backlog drained, and a new mail's way in with IDLE.
	rep.mailBench = goBench(t, h.redis.URL(), "./channels/email", "DrainMailbox|NewMailToQueueWithIdle", "5x")
	// The same way in from a real Dovecot, to the owner's notification.
	rep.dovecotBench = goBench(t, h.redis.URL(), "./internal/daemon", "EmailMailToOwnerNotifiedDovecot", "100x")

	out := rep.markdown()
	if err := os.WriteFile(*benchFlag, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s:\n%s", *benchFlag, out)
}

// rawRate runs op from n goroutines for d and returns operations per second.
func rawRate(t *testing.T, n int, d time.Duration, op func(int) error) float64 {
	var done atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	began := time.Now()
	for i := range n {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if err := op(i); err != nil {
					t.Error(err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(began).Seconds()
}

// sendAll delivers n new-complaint messages, either from `workers` senders
// as fast as answers come (rate 0) or paced at rate per second. It returns
// the first successful attempt of each source id.
func sendAll(s *sender, workers, n int, rate float64) map[string]answer {
	var mu sync.Mutex
	out := map[string]answer{}
	one := func(i int) {
		src := fmt.Sprintf("%s-%d", s.prefix, i)
		body, _ := json.Marshal(webhook.Request{
			SourceID: src,
			Customer: webhook.CustomerJSON{Name: "Bench Customer", Email: fmt.Sprintf("%s-%d@example.com", s.prefix, i)},
			Subject:  "Order " + strconv.Itoa(i),
			Body:     []string{"The kettle I ordered arrived with a cracked lid, please help.", "Mijn pakket is nog steeds niet bezorgd.", "I was charged twice on my invoice."}[i%3],
		})
		for attempt := 0; attempt < 20; attempt++ {
			r := s.h.replicas[(i+attempt)%len(s.h.replicas)]
			req, _ := http.NewRequest(http.MethodPost, r.base()+"/v1/messages", bytes.NewReader(body))
			req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, time.Now(), testSecret))
			a := answer{sent: time.Now()}
			resp, err := s.client.Do(req)
			a.got = time.Now()
			if err != nil {
				continue
			}
			var res webhook.Response
			_ = json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				s.mu.Lock()
				s.accepted[src] = res.MessageID
				s.mu.Unlock()
				mu.Lock()
				out[src] = a
				mu.Unlock()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		s.h.t.Errorf("message %s was never accepted", src)
	}
	var wg sync.WaitGroup
	if rate > 0 {
		interval := time.Duration(float64(time.Second) / rate)
		next := time.Now()
		for i := range n {
			time.Sleep(time.Until(next))
			next = next.Add(interval)
			wg.Go(func() { one(i) })
		}
	} else {
		var idx atomic.Int64
		for range workers {
			wg.Go(func() {
				for {
					i := int(idx.Add(1)) - 1
					if i >= n {
						return
					}
					one(i)
				}
			})
		}
	}
	wg.Wait()
	return out
}

// seed opens n complaints through the real router and returns the rate.
func seed(t *testing.T, url, ns string, n int) float64 {
	ctx := context.Background()
	rdb, err := queue.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	keys, _ := queue.NewKeys(ns)
	store := queue.NewStore(rdb, keys, 0)
	root := repoRoot(t)
	roster, err := configs.LoadRoster(filepath.Join(root, "configs", "owners.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := configs.LoadRouting(filepath.Join(root, "configs", "routing.yaml"), roster)
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(router.Config{Store: store, Directory: roster, Rules: rules, ReopenWindow: 14 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var idx atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for range 8 {
		wg.Go(func() {
			for {
				i := int(idx.Add(1)) - 1
				if i >= n {
					return
				}
				msg := router.Message{
					ID: queue.NewMessageID(time.Now()), Channel: router.ChannelWebhook, SourceID: "seed-" + strconv.Itoa(i),
					Customer: router.Customer{Name: "Seeded Customer", Email: fmt.Sprintf("seed-%d@example.com", i)},
					Subject:  "Order " + strconv.Itoa(i), Body: "The kettle I ordered arrived with a cracked lid, please help.",
					ReceivedAt: time.Now(),
				}
				if _, err := r.Route(ctx, msg); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	rate := float64(n) / time.Since(began).Seconds()
	// No daemon has read this namespace yet: drop the notifications the
	// seeding queued, which a real deployment would long have delivered.
	if err := rdb.Del(ctx, keys.Outbox()).Err(); err != nil {
		t.Fatal(err)
	}
	return rate
}

func commandDelta(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 && k != "info" {
			out[k] = d
		}
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func rates(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(parts, ", ")
}

// goTestLines runs one test of a package verbosely and returns its log
// lines that contain marker.
func goTestLines(t *testing.T, url, pkg, run, marker string) string {
	cmd := exec.Command("go", "test", pkg, "-run", run, "-count", "1", "-v")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "FORGETMENOT_TEST_REDIS_URL="+url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s %s: %v\n%s", pkg, run, err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, marker) || strings.HasPrefix(strings.TrimSpace(l), "--- ") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return strings.Join(lines, "\n")
}

func rssKB(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// goBench runs a package's Go benchmarks on the report's Redis and returns
// their result lines.
func goBench(t *testing.T, url, pkg, pattern, benchtime string) string {
	cmd := exec.Command("go", "test", pkg, "-run", "^$", "-bench", pattern, "-benchtime", benchtime, "-count", "1")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "FORGETMENOT_TEST_REDIS_URL="+url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("benchmarks of %s: %v\n%s", pkg, err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Benchmark") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

type pcts struct{ p50, p99 time.Duration }

func percentiles(ds []time.Duration) pcts {
	if len(ds) == 0 {
		return pcts{}
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(int(q*float64(len(ds))), len(ds)-1)] }
	return pcts{at(0.50), at(0.99)}
}

type latencyRow struct {
	pct      int
	rate     float64
	n        int
	e2e, ack pcts
}

type benchReport struct {
	started                              time.Time
	xadd, lua, routingLua, saturation    float64
	routingLuaRuns, saturationRuns       []float64
	bytesIn                              float64
	listTime, showTime, reportTime       pcts
	scrapeTime                           pcts
	rssAfterMix                          int64
	costLines, embedded                  string
	burst                                int
	commands                             map[string]int64
	memPerComplaint, seedMemPerComplaint float64
	latency                              []latencyRow
	seeded                               int
	seedRate                             float64
	rssIdle, rssBusy, rssAfterList       int64
	redisVersion, microbench, mailBench  string
	dovecotBench                         string
	// cpu is the CPU time per complaint of the burst, in µs, by process.
	cpu cpuShare
	// ingestOnly is the rate of the same burst with routing held to one
	// worker per replica, until every webhook was answered; ingestCPU its
	// CPU time per message.
	ingestOnly float64
	ingestCPU  cpuShare
}

// cpuShare is the CPU time one complaint of the burst cost each process.
type cpuShare struct{ redis, replicas, load float64 }

// cpuSnapshot is the CPU time (user + system, seconds) used so far by Redis
// (its INFO), the replicas and this process (the load generator and the
// harness reading the replicas' logs).
func cpuSnapshot(t *testing.T, raw *redis.Client, h *harness) cpuShare {
	var c cpuShare
	for _, f := range []string{"used_cpu_sys", "used_cpu_user"} {
		v, _ := strconv.ParseFloat(testredis.InfoField(t, raw, "cpu", f), 64)
		c.redis += v
	}
	for _, r := range h.replicas {
		c.replicas += processCPU(r.pid())
	}
	c.load = processCPU(os.Getpid())
	return c
}

// processCPU is the CPU time pid has used, in seconds (0 if unknown).
func processCPU(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces), from field 3.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks (USER_HZ)
}

func (r *benchReport) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	total := int64(0)
	for _, v := range r.commands {
		total += v
	}
	type kv struct {
		k string
		v int64
	}
	var cmds []kv
	for k, v := range r.commands {
		cmds = append(cmds, kv{k, v})
	}
	slices.SortFunc(cmds, func(a, b kv) int { return int(b.v - a.v) })
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

	w("# forgetmenot benchmarks")
	w("")
	w("Measured by `scripts/bench` on %s. Everything ran on this one machine at", r.started.UTC().Format("2006-01-02 15:04 UTC"))
	w("once: Redis, the forgetmenot replicas and the load generator share its")
	w("cores, so the absolute figures are a floor for a real deployment, where")
	w("Redis has a machine of its own. The ratios are the point. Performance is")
	w("reported here, never asserted in tests.")
	w("")
	w("## Machine")
	w("")
	w("| | |")
	w("|---|---|")
	w("| CPU | %s, %d cores visible to Go |", cpuModel(), runtime.NumCPU())
	w("| memory | %s |", memTotal())
	w("| load average when the run began | %s |", loadAvg())
	w("| OS | %s/%s, kernel %s |", runtime.GOOS, runtime.GOARCH, kernel())
	w("| Go | %s |", runtime.Version())
	w("| Redis | %s, `appendonly yes`, `appendfsync everysec`, on loopback |", r.redisVersion)
	w("| forgetmenot | 2 `serve` replicas (%d router and %d delivery workers each), console notifier, JSON logs |", routerWorkers, deliveryWorkers)
	w("")
	w("## Throughput: webhook to owner assigned")
	w("")
	w("| what | per second | ratio to raw XADD |")
	w("|---|---:|---:|")
	w("| raw Redis `XADD` of a typical message (32 clients) | %.0f | 1 |", r.xadd)
	w("| the equivalent Lua script: dedup `SET NX` + `XADD` (32 clients) | %.0f | %.2f |", r.lua, r.lua/r.xadd)
	w("| forgetmenot: signed webhook → stored → routed → owner assigned → notified (32 HTTP senders, %d new complaints; the median of 3 bursts: %s) | %.0f | %.3f |", r.burst, rates(r.saturationRuns), r.saturation, r.saturation/r.xadd)
	w("")
	w("**P1**: forgetmenot runs at **%.3f×** the 5-command routing script", r.saturation/r.routingLua)
	w("(`HGET`, `SCARD`, `HSET`, `SADD`, `XADD` by EVALSHA from 50 clients:")
	w("%.0f/s in this run, the median of %s measured before the bursts, after them", r.routingLua, rates(r.routingLuaRuns))
	w("and after the latency runs; issue 13's target is 0.12×).")
	w("")
	w("Each forgetmenot complaint costs an HTTP request with an HMAC check, the")
	w("idempotent ingest script, its share of a stream read, the routing reads")
	w("(thread keys, customer history, owner loads) in one script, one guarded")
	w("commit script (which copies the customer's message from the inbound")
	w("entry instead of receiving it again), and the delivery of its")
	w("notification from the outbox stream; stream entries are acknowledged a")
	w("batch at a time with the next read.")
	w("")
	w("Where the CPU of the three bursts went, per complaint (all on these %d cores, so", runtime.NumCPU())
	w("their sum bounds the rate):")
	w("")
	w("| process | CPU per complaint |")
	w("|---|---:|")
	w("| Redis | %.0f µs |", r.cpu.redis)
	w("| the 2 replicas together | %.0f µs |", r.cpu.replicas)
	w("| the load generator (32 HTTP senders signing every request, and the harness reading the replicas' logs) | %.0f µs |", r.cpu.load)
	sum := r.cpu.redis + r.cpu.replicas + r.cpu.load
	w("| all | %.0f µs: at most %.0f complaints/s on %d cores |", sum, float64(runtime.NumCPU())*1e6/max(sum, 1), runtime.NumCPU())
	w("")
	ingSum := r.ingestCPU.redis + r.ingestCPU.replicas + r.ingestCPU.load
	target := 0.12 * r.routingLua
	w("**The ingest alone, for scale.** The same %d-message burst to replicas whose", r.burst)
	w("routing was held to one worker each, timed until every webhook was")
	w("answered (each message durably queued): **%.0f/s, %.3f×** the routing script.", r.ingestOnly, r.ingestOnly/r.routingLua)
	w("It cost %.0f µs of CPU per message (Redis %.0f, replicas %.0f, load generator %.0f;", ingSum, r.ingestCPU.redis, r.ingestCPU.replicas, r.ingestCPU.load)
	w("the one routing worker's share included). At P1's target, %.0f complaints/s, the", target)
	w("%d cores have %.0f µs per complaint in all; after the ingest that leaves %.0f µs", runtime.NumCPU(), float64(runtime.NumCPU())*1e6/max(target, 1), float64(runtime.NumCPU())*1e6/max(target, 1)-ingSum)
	w("for routing, commit and delivery, which cost %.0f µs in the bursts above.", sum-ingSum)
	w("")
	w("## Latency at 10, 50 and 90 %% of the saturation rate")
	w("")
	w("Open loop (messages sent at a fixed rate whatever the answers), six")
	w("seconds per step. *Acknowledged* is the webhook's 202 (the message is")
	w("durably queued); *assigned* is until the routing commit gave the")
	w("complaint its owner (the daemon's \"message routed\" log time). Near")
	w("saturation this is sensitive to anything else running on the machine: when")
	w("capacity dips below the offered rate, messages wait in the inbound stream,")
	w("and the assigned latency is mostly that wait.")
	w("")
	w("| load | rate /s | messages | acknowledged p50 | p99 | assigned p50 | p99 |")
	w("|---|---:|---:|---:|---:|---:|---:|")
	for _, l := range r.latency {
		w("| %d %% | %.0f | %d | %s | %s | %s | %s |", l.pct, l.rate, l.n, ms(l.ack.p50), ms(l.ack.p99), ms(l.e2e.p50), ms(l.e2e.p99))
	}
	w("")
	w("## Redis cost per complaint")
	w("")
	w("From `INFO commandstats` and `used_memory` around the first %d-complaint burst", r.burst)
	w("(including the replicas' idle polling during it):")
	w("")
	w("- **%.1f Redis commands per complaint** (Lua-internal calls counted once per command they run):", float64(total)/float64(r.burst))
	w("")
	w("| command | calls per complaint |")
	w("|---|---:|")
	for _, c := range cmds {
		w("| %s | %.2f |", c.k, float64(c.v)/float64(r.burst))
	}
	w("")
	w("- **%.0f bytes sent to Redis per complaint** (`total_net_input_bytes`, all clients, webhook bodies of ~250 bytes).", r.bytesIn)
	w("- **%.0f bytes of Redis memory per complaint** in the burst (one message, its", r.memPerComplaint)
	w("  timeline, indexes and dedup key); **%.0f bytes** over %d seeded complaints.", r.seedMemPerComplaint, r.seeded)
	w("")
	w("## Daemon memory with %d open complaints", r.seeded)
	w("")
	w("%d complaints were opened through the real router (%.0f/s from 8", r.seeded, r.seedRate)
	w("in-process workers), then one replica was started on them.")
	w("")
	w("| when | RSS |")
	w("|---|---:|")
	w("| started, idle | %.1f MiB |", float64(r.rssIdle)/1024)
	w("| after routing 1,000 more messages | %.1f MiB |", float64(r.rssBusy)/1024)
	w("| after listing open complaints via the API | %.1f MiB |", float64(r.rssAfterList)/1024)
	w("| after 20 lists, 20 shows, 3 reports (28 days: every seeded complaint) and 4 `/metrics` scrapes | %.1f MiB |", float64(r.rssAfterMix)/1024)
	w("")
	w("| request at %d open (P4) | p50 | max |", r.seeded)
	w("|---|---:|---:|")
	w("| `GET /v1/complaints?status=open&limit=50` | %s | %s |", ms(r.listTime.p50), ms(r.listTime.p99))
	w("| `GET /v1/complaints/{id}` | %s | %s |", ms(r.showTime.p50), ms(r.showTime.p99))
	w("| `GET /v1/reports` (28 days) | %s | %s |", ms(r.reportTime.p50), ms(r.reportTime.p99))
	w("| `GET /metrics` (not cached) | %s | %s |", ms(r.scrapeTime.p50), ms(r.scrapeTime.p99))
	w("")
	w("Gauges come from indexes the commits keep (`SCARD` per owner, `ZCOUNT` of")
	w("each owner's due index, the promise indexes), never from the open")
	w("complaints; the report adds up the period's complaints 500 at a time.")
	w("")
	w("## Per new complaint, counted (P3)")
	w("")
	w("`queue`'s `TestCostPerNewComplaint` on a redis-server of its own: round")
	w("trips from the daemon (a command or a pipeline each, plus the stream reads),")
	w("Redis commands (sent and run inside scripts, from `INFO commandstats`),")
	w("bytes sent for a 450-byte message, and `used_memory` growth. Issue 13's")
	w("targets: 5 round trips, 20 commands, 2 KB, 2.5 KB.")
	w("")
	w("```")
	w("%s", r.costLines)
	w("```")
	w("")
	w("The daemon keeps no complaint state in memory: its size does not grow with")
	w("the number of open complaints; Redis's does (see above).")
	w("")
	w("## In-process figures (`queue/bench_test.go`, same Redis)")
	w("")
	w("One client, sequential, no HTTP: the cost of each layer on its own.")
	w("")
	w("```")
	w("%s", r.microbench)
	w("```")
	w("")
	w("## Embedded default (`queue`'s `EmbeddedSteadyRate`)")
	w("")
	w("Without `REDIS_URL` the daemon runs on the embedded in-memory Redis: five")
	w("blocks of 2,000 new complaints routed one after the other, the rate of the")
	w("first and the last block (steady: `last/first` near 1).")
	w("")
	w("```")
	w("%s", r.embedded)
	w("```")
	w("")
	w("## E-mail intake (`channels/email/bench_test.go`, same Redis)")
	w("")
	w("A 10,000-mail backlog read from go-imap's in-memory IMAP server into the")
	w("inbound stream (`DrainMailbox`, messages/s), and one new mail from delivery")
	w("to the queue while the mailbox is in IDLE (`NewMailToQueueWithIdle`, ns/op).")
	w("")
	w("```")
	w("%s", r.mailBench)
	w("```")
	w("")
	w("## E-mail from a real Dovecot to the owner (`internal/daemon`, same Redis)")
	w("")
	w("A mail appended to a real Dovecot mailbox (IMAP APPEND) until its owner is")
	w("notified, through IDLE, the queue and the router: p50 and p99 in ms. Dovecot")
	w("tells an idling client of new mail only after its own notify delay of about")
	w("500 ms, which is the floor of these figures, not forgetmenot's cost.")
	w("")
	w("```")
	w("%s", r.dovecotBench)
	w("```")
	return b.String()
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return fmt.Sprintf("%.1f GiB", float64(kb)/1024/1024)
		}
	}
	return "unknown"
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}
