package testredis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/redis/go-redis/v9"
)

// StartCluster creates a local Redis Cluster of three masters on loopback,
// as an operator would with redis-cli, and returns their addresses. The
// servers stop when the test ends. Without redis-server or redis-cli the test
// is skipped, except under CI (CI set), where it fails.
func StartCluster(t testing.TB) []string {
	t.Helper()
	need(t, "redis-server", "redis-cli")
	dir := t.TempDir()
	var addrs []string
	for range 3 {
		bus, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		srv, err := StartServer(dir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
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
		deadline := time.Now().Add(30 * time.Second)
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is not cluster_state:ok after 30s: %v\n%s", a, err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = c.Close()
	}
	return addrs
}

// ClusterURL is the redis+cluster:// URL naming the nodes.
func ClusterURL(addrs []string) string { return "redis+cluster://" + strings.Join(addrs, ",") }

// ClusterClient returns a client on the cluster of the nodes, made as the
// daemon makes it (queue.Connect), and a fresh namespace; the namespace's
// keys are deleted when the test ends.
func ClusterClient(t testing.TB, addrs []string) (redis.UniversalClient, queue.Keys) {
	t.Helper()
	return clientOn(t, ClusterURL(addrs))
}

// ScanKeys returns every key matching pattern. On a cluster client it scans
// every master: a SCAN sent through a cluster client reaches one arbitrary
// node, and would see only that node's keys.
func ScanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	scan := func(ctx context.Context, c redis.Cmdable) ([]string, error) {
		var keys []string
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return keys, iter.Err()
	}
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return scan(ctx, rdb)
	}
	var (
		mu  sync.Mutex
		all []string
	)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		keys, err := scan(ctx, node)
		if err != nil {
			return fmt.Errorf("scanning %s: %w", node.Options().Addr, err)
		}
		mu.Lock()
		all = append(all, keys...)
		mu.Unlock()
		return nil
	})
	return all, err
}

// need skips the test when a program is missing, or fails it under CI.
func need(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required: %v", b, err)
			}
			t.Skipf("%s is not installed: %v", b, err)
		}
	}
}
