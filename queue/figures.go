package queue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
	"strings"
)

// indexEntry is a complaint's place in one of the figure indexes: the key
// of the sorted set it belongs in and its score; ok false when it belongs in
// none.
type indexEntry struct {
	key   string
	score int64
	ok    bool
}

// figureEntries are where a complaint belongs in the indexes behind the
// open figures (router.OpenFigures): its owner's due index, the pending
// promises and the broken promises.
func figureEntries(k Keys, c *router.Complaint) [3]indexEntry {
	var out [3]indexEntry
	if c == nil || c.Status != router.StatusOpen {
		return out
	}
	if at, ok := c.OverdueFrom(); ok {
		out[0] = indexEntry{k.OwnerDue(c.Owner), at.UnixMilli(), true}
	}
	if c.PromisePending() {
		out[1] = indexEntry{k.PromisesPending(), c.PromisedBy.UnixMilli(), true}
	}
	if c.PromisesBroken > 0 {
		out[2] = indexEntry{k.PromisesBroken(), int64(c.PromisesBroken), true}
	}
	return out
}

// syncFigures keeps the figure indexes in step with the complaint in the
// same commit, writing only what changed.
func syncFigures(t *tx, k Keys, before *router.Complaint, after router.Complaint) {
	was, is := figureEntries(k, before), figureEntries(k, &after)
	for i := range was {
		w, n := was[i], is[i]
		if w.ok && (!n.ok || w.key != n.key) {
			t.write("ZREM", w.key, after.ID)
		}
		if n.ok && (!w.ok || w.key != n.key || w.score != n.score) {
			t.write("ZADD", n.key, strconv.FormatInt(n.score, 10), after.ID)
		}
	}
}

// OpenFigures counts open and overdue complaints per owner and the pending
// and broken promises from the indexes every commit keeps (SCARD, ZCOUNT,
// ZCARD): two round trips, whatever the number of open complaints. Owners
// beyond those asked for (they left the roster) are reported when they
// still own open complaints.
func (s *Store) OpenFigures(ctx context.Context, owners []string, now time.Time) (router.OpenFigures, error) {
	counts, err := s.rdb.HGetAll(ctx, s.keys.OpenCounts()).Result()
	if err != nil {
		return router.OpenFigures{}, fmt.Errorf("reading the owners' open counts: %w", err)
	}
	asked := make(map[string]bool, len(owners))
	all := make([]string, 0, len(owners)+len(counts))
	for _, o := range owners {
		if !asked[o] {
			asked[o] = true
			all = append(all, o)
		}
	}
	for o, n := range counts {
		if !asked[o] && n != "0" && !strings.HasPrefix(o, lastAssignedPrefix) {
			all = append(all, o)
		}
	}
	pipe := s.rdb.Pipeline()
	overdue := make([]*redis.IntCmd, len(all))
	nowMs := "(" + msString(now.UnixMilli())
	for i, o := range all {
		overdue[i] = pipe.ZCount(ctx, s.keys.OwnerDue(o), "-inf", nowMs)
	}
	pending := pipe.ZCard(ctx, s.keys.PromisesPending())
	broken := pipe.ZRangeWithScores(ctx, s.keys.PromisesBroken(), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil {
		return router.OpenFigures{}, fmt.Errorf("reading the open figures: %w", err)
	}
	f := router.OpenFigures{Owners: make(map[string]router.OwnerFigures, len(all)), PromisesPending: int(pending.Val())}
	for i, o := range all {
		n, _ := strconv.Atoi(counts[o])
		f.Owners[o] = router.OwnerFigures{Open: n, Overdue: int(overdue[i].Val())}
	}
	for _, z := range broken.Val() {
		f.PromisesBroken += int(z.Score)
	}
	return f, nil
}

// OwnerOpenIDs lists the ids of an owner's open complaints.
func (s *Store) OwnerOpenIDs(ctx context.Context, owner string) ([]string, error) {
	return s.rdb.SMembers(ctx, s.keys.OwnerOpen(owner)).Result()
}
