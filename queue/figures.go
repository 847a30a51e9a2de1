package queue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
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
// beyond those asked for (they left the roster) are found among everyone
// ever assigned a complaint, and reported when they still own any.
func (s *Store) OpenFigures(ctx context.Context, owners []string, now time.Time) (router.OpenFigures, error) {
	assigned, err := s.rdb.HKeys(ctx, s.keys.OwnerLastAssigned()).Result()
	if err != nil {
		return router.OpenFigures{}, fmt.Errorf("reading the owners: %w", err)
	}
	asked := make(map[string]bool, len(owners))
	all := make([]string, 0, len(owners)+len(assigned))
	for _, o := range owners {
		if !asked[o] {
			asked[o] = true
			all = append(all, o)
		}
	}
	for _, o := range assigned {
		if !asked[o] {
			all = append(all, o)
		}
	}
	pipe := s.rdb.Pipeline()
	open := make([]*redis.IntCmd, len(all))
	overdue := make([]*redis.IntCmd, len(all))
	nowMs := "(" + msString(now.UnixMilli())
	for i, o := range all {
		open[i] = pipe.SCard(ctx, s.keys.OwnerOpen(o))
		overdue[i] = pipe.ZCount(ctx, s.keys.OwnerDue(o), "-inf", nowMs)
	}
	pending := pipe.ZCard(ctx, s.keys.PromisesPending())
	broken := pipe.ZRangeWithScores(ctx, s.keys.PromisesBroken(), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil {
		return router.OpenFigures{}, fmt.Errorf("reading the open figures: %w", err)
	}
	f := router.OpenFigures{Owners: make(map[string]router.OwnerFigures, len(all)), PromisesPending: int(pending.Val())}
	for i, o := range all {
		fig := router.OwnerFigures{Open: int(open[i].Val()), Overdue: int(overdue[i].Val())}
		if asked[o] || fig.Open > 0 {
			f.Owners[o] = fig
		}
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
