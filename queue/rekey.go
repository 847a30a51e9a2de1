package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// maxRekeyAttempts bounds retries of a complaint that keeps changing while
// it is rekeyed.
const maxRekeyAttempts = 5

// RekeyCustomer moves the complaints a channel recorded under one customer
// id to another id of the same customer: the forum channel keyed customers
// by their Discourse username before it keyed them by their (stable) user
// id, and moves a customer's old complaints when their next post shows
// both. A complaint moves when it came by ch with the customer id oldID
// and the customer key "ch:oldID" (an e-mail address makes another key,
// and then nothing moves); it gets the key "ch:newID" and keeps the old one
// among its proven identities (an answer recorded against the old key still
// finds it). Its customer index entry, and its customer-scoped thread keys,
// move with it, each complaint in one guarded step. It is idempotent, and
// returns how many complaints moved.
func (s *Store) RekeyCustomer(ctx context.Context, ch router.Channel, oldID, newID string) (int, error) {
	if ch == "" || oldID == "" || newID == "" || oldID == newID {
		return 0, nil
	}
	from, to := string(ch)+":"+oldID, string(ch)+":"+newID
	ids, err := s.rdb.ZRange(ctx, s.keys.Customer(from), 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("reading the complaints of %s: %w", from, err)
	}
	n := 0
	for _, id := range ids {
		moved, err := s.rekeyComplaint(ctx, id, ch, oldID, newID, from, to)
		if err != nil {
			return n, err
		}
		if moved {
			n++
		}
	}
	return n, nil
}

func (s *Store) rekeyComplaint(ctx context.Context, id string, ch router.Channel, oldID, newID, from, to string) (bool, error) {
	k := s.keys
	for attempt := 1; ; attempt++ {
		c, err := s.Complaint(ctx, id)
		if errors.Is(err, router.ErrNotFound) {
			return false, s.rdb.ZRem(ctx, k.Customer(from), id).Err()
		}
		if err != nil {
			return false, err
		}
		if c.CustomerKey == to {
			// Moved before (the index is moved in the same step): a stale
			// entry only.
			return false, s.rdb.ZRem(ctx, k.Customer(from), id).Err()
		}
		if c.CustomerKey != from || c.Channel != ch || c.Customer.ID != oldID {
			return false, nil // not the channel's id: someone else's key
		}
		after := c
		after.CustomerKey = to
		after.Customer.ID = newID
		if !slices.Contains(c.Identities, from) {
			after.Identities = append(slices.Clone(c.Identities), from)
		}
		after.Version = c.Version + 1
		claims, err := s.scopedClaims(ctx, id, from, to)
		if err != nil {
			return false, err
		}
		t, err := s.changeTx(router.Change{Before: &c, After: after, ThreadKeys: claims}, nil)
		if err != nil {
			return false, err
		}
		t.write("ZREM", k.Customer(from), id)
		t.write("ZADD", k.Customer(to), msString(c.CreatedAt.UnixMilli()), id)
		res, err := t.run(ctx, s.rdb)
		if err != nil {
			return false, fmt.Errorf("moving %s from %s to %s: %w", id, from, to, err)
		}
		if res.status == "ok" {
			return true, nil
		}
		if attempt == maxRekeyAttempts {
			return false, fmt.Errorf("moving %s from %s to %s: it kept changing (%s): %w", id, from, to, res.value, router.ErrConflict)
		}
		time.Sleep(time.Duration(attempt*10) * time.Millisecond)
	}
}

// scopedClaims are the customer-scoped thread keys of the complaint's
// messages under the new customer key, where the old customer key's scoped
// key points at it and the new one is free.
func (s *Store) scopedClaims(ctx context.Context, id, from, to string) ([]router.ThreadClaim, error) {
	tl, err := s.Timeline(ctx, id)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, e := range tl {
		if m := e.Message; m != nil {
			for _, tk := range m.ThreadKeys {
				old, nu := router.ScopedThreadKey(tk, from), router.ScopedThreadKey(tk, to)
				if !slices.Contains(keys, old) {
					keys = append(keys, old, nu)
				}
			}
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	mapped, err := s.ThreadComplaints(ctx, keys)
	if err != nil {
		return nil, err
	}
	var out []router.ThreadClaim
	for i := 0; i < len(keys); i += 2 {
		if mapped[keys[i]] == id && mapped[keys[i+1]] == "" {
			out = append(out, router.ThreadClaim{Key: keys[i+1]})
		}
	}
	return out, nil
}

// ChannelCustomer is a customer id of a channel that has complaints indexed
// under it, with the creation time of its oldest one.
type ChannelCustomer struct {
	ID    string
	First time.Time
}

// ChannelCustomers lists the customer ids of channel ch whose customer
// index ("ch:<id>") holds complaints, by SCAN of the namespace's node (a
// few keys at a time, so Redis keeps serving), each id once. It is for one-time maintenance (the
// forum's move from usernames to user ids), not for a hot path.
func (s *Store) ChannelCustomers(ctx context.Context, ch router.Channel) ([]ChannelCustomer, error) {
	if ch == "" || strings.ContainsAny(string(ch), `*?[]\`) {
		return nil, fmt.Errorf("channel %q cannot name customer keys", ch)
	}
	prefix := s.keys.Customer(string(ch) + ":")
	seen := map[string]bool{}
	var out []ChannelCustomer
	node, err := s.scanner(ctx)
	if err != nil {
		return nil, err
	}
	iter := node.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		id := strings.TrimPrefix(iter.Val(), prefix)
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		first, err := s.rdb.ZRangeWithScores(ctx, iter.Val(), 0, 0).Result()
		if err != nil {
			return nil, fmt.Errorf("reading the oldest complaint of %s:%s: %w", ch, id, err)
		}
		if len(first) == 0 {
			continue // emptied since the scan saw it
		}
		out = append(out, ChannelCustomer{ID: id, First: time.UnixMilli(int64(first[0].Score)).UTC()})
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("listing the customers of %s: %w", ch, err)
	}
	return out, nil
}

// MigrationDone reports when the one-time migration name finished, if it
// did.
func (s *Store) MigrationDone(ctx context.Context, name string) (time.Time, bool, error) {
	v, err := s.rdb.Get(ctx, s.keys.Migration(name)).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reading whether migration %s finished: %w", name, err)
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		// Finished all the same: the value only says when.
		return time.Time{}, true, nil
	}
	return at, true, nil
}

// MarkMigrationDone records that the one-time migration name finished at
// at; it is kept for ever (one small key per migration).
func (s *Store) MarkMigrationDone(ctx context.Context, name string, at time.Time) error {
	if err := s.rdb.Set(ctx, s.keys.Migration(name), at.UTC().Format(time.RFC3339Nano), 0).Err(); err != nil {
		return fmt.Errorf("recording that migration %s finished: %w", name, err)
	}
	return nil
}
