package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DeadLetter is work that failed too often (or could never succeed), kept with
// its last error until someone retries or inspects it.
type DeadLetter struct {
	ID       string    `json:"id"`
	Stream   string    `json:"stream"`
	Entry    string    `json:"entry"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error"`
	FailedAt time.Time `json:"failed_at"`
	Data     string    `json:"data"`
}

// DeadLetters lists dead letters, newest first.
func (s *Store) DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		limit = 100
	}
	msgs, err := s.rdb.XRevRangeN(ctx, s.keys.DeadLetters(), "+", "-", int64(limit)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		d := decodeDeadLetter(m)
		if d.Stream == s.keys.Outbox() {
			d.Data = readableOutgoing(d.Data)
		}
		out = append(out, d)
	}
	return out, nil
}

// readableOutgoing is an outbox entry as the API shows complaints and
// events, not the records it carries as stored; data as it is when it
// does not decode to a notification or a customer message (that may be
// why it failed).
func readableOutgoing(data string) string {
	out, err := DecodeOutgoing([]byte(data))
	if err != nil || (out.Notification == nil && out.Customer == nil) {
		return data // nothing it knows to deliver: shown as it is
	}
	b, err := json.Marshal(out)
	if err != nil {
		return data
	}
	return string(b)
}

func decodeDeadLetter(m redis.XMessage) DeadLetter {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	d := DeadLetter{ID: m.ID, Stream: str("stream"), Entry: str("entry"), Error: str("error"), Data: str(fieldData)}
	d.Attempts, _ = strconv.Atoi(str("attempts"))
	d.FailedAt, _ = time.Parse(time.RFC3339Nano, str("failed_at"))
	return d
}

// retryDeadLetterScript puts a dead letter back on its stream with a fresh
// attempt count and removes it from the dead letters, once.
// KEYS[1]: the dead-letter stream; KEYS[2]: the stream it came from.
// ARGV[1]: the dead letter's id.
// Returns 1 when moved, 0 when there is no such dead letter.
var retryDeadLetterScript = redis.NewScript(`
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
local f, v = e[1][2], {}
for i = 1, #f, 2 do v[f[i]] = f[i + 1] end
if v['stream'] ~= KEYS[2] then return redis.error_reply('dead letter belongs to another stream') end
redis.call('XADD', KEYS[2], '*', 'data', v['data'], 'attempt', '0')
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
`)

// ErrNoDeadLetter means there is no dead letter with that id.
var ErrNoDeadLetter = errors.New("no such dead letter")

// streamIDPattern is the shape of a Redis stream entry id.
var streamIDPattern = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// RetryDeadLetter puts a dead letter back on its stream for a fresh round of
// attempts. Handlers are idempotent, so retrying something that partly
// succeeded does nothing twice.
func (s *Store) RetryDeadLetter(ctx context.Context, id string) error {
	if !streamIDPattern.MatchString(id) {
		// Not an id Redis could have given: it names no dead letter.
		return fmt.Errorf("dead letter %q (ids look like 1732361000000-0): %w", id, ErrNoDeadLetter)
	}
	msgs, err := s.rdb.XRange(ctx, s.keys.DeadLetters(), id, id).Result()
	if err != nil {
		return fmt.Errorf("reading dead letter %s: %w", id, err)
	}
	if len(msgs) == 0 {
		return fmt.Errorf("dead letter %s: %w", id, ErrNoDeadLetter)
	}
	stream := decodeDeadLetter(msgs[0]).Stream
	if stream != s.keys.Inbound() && stream != s.keys.Outbox() {
		return fmt.Errorf("dead letter %s came from unknown stream %q", id, stream)
	}
	n, err := retryDeadLetterScript.Run(ctx, s.rdb, []string{s.keys.DeadLetters(), stream}, id).Int()
	if err != nil {
		return fmt.Errorf("retrying dead letter %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("dead letter %s: %w", id, ErrNoDeadLetter)
	}
	return nil
}
