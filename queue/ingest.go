package queue

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// Stream entry fields.
const (
	fieldData    = "data"
	fieldAttempt = "attempt"
)

// Enqueue stores an inbound message durably on the inbound stream, at most
// once per (channel, source id). It returns the message id, and for a
// duplicate the id the first delivery got. Only a nil error means the message
// is in Redis; channels acknowledge their source only then.
func (s *Store) Enqueue(ctx context.Context, msg router.Message) (id string, duplicate bool, err error) {
	if msg.Channel == "" || msg.SourceID == "" {
		return "", false, errors.New("enqueue: channel and source id are required")
	}
	msg.ID = NewMessageID(time.Now())
	// Kept to the millisecond, like the router's times: the complaint it
	// opens stores it in a few bytes (msTime).
	msg.ReceivedAt = msg.ReceivedAt.Truncate(time.Millisecond)
	data, err := json.Marshal(msg)
	if err != nil {
		return "", false, fmt.Errorf("encoding message: %w", err)
	}
	dedup := s.keys.Dedup(string(msg.Channel), msg.SourceID)
	ttl := int64(0)
	if s.dedupTTL > 0 {
		ttl = s.dedupTTL.Milliseconds()
	}
	// The dedup key holds the message id, and the content's fingerprint
	// after a space when the channel gave one.
	claim := msg.ID
	if msg.Fingerprint != "" {
		claim += " " + msg.Fingerprint
	}
	// The message's id is the claim's: the script puts it back.
	head := `{"id":"` + msg.ID + `"`
	if !strings.HasPrefix(string(data), head) {
		return "", false, fmt.Errorf("encoding message: it does not start with its id: %.40q", data)
	}
	res, err := ingestScript.Run(ctx, s.rdb, []string{dedup, s.keys.Inbound()}, claim, ttl, string(data[len(head):])).StringSlice()
	if err != nil {
		return "", false, fmt.Errorf("enqueueing %s message %q: %w", msg.Channel, msg.SourceID, err)
	}
	if len(res) != 2 {
		return "", false, fmt.Errorf("enqueueing %s message %q: unexpected reply", msg.Channel, msg.SourceID)
	}
	if res[0] == "duplicate" {
		first, fp, _ := strings.Cut(res[1], " ")
		if msg.Fingerprint != "" && fp != "" && fp != msg.Fingerprint {
			return first, true, fmt.Errorf("%s message %q: %w (first: %s)", msg.Channel, msg.SourceID, router.ErrSourceReused, first)
		}
		return first, true, nil
	}
	return msg.ID, false, nil
}

// ingestScript claims the idempotency key of a (channel, source id) and
// queues the message, or answers the id of the message that claimed it
// first: two commands for a new message.
// KEYS[1]: the dedup key; KEYS[2]: the inbound stream.
// ARGV[1]: the message id (and the content's fingerprint after a space);
// ARGV[2]: the dedup retention in ms (0: for ever); ARGV[3]: the message
// after its id, which is not sent twice: the message is {"id":"<id>" and
// ARGV[3].
var ingestScript = redis.NewScript(`
local claimed
if ARGV[2] ~= '0' then
  claimed = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
else
  claimed = redis.call('SET', KEYS[1], ARGV[1], 'NX')
end
if not claimed then return {'duplicate', redis.call('GET', KEYS[1])} end
redis.call('XADD', KEYS[2], '*', 'data', '{"id":"' .. string.match(ARGV[1], '^[^ ]*') .. '"' .. ARGV[3], 'attempt', '0')
return {'ok', ''}
`)

// crockford is Crockford's base32: no I, L, O or U to misread.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewMessageID returns "M-" and 26 characters: 48 bits of milliseconds then 80
// random bits, so ids sort by arrival and never collide in practice.
func NewMessageID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	var sb strings.Builder
	sb.WriteString("M-")
	// 128 bits as 26 base32 digits, most significant first.
	var acc uint64
	bits := 0
	sb.WriteByte(crockford[b[0]>>5])
	acc, bits = uint64(b[0]&0x1f), 5
	for _, c := range b[1:] {
		acc = acc<<8 | uint64(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			sb.WriteByte(crockford[(acc>>bits)&0x1f])
		}
	}
	return sb.String()
}
