package queue_test

import (
	"context"
	"fmt"
	"testing"
)

// REVIEW (fails on main at e7d77a4): the routing read script now unpacks
// two HMGET fields per owner (count, last:<owner>), so Lua's unpack limit
// (~8000 values in Redis) is reached at ~4000 owners of the rule's team plus
// the default team instead of ~8000 before; the read fails and so does
// routing of every message for those teams (retried, then dead-lettered).
func TestReviewRoutingInputsManyOwners(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range []int{3000, 4500} {
		owners := make([]string, n)
		for i := range owners {
			owners[i] = fmt.Sprintf("owner-%05d", i)
		}
		in, err := e.store.RoutingInputs(ctx, nil, "", owners)
		if err != nil {
			t.Errorf("%d owners: %v", n, err)
			continue
		}
		if len(in.Loads) != n {
			t.Errorf("%d owners: %d loads", n, len(in.Loads))
		}
	}
}
