package queue_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

var (
	reportN = flag.Int("report.n", 10000, "complaints BenchmarkReport seeds")
	// Seeding 100,000 complaints takes longer than the report: keep them
	// in a named namespace and the next run measures again without seeding.
	reportKeep = flag.String("report.keep", "", "namespace BenchmarkReport seeds once and keeps (empty: a fresh one, deleted after)")
	reportOut  = flag.String("report.out", "", "file BenchmarkReport writes the report to as JSON, to compare builds")
)

// BenchmarkReport times the 28-day report over complaints seeded through the
// real router (configs/owners.yaml, routing.yaml and targets.yaml, so
// durations count business time) on the real Redis. Every fourth complaint is
// closed three days after it opened, every eighth with a prevention note, so
// the report measures resolution times too:
//
//	go test ./queue -run '^$' -bench '^BenchmarkReport$' -benchtime 3x -report.n 100000 -report.keep bench100k
func BenchmarkReport(b *testing.B) {
	if testing.Short() {
		b.Skip("seeds many complaints")
	}
	ctx := context.Background()
	rdb, keys := reportEnv(b)
	store := queue.NewStore(rdb, keys, 0)
	n, err := rdb.ZCard(ctx, keys.Complaints()).Result()
	if err != nil {
		b.Fatal(err)
	}
	if n == 0 {
		seedReport(b, rdb, keys, store, *reportN)
		if n, err = rdb.ZCard(ctx, keys.Complaints()).Result(); err != nil {
			b.Fatal(err)
		}
	}
	// The period and the clock come from the data, so a kept namespace gives
	// the same report every run and builds can be compared byte for byte.
	first, err := rdb.ZRangeWithScores(ctx, keys.Complaints(), 0, 0).Result()
	if err != nil || len(first) == 0 {
		b.Fatalf("no complaints seeded: %v", err)
	}
	since := time.UnixMilli(int64(first[0].Score)).UTC().Truncate(24 * time.Hour)
	until := since.AddDate(0, 0, 28)
	r := reportRouter(b, store, func() time.Time { return until })
	b.ReportMetric(float64(n), "complaints")
	b.ResetTimer()
	var rep router.Report
	for range b.N {
		if rep, err = r.Report(ctx, since, until); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if rep.Complaints != int(n) {
		b.Errorf("the report counts %d complaints, want %d", rep.Complaints, n)
	}
	if *reportOut != "" {
		out, err := json.MarshalIndent(rep, "", " ")
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(*reportOut, out, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// reportEnv is a fresh namespace, or the kept one named by -report.keep.
func reportEnv(b *testing.B) (redis.UniversalClient, queue.Keys) {
	if *reportKeep == "" {
		return testredis.Client(b)
	}
	rdb, err := queue.Connect(testredis.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rdb.Close() })
	keys, err := queue.NewKeys(*reportKeep)
	if err != nil {
		b.Fatal(err)
	}
	return rdb, keys
}

// reportRouter is a router with the shipped configuration over store.
func reportRouter(b *testing.B, store *queue.Store, clock func() time.Time) *router.Router {
	roster, err := configs.LoadRoster("../configs/owners.yaml")
	if err != nil {
		b.Fatal(err)
	}
	rules, err := configs.LoadRouting("../configs/routing.yaml", roster)
	if err != nil {
		b.Fatal(err)
	}
	policy, err := configs.LoadTargets("../configs/targets.yaml", "../configs/owners.yaml", roster)
	if err != nil {
		b.Fatal(err)
	}
	r, err := router.New(router.Config{Store: store, Directory: roster, Rules: rules, Policy: policy,
		ReopenWindow: 14 * 24 * time.Hour, Clock: clock})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// seedReport opens n complaints through the router, 8 at a time as the
// workers would, and closes every fourth of them three days later.
func seedReport(b *testing.B, rdb redis.UniversalClient, keys queue.Keys, store *queue.Store, n int) {
	ctx := context.Background()
	var later atomic.Int64
	r := reportRouter(b, store, func() time.Time { return time.Now().Add(time.Duration(later.Load())) })
	ids := make([]string, n)
	each(n, func(i int) error {
		msg := router.Message{
			ID: queue.NewMessageID(time.Now()), Channel: router.ChannelWebhook, SourceID: "seed-" + strconv.Itoa(i),
			Customer: router.Customer{Name: "Seeded Customer", Email: fmt.Sprintf("seed-%d@example.com", i)},
			Subject:  "Order " + strconv.Itoa(i), Body: "The kettle I ordered arrived with a cracked lid, please help.",
			ReceivedAt: time.Now(),
		}
		out, err := r.Route(ctx, msg)
		ids[i] = out.ComplaintID
		return err
	}, b)
	later.Store(int64(3 * 24 * time.Hour))
	each(n/4, func(i int) error {
		closing := router.Closing{Resolution: "Sent a new lid", Category: []string{"damaged", "late-delivery", "wrong-item"}[i%3]}
		if i%2 == 0 {
			closing.Prevention = "Pack lids separately"
		}
		_, err := r.CloseWith(ctx, ids[4*i], "api", closing)
		return err
	}, b)
	// No daemon reads this namespace: drop the notifications seeding queued.
	if err := rdb.Del(ctx, keys.Outbox()).Err(); err != nil {
		b.Fatal(err)
	}
}

// each runs f for 0..n-1 on 8 goroutines, failing b on the first error.
func each(n int, f func(i int) error, b *testing.B) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}
