package queue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// BenchmarkIngestToAssigned measures, against the real Redis, a raw XADD of a
// typical message (the floor any Redis queue pays), forgetmenot's idempotent
// ingest, and the whole path from ingest to a complaint with an owner, so the
// ratios can be read from one run:
//
//	go test ./queue -run '^$' -bench IngestToAssigned -benchtime 2000x
func BenchmarkIngestToAssigned(b *testing.B) {
	payload, _ := json.Marshal(webhookMsg("bench", "customer@example.com", "The blender I ordered arrived broken; I would like a replacement."))
	ctx := context.Background()

	b.Run("raw-xadd", func(b *testing.B) {
		e := benchEnv(b)
		b.ResetTimer()
		for range b.N {
			if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.keys.Inbound(), Values: []string{"data", string(payload), "attempt", "0"}}).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("ingest", func(b *testing.B) {
		e := benchEnv(b)
		b.ResetTimer()
		for i := range b.N {
			if _, _, err := e.store.Enqueue(ctx, webhookMsg(fmt.Sprint(i), "customer@example.com", "The blender arrived broken.")); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("ingest-to-assigned", func(b *testing.B) {
		e := benchEnv(b)
		r := benchRouter(b, e)
		var routed atomic.Int32
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		c := queue.NewConsumer(e.rdb, e.keys, queue.ConsumerConfig{
			Stream: e.keys.Inbound(), Group: queue.RouterGroup, Name: "bench", Workers: 4, Block: 50 * time.Millisecond,
			Handler: routeHandler(r, &routed),
		})
		go func() { _ = c.Run(cctx) }()
		b.ResetTimer()
		for i := range b.N {
			m := webhookMsg(fmt.Sprint(i), fmt.Sprintf("c%d@example.com", i%500), "The blender arrived broken.")
			if _, _, err := e.store.Enqueue(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
		for int(routed.Load()) < b.N {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "complaints/s")
	})
}

// benchEnv is newEnv for benchmarks.
func benchEnv(b *testing.B) *env {
	rdb, keys := testredis.Client(b)
	return &env{rdb: rdb, keys: keys, store: queue.NewStore(rdb, keys, 0)}
}

func benchRouter(b *testing.B, e *env) *router.Router {
	var owners []router.Owner
	for i := range 10 {
		owners = append(owners, router.Owner{ID: fmt.Sprintf("o%d", i), Name: "O", Email: "o@example.com", Teams: []string{"support"}, Capacity: 1 << 30, Active: true})
	}
	roster, err := router.NewRoster([]router.Team{{ID: "support"}}, owners)
	if err != nil {
		b.Fatal(err)
	}
	r, err := router.New(router.Config{Store: e.store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}, ReopenWindow: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	return r
}
