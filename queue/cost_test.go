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
// 450-byte message, and memory. These are counts, not times. Issue 13's P3
// targets are 5 round trips, 20 commands, 2 KB sent and 2.5 KB of memory;
// the bounds below are what this version achieves (see BENCHMARKS.md), so
// a change that costs more fails here.
func TestCostPerNewComplaint(t *testing.T) {
	for _, c := range []struct {
		name      string
		deadlines bool
		limits    cost
	}{
		// As the benchmark harness runs: no targets, no mail to customers.
		// Issue 13's round trips, commands and memory are met here
		// (commands: about 18.8, the commit's XRANGE of the inbound entry
		// included; memory: about 2,350 bytes, or 2,470 when the growth of
		// the keyspace's hash table falls in the measured window, with the
		// complaint and its timeline stored as records); 2 KB sent is not
		// (about 2,920).
		{"notification only", false, cost{trips: 4, commands: 20, sent: 3000, memory: 2500}},
		// Deadlines (four timers) and an acknowledgement to the customer,
		// delivered from the outbox too (about 22.0 commands, 3,840 bytes
		// sent and 3,220 bytes of memory, or 3,330 with the hash table's
		// growth in the window).
		{"deadlines and acknowledgement", true, cost{trips: 4, commands: 23, sent: 3900, memory: 3400}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if raceEnabled {
				// Reads and acknowledgements are batched, and under the race
				// detector batches are smaller: about 0.7 commands more per
				// complaint than as the daemon runs. Bytes and memory do not
				// depend on batching and are held as they are.
				c.limits.commands++
			}
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
					t.Errorf("%s per new complaint: %.1f, want at most %.0f", f.what, f.got, f.limit)
				}
			}
		})
	}
}

func costPerNewComplaint(t *testing.T, deadlines bool) cost {
	srv, err := testredis.StartServer(t.TempDir())
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
	before, memBefore := testredis.CommandCalls(t, admin), testredis.UsedMemory(t, admin)
	for i := range n {
		if _, _, err := store.Enqueue(ctx, warm(i)); err != nil {
			t.Fatal(err)
		}
	}
	stopIn, stopOut = run(keys.Inbound(), queue.RouterGroup, route), run(keys.Outbox(), queue.DeliveryGroup, deliver)
	testkit.WaitFor(t, "every complaint routed and its notification and acknowledgement delivered", func() bool {
		return routed.Load() == 5+n && delivered.Load() == (5+n)*perComplaint
	})
	stopIn()
	stopOut()
	after, memAfter := testredis.CommandCalls(t, admin), testredis.UsedMemory(t, admin)

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
		memory:    float64(memAfter-memBefore) / n,
		breakdown: strings.Join(breakdown, ", "),
	}
}
