package queue_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// costCounter is a go-redis hook that counts what the daemon sends: round
// trips (a command or a pipeline each), commands and bytes written.
type costCounter struct {
	mu                   sync.Mutex
	trips, cmds, written int64
	byName               map[string]int64
}

func (c *costCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *costCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmd)
		c.mu.Lock()
		c.trips++
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (c *costCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.add(cmd)
		}
		c.mu.Lock()
		c.trips++
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

// add counts cmd and the bytes of its RESP encoding.
func (c *costCounter) add(cmd redis.Cmder) {
	n := int64(len(fmt.Sprintf("*%d\r\n", len(cmd.Args()))))
	for _, a := range cmd.Args() {
		var s string
		switch v := a.(type) {
		case string:
			s = v
		case []byte:
			s = string(v)
		default:
			s = fmt.Sprint(v)
		}
		n += int64(len(fmt.Sprintf("$%d\r\n", len(s)))) + int64(len(s)) + 2
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cmds++
	c.written += n
	if c.byName == nil {
		c.byName = map[string]int64{}
	}
	c.byName[cmd.Name()]++
}

type reachByEmail struct{}

func (reachByEmail) Reach(c router.Complaint) (router.Channel, error) {
	if c.Customer.Email == "" {
		return "", fmt.Errorf("no address")
	}
	return router.ChannelEmail, nil
}

// cost is what one new complaint costs Redis.
type cost struct {
	trips, commands, sent, memory float64
	breakdown                     string
}

// TestCostPerNewComplaint counts what one new complaint costs Redis, from
// ingest to its notification delivered, on a server of its own: round trips
// from the daemon, commands (sent and run inside scripts), bytes sent for a
// 450-byte message, and memory. These are counts, not times, and they come
// out the same from run to run, on a busy machine too (a CI run failed on
// memory alone, by 44 bytes, when they did not). Issue 13's P3 targets are 5
// round trips, 20 commands, 2 KB sent and 2.5 KB of memory; the bounds
// below are what this version achieves, so a change that costs more fails
// here. BENCHMARKS.md measures the same as the daemon runs, under load.
func TestCostPerNewComplaint(t *testing.T) {
	for _, c := range []struct {
		name      string
		deadlines bool
		limits    cost
	}{
		// As the benchmark harness runs: no targets, no mail to customers.
		// Issue 13's round trips, commands and memory are met here (3.3
		// round trips; 18.6 commands, the commit's XRANGE of the inbound
		// entry included; 2,395 bytes of memory, with the complaint and its
		// timeline stored as records); 2 KB sent is not (2,890).
		{"notification only", false, cost{trips: 3.5, commands: 19, sent: 2950, memory: 2450}},
		// Deadlines (four timers) and an acknowledgement to the customer,
		// delivered from the outbox too: 3.35 round trips, 21.8 commands,
		// 3,815 bytes sent, 3,260 bytes of memory.
		{"deadlines and acknowledgement", true, cost{trips: 3.6, commands: 22.2, sent: 3880, memory: 3320}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := costPerNewComplaint(t, c.deadlines)
			t.Logf("per new complaint: %.2f round trips, %.1f commands (%s), %.0f bytes sent, %.0f bytes of Redis memory",
				got.trips, got.commands, got.breakdown, got.sent, got.memory)
			for _, f := range []struct {
				what       string
				got, limit float64
			}{
				{"round trips", got.trips, c.limits.trips},
				{"Redis commands", got.commands, c.limits.commands},
				{"bytes sent to Redis", got.sent, c.limits.sent},
				{"bytes of Redis memory", got.memory, c.limits.memory},
			} {
				if f.got > f.limit {
					t.Errorf("%s per new complaint: %.2f, want at most %g", f.what, f.got, f.limit)
				}
			}
		})
	}
}

func costPerNewComplaint(t *testing.T, deadlines bool) cost {
	// Redis keeps a log of slow commands (on a busy machine, more of them)
	// and starts a latency histogram for a command the first time it runs
	// (inside the measured window or not): memory, but not data.
	srv, err := testredis.StartServer(t.TempDir(), "--enable-debug-command", "local",
		"--slowlog-log-slower-than", "-1", "--latency-tracking", "no")
	if err != nil {
		t.Skip("no redis-server:", err)
	}
	defer srv.Cleanup()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	counter := &costCounter{}
	rdb.AddHook(counter)
	keys, _ := queue.NewKeys("cost")
	store := queue.NewStore(rdb, keys, 0)
	ctx := context.Background()

	var owners []router.Owner
	for i := range 6 {
		owners = append(owners, router.Owner{ID: fmt.Sprintf("owner%d", i), Name: "Owner", Email: "o@example.com", Teams: []string{"support"}, Capacity: 1000, Active: true})
	}
	roster, err := router.NewRoster([]router.Team{{ID: "support"}}, owners)
	if err != nil {
		t.Fatal(err)
	}
	cfg := router.Config{Store: store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}, ReopenWindow: time.Hour}
	perComplaint := int32(1) // outbox entries
	if deadlines {
		respond, _ := router.ParseSpan("4h")
		resolve, _ := router.ParseSpan("2d")
		cfg.Policy = &router.Policy{Targets: []router.Target{{Name: "standard", FirstResponse: respond, Resolution: resolve}}, ReminderAt: 0.75}
		cfg.Reachability = reachByEmail{}
		perComplaint = 2
	}
	r, err := router.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	// The keyspace's hash tables (keys, and keys with a lifetime) double
	// when they fill up, and a doubling inside the measured window would
	// add some 100 bytes per complaint to one run and not the next (and
	// while Redis moves a table into its grown one, both take memory).
	// Grown once here, past anything the run adds, they hold still; the
	// sizes compared after the run say whether they did. What the run's
	// keys take of the tables is counted below as one slot per key.
	const tableSlots = 16384
	presize := admin.Pipeline()
	for i := range tableSlots/2 + 1 {
		presize.Set(ctx, "presize:"+strconv.Itoa(i), "x", time.Hour)
	}
	if _, err := presize.Exec(ctx); err != nil {
		t.Fatal(err)
	}

	const n = 200
	body := strings.Repeat("The kettle I ordered arrived with a cracked lid. ", 10)[:450]
	// Warm up: scripts loaded, groups created.
	warm := func(i int) router.Message {
		return router.Message{Channel: router.ChannelWebhook, SourceID: fmt.Sprintf("src-%d", i),
			Customer: router.Customer{Name: "Customer " + strconv.Itoa(i), Email: fmt.Sprintf("c%d@example.com", i)},
			Subject:  "Order " + strconv.Itoa(i), Body: body, ReceivedAt: time.Now()}
	}
	var routed, delivered atomic.Int32
	route := routeHandler(r, &routed)
	deliver := func(ctx context.Context, d *queue.Delivery) error { delivered.Add(1); return nil }
	run := func(stream, group string, h queue.Handler) func() {
		cctx, cancel := context.WithCancel(ctx)
		// As the daemon runs them: the outbox read with a linger.
		linger := time.Duration(0)
		if stream == keys.Outbox() {
			linger = queue.DefaultDeliveryLinger
		}
		c := queue.NewConsumer(rdb, keys, queue.ConsumerConfig{Stream: stream, Group: group, Name: "cost", Workers: 2, Block: 200 * time.Millisecond, Handler: h, Linger: linger})
		done := make(chan struct{})
		go func() { _ = c.Run(cctx); close(done) }()
		return func() { cancel(); <-done }
	}
	for i := range 5 {
		if _, _, err := store.Enqueue(ctx, warm(-1-i)); err != nil {
			t.Fatal(err)
		}
	}
	stopIn, stopOut := run(keys.Inbound(), queue.RouterGroup, route), run(keys.Outbox(), queue.DeliveryGroup, deliver)
	testkit.WaitFor(t, "the warm-up", func() bool { return routed.Load() == 5 && delivered.Load() == 5*perComplaint })
	stopIn()
	stopOut()

	// Measure: n messages queued, then routed and delivered in batches.
	counter.mu.Lock()
	counter.trips, counter.cmds, counter.written, counter.byName = 0, 0, 0, nil
	counter.mu.Unlock()
	tablesBefore := testredis.SettledHashTables(t, admin)
	keysBefore, expiringBefore := testredis.Keyspace(t, admin)
	before, memBefore := testredis.CommandCalls(t, admin), testredis.StoredMemory(t, admin)
	for i := range n {
		if _, _, err := store.Enqueue(ctx, warm(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Each stream is consumed once all its entries are in it, so every read
	// takes a full batch: the counts are then the same from run to run,
	// however busy the machine is. (Running both consumers at once, as the
	// daemon does, the outbox's batches hang on how far routing has got,
	// and a loaded machine added 0.4 round trips and a command per
	// complaint. BENCHMARKS.md measures the daemon as it runs.)
	stopIn = run(keys.Inbound(), queue.RouterGroup, route)
	testkit.WaitFor(t, "every complaint routed", func() bool { return routed.Load() == 5+n })
	stopIn()
	stopOut = run(keys.Outbox(), queue.DeliveryGroup, deliver)
	testkit.WaitFor(t, "every notification and acknowledgement delivered", func() bool {
		return delivered.Load() == (5+n)*perComplaint
	})
	stopOut()
	after, memAfter := testredis.CommandCalls(t, admin), testredis.StoredMemory(t, admin)
	if tablesAfter := testredis.SettledHashTables(t, admin); tablesAfter != tablesBefore {
		t.Fatalf("the keyspace's hash tables grew during the run (%s, then %s): grow them further before it", tablesBefore, tablesAfter)
	}
	keysAfter, expiringAfter := testredis.Keyspace(t, admin)
	const slotBytes = 8 // a pointer per key in a full table
	tableShare := slotBytes * (keysAfter - keysBefore + expiringAfter - expiringBefore)

	var commands, reads int64
	var breakdown []string
	for name, calls := range after {
		if d := calls - before[name]; d > 0 && name != "info" {
			commands += d
			breakdown = append(breakdown, fmt.Sprintf("%s %.2f", name, float64(d)/n))
			if name == "xreadgroup" {
				reads += d
			}
		}
	}
	counter.mu.Lock()
	defer counter.mu.Unlock()
	// Blocking reads run on the consumers' own connections, past the hook:
	// their round trips are the server's XREADGROUP calls.
	return cost{
		trips:     float64(counter.trips+reads) / n,
		commands:  float64(commands) / n,
		sent:      float64(counter.written) / n,
		memory:    float64(memAfter-memBefore+tableShare) / n,
		breakdown: strings.Join(breakdown, ", "),
	}
}
