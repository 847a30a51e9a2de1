package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/redis/go-redis/v9"
)

// TestBlockedWorkersLeaveThePoolFree: however many workers wait on an empty
// stream, their blocking reads run on connections of their own, so the
// shared pool (here two connections, and a pool wait far shorter than the
// block time) still serves every other command at once. Before, 32 blocked
// workers held the whole pool and the API and /readyz waited out a block.
func TestBlockedWorkersLeaveThePoolFree(t *testing.T) {
	_, keys := testredis.Client(t)
	opt, err := redis.ParseURL(testredis.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	opt.PoolSize, opt.PoolTimeout, opt.PipelinePoolSize = 2, 100*time.Millisecond, -1
	shared := redis.NewClient(opt)
	defer shared.Close()

	const workers = 32
	ctx, cancel := context.WithCancel(context.Background())
	c := queue.NewConsumer(shared, keys, queue.ConsumerConfig{
		Stream: keys.Inbound(), Group: queue.RouterGroup, Name: "pool", Workers: workers,
		Block: 5 * time.Second, Handler: func(context.Context, *queue.Delivery) error { return nil },
	})
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Wait until every worker holds a blocked read.
	deadline := time.Now().Add(20 * time.Second)
	for c.BlockingPoolStats().TotalConns < workers {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d workers are reading", c.BlockingPoolStats().TotalConns, workers)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range 50 {
		if err := shared.Set(ctx, keys.State("pool")+"k", i, 0).Err(); err != nil {
			t.Fatalf("command %d on the shared pool while %d workers block: %v", i, workers, err)
		}
	}
	if st := shared.PoolStats(); st.Timeouts != 0 {
		t.Fatalf("the shared pool timed out %d times while workers blocked: %+v", st.Timeouts, st)
	}
	if st := c.BlockingPoolStats(); st.TotalConns != workers {
		t.Fatalf("blocking reads use %d connections, want one per worker (%d)", st.TotalConns, workers)
	}
}
