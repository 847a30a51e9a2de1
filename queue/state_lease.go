package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// HoldLease takes the lease k for holder, or renews it if holder already has
// it, for ttl; it reports whether holder holds it now. Leases let several
// replicas share work that only one may do at a time (polling one mailbox):
// the holder renews well within ttl, and when it dies the lease runs out and
// another replica takes over.
func (st *State) HoldLease(ctx context.Context, k, holder string, ttl time.Duration) (bool, error) {
	n, err := holdLeaseScript.Run(ctx, st.rdb, []string{st.key(k)}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", k, err)
	}
	return n == 1, nil
}

// ReleaseLease gives the lease k up if holder has it, so another replica can
// take over at once instead of after the ttl.
func (st *State) ReleaseLease(ctx context.Context, k, holder string) error {
	if err := releaseLeaseScript.Run(ctx, st.rdb, []string{st.key(k)}, holder).Err(); err != nil {
		return fmt.Errorf("releasing lease %s: %w", k, err)
	}
	return nil
}

// holdLeaseScript: KEYS[1] the lease; ARGV[1] the holder; ARGV[2] the ttl in
// milliseconds. Check and set in one step, so two replicas never both win.
var holdLeaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// releaseLeaseScript: KEYS[1] the lease; ARGV[1] the holder.
var releaseLeaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)
