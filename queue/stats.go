package queue

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// StreamStats describes the work waiting on one stream.
type StreamStats struct {
	// Waiting counts entries not yet handled, including those being handled
	// now (handled entries are deleted).
	Waiting int64
	// Delayed counts entries waiting for a retry.
	Delayed int64
	// OldestAge is the age of the oldest waiting entry (0 when none).
	OldestAge time.Duration
}

// Stats is a snapshot of the queues for metrics and operators.
type Stats struct {
	Inbound     StreamStats
	Outbox      StreamStats
	DeadLetters int64
}

// Stats reads queue depths in one round trip.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	pipe := s.rdb.Pipeline()
	type streamCmds struct {
		length, delayed *redis.IntCmd
		first           *redis.XMessageSliceCmd
	}
	queue := func(stream string) streamCmds {
		return streamCmds{pipe.XLen(ctx, stream), pipe.ZCard(ctx, s.keys.Delayed(stream)), pipe.XRangeN(ctx, stream, "-", "+", 1)}
	}
	in, out := queue(s.keys.Inbound()), queue(s.keys.Outbox())
	dead := pipe.XLen(ctx, s.keys.DeadLetters())
	if _, err := pipe.Exec(ctx); err != nil {
		return Stats{}, err
	}
	now := time.Now()
	stats := func(c streamCmds) StreamStats {
		st := StreamStats{Waiting: c.length.Val(), Delayed: c.delayed.Val()}
		if first := c.first.Val(); len(first) > 0 {
			st.OldestAge = entryAge(first[0].ID, now)
		}
		return st
	}
	return Stats{Inbound: stats(in), Outbox: stats(out), DeadLetters: dead.Val()}, nil
}

// entryAge reads the millisecond timestamp in a stream entry id.
func entryAge(id string, now time.Time) time.Duration {
	ms, err := strconv.ParseInt(strings.SplitN(id, "-", 2)[0], 10, 64)
	if err != nil {
		return 0
	}
	return max(now.Sub(time.UnixMilli(ms)), 0)
}
