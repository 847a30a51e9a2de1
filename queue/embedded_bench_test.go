package queue_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// BenchmarkEmbeddedSteadyRate routes new complaints through the embedded
// in-memory Redis (the default without REDIS_URL) in blocks and reports the
// rate of the first and the last block: the rate must not fall as
// complaints accumulate (no per-message cost that grows with their number).
//
//	go test ./queue -run '^$' -bench EmbeddedSteadyRate -benchtime 1x
func BenchmarkEmbeddedSteadyRate(b *testing.B) {
	const blocks, perBlock = 5, 2000
	for range b.N {
		emb, err := queue.StartEmbedded()
		if err != nil {
			b.Fatal(err)
		}
		rdb, err := queue.Connect(emb.URL())
		if err != nil {
			b.Fatal(err)
		}
		keys, _ := queue.NewKeys("embedded")
		e := &env{rdb: rdb, keys: keys, store: queue.NewStore(rdb, keys, 0)}
		r := benchRouter(b, e)
		var routed atomic.Int32
		ctx, cancel := context.WithCancel(context.Background())
		c := queue.NewConsumer(rdb, keys, queue.ConsumerConfig{Stream: keys.Inbound(), Group: queue.RouterGroup, Name: "bench", Workers: 4,
			Block: 50 * time.Millisecond, Handler: routeHandler(r, &routed)})
		done := make(chan struct{})
		go func() { _ = c.Run(ctx); close(done) }()
		var rates []float64
		for blk := range blocks {
			began := time.Now()
			for i := range perBlock {
				n := blk*perBlock + i
				m := webhookMsg(fmt.Sprint(n), fmt.Sprintf("c%d@example.com", n), "The blender arrived broken.")
				m.Subject = "Order " + fmt.Sprint(n)
				if _, _, err := e.store.Enqueue(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			for int(routed.Load()) < (blk+1)*perBlock {
				time.Sleep(time.Millisecond)
			}
			rates = append(rates, perBlock/time.Since(began).Seconds())
		}
		cancel()
		<-done
		_ = rdb.Close()
		emb.Close()
		b.ReportMetric(rates[0], "first-block/s")
		b.ReportMetric(rates[len(rates)-1], "last-block/s")
		b.ReportMetric(rates[len(rates)-1]/rates[0], "last/first")
	}
	_ = router.StatusOpen
}
