package queue_test

import (
	"context"
	"fmt"
	"testing"
)

// A big roster still routes: the routing read asks for two fields per
// owner of the rule's team and the default team, and Lua unpacks at most
// some 8,000 values at once, so the script reads them in parts. (One HMGET
// of every field failed from about 4,000 owners on, and every message for
// those teams with it.)
func TestRoutingReadsTheLoadsOfABigRoster(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range []int{3000, 4500, 9000} {
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
