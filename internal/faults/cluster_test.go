package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// Redis Cluster: two replicas route a steady load end to end against a local
// three-master cluster (FORGETMENOT_REDIS_URL=redis+cluster://…). Every
// script and transaction touches keys of one slot — a cross-slot one would
// fail with CROSSSLOT — and every key of the namespace sits in that one slot
// on one master.
func TestRedisClusterEndToEnd(t *testing.T) {
	addrs := testredis.StartCluster(t)
	h := newHarness(t, harnessOptions{redisURL: testredis.ClusterURL(addrs)})
	s := h.newSender("cluster")
	s.start(loadRate)
	owners := []string{"anna", "bas", "chloe", "joost", "fatima"}
	for range 3 {
		time.Sleep(time.Second)
		reassignSome(h, owners)
	}
	s.stop()
	t.Log(s.summary())
	t.Log(h.checkInvariants(s.acknowledged(), expectations{}))

	ctx := context.Background()
	slots := map[int64]int{}
	holders := 0
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		keys, err := c.Keys(ctx, h.store.Keys().Pattern()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 {
			holders++
		}
		for _, k := range keys {
			slot, err := c.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			slots[slot]++
		}
		_ = c.Close()
	}
	if len(slots) != 1 || holders != 1 {
		t.Errorf("the namespace's keys are in slots %v on %d masters; want one slot on one master", slots, holders)
	}
	t.Logf("all %s keys in one slot: %v", fmt.Sprint(sum(slots)), slots)
}

func sum(m map[int64]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
