package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// CountWithin adds one to the counter k and returns the new count; the
// counter starts when first counted and vanishes window later (a fixed-window
// rate limit shared by all replicas: messages per minute per chat session).
func (st *State) CountWithin(ctx context.Context, k string, window time.Duration) (int64, error) {
	n, err := countWithinScript.Run(ctx, st.rdb, []string{st.key(k)}, window.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("counting %s: %w", k, err)
	}
	return n, nil
}

// countWithinScript: KEYS[1] the counter; ARGV[1] the window in milliseconds.
// One script, so a counter never outlives a crash between INCR and PEXPIRE.
var countWithinScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`)
