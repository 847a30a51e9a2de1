package testredis_test

import (
	"context"
	"testing"

	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// On a cluster every namespace lives on the master of its hash tag's slot.
// ScanKeys finds a namespace's keys whichever master that is, and the
// cleanup of ClusterClient deletes them there: a SCAN through the cluster
// client alone would reach one arbitrary node.
func TestClusterNamespacesAreFoundAndCleanedOnEveryMaster(t *testing.T) {
	addrs := testredis.StartCluster(t)
	ctx := context.Background()
	t.Run("namespaces", func(t *testing.T) {
		masters := map[string]bool{}
		for range 12 {
			rdb, keys := testredis.ClusterClient(t, addrs)
			want := []string{keys.Complaints(), keys.Threads(), keys.OncePrefix() + "x"}
			for _, k := range want {
				if err := rdb.Set(ctx, k, "1", 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			got, err := testredis.ScanKeys(ctx, rdb, keys.Pattern())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Errorf("ScanKeys found %v, want %v", got, want)
			}
			node, err := rdb.(*redis.ClusterClient).MasterForKey(ctx, keys.Complaints())
			if err != nil {
				t.Fatal(err)
			}
			masters[node.Options().Addr] = true
		}
		if len(masters) < 2 {
			t.Fatalf("12 namespaces all on %v: the test needs them on several masters", masters)
		}
	})
	// The subtest's cleanups have run: no master holds a key.
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
			t.Errorf("%s holds %d keys after the namespaces' cleanup (%v)", a, n, err)
		}
		_ = c.Close()
	}
}
