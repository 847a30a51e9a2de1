package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is small durable state a channel or integration keeps beside the
// complaints: IMAP UID checkpoints, Slack message timestamps, rate limits,
// quarantined mail. Each user gets its own scope; keys live under the
// namespace's hash tag, so they sit in the same Redis Cluster slot as
// everything else.
type State struct {
	rdb    redis.UniversalClient
	prefix string
}

// State returns the state of one scope ("email", "slack", …).
func (s *Store) State(scope string) *State {
	return &State{rdb: s.rdb, prefix: s.keys.State(scope)}
}

func (st *State) key(k string) string { return st.prefix + k }

// Get returns the value under k; found is false when there is none.
func (st *State) Get(ctx context.Context, k string) (value string, found bool, err error) {
	v, err := st.rdb.Get(ctx, st.key(k)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading %s: %w", k, err)
	}
	return v, true, nil
}

// Set stores value under k; ttl 0 keeps it forever.
func (st *State) Set(ctx context.Context, k, value string, ttl time.Duration) error {
	if err := st.rdb.Set(ctx, st.key(k), value, ttl).Err(); err != nil {
		return fmt.Errorf("writing %s: %w", k, err)
	}
	return nil
}

// Claim stores value under k only if k is free, and reports whether it did:
// the building block for "at most once per …" (one acknowledgement per sender
// per hour, one handling of a retried Slack action).
func (st *State) Claim(ctx context.Context, k, value string, ttl time.Duration) (bool, error) {
	ok, err := st.rdb.SetNX(ctx, st.key(k), value, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("claiming %s: %w", k, err)
	}
	return ok, nil
}

// Delete removes k.
func (st *State) Delete(ctx context.Context, k string) error {
	if err := st.rdb.Del(ctx, st.key(k)).Err(); err != nil {
		return fmt.Errorf("deleting %s: %w", k, err)
	}
	return nil
}

// SetMax stores value under k unless a larger number is already there, so a
// checkpoint only ever moves forward even with two writers.
func (st *State) SetMax(ctx context.Context, k string, value int64) error {
	if err := setMaxScript.Run(ctx, st.rdb, []string{st.key(k)}, value).Err(); err != nil {
		return fmt.Errorf("advancing %s: %w", k, err)
	}
	return nil
}

var setMaxScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
`)

// Append adds value to the front of the list k, keeping at most max entries
// (0: no bound). Lists hold records such as quarantined mail, newest first.
func (st *State) Append(ctx context.Context, k, value string, max int) error {
	pipe := st.rdb.TxPipeline()
	pipe.LPush(ctx, st.key(k), value)
	if max > 0 {
		pipe.LTrim(ctx, st.key(k), 0, int64(max-1))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("appending to %s: %w", k, err)
	}
	return nil
}

// List returns up to n entries of the list k, newest first (n ≤ 0: all).
func (st *State) List(ctx context.Context, k string, n int) ([]string, error) {
	v, err := st.rdb.LRange(ctx, st.key(k), 0, int64(n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", k, err)
	}
	return v, nil
}

// Publish sends msg to every replica subscribed to topic (live updates such
// as a reply for an open chat window). Delivery is best effort: whatever must
// not be lost also goes through the outbox.
func (st *State) Publish(ctx context.Context, topic, msg string) error {
	if err := st.rdb.Publish(ctx, st.key(topic), msg).Err(); err != nil {
		return fmt.Errorf("publishing to %s: %w", topic, err)
	}
	return nil
}

// Subscribe receives what is published to topic until ctx ends.
// Pub/sub keeps nothing for a subscriber that is away: when the
// subscription is re-established after its connection was lost (Redis
// restarted, a health check went unanswered), whatever was published in
// between is gone, and resubscribed (when not nil) is called, so the caller
// can catch up from what is stored.
func (st *State) Subscribe(ctx context.Context, topic string, resubscribed func()) <-chan string {
	out := make(chan string, 64)
	sub := st.rdb.Subscribe(ctx, st.key(topic))
	go func() {
		defer close(out)
		defer sub.Close()
		ch := sub.ChannelWithSubscriptions()
		confirmed := 0
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				switch m := m.(type) {
				case *redis.Subscription:
					// The first confirmation is the subscription itself;
					// any later one follows a reconnection.
					if m.Kind == "subscribe" {
						confirmed++
						if confirmed > 1 && resubscribed != nil {
							resubscribed()
						}
					}
				case *redis.Message:
					select {
					case out <- m.Payload:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	return out
}
