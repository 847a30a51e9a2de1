package faults_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// startCluster creates a local Redis Cluster of three masters on loopback,
// as an operator would with redis-cli, and returns their addresses.
func startCluster(t testing.TB) []string {
	t.Helper()
	needRedis(t, "redis-cli")
	dir := t.TempDir()
	var addrs []string
	for range 3 {
		bus, err := testredis.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		srv, err := testredis.StartServer(dir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus), "--cluster-node-timeout", "5000")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Cleanup)
		addrs = append(addrs, srv.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		waitFor(t, 30*time.Second, "cluster_state:ok on "+a, func() bool {
			info, err := c.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		_ = c.Close()
	}
	return addrs
}

// Redis Cluster: two replicas route a steady load end to end against a local
// three-master cluster (FORGETMENOT_REDIS_URL=redis+cluster://…). Every
// script and transaction touches keys of one slot — a cross-slot one would
// fail with CROSSSLOT — and every key of the namespace sits in that one slot
// on one master.
func TestRedisClusterEndToEnd(t *testing.T) {
	addrs := startCluster(t)
	h := newHarness(t, harnessOptions{redisURL: "redis+cluster://" + strings.Join(addrs, ",")})
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
