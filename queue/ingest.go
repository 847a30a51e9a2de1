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
	data, err := json.Marshal(msg)
	if err != nil {
		return "", false, fmt.Errorf("encoding message: %w", err)
	}
	dedup := s.keys.Dedup(string(msg.Channel), msg.SourceID)
	t := &tx{}
	t.once(dedup, "")
	if s.dedupTTL > 0 {
		t.write("SET", dedup, msg.ID, "PX", msString(s.dedupTTL.Milliseconds()))
	} else {
		t.write("SET", dedup, msg.ID)
	}
	t.write("XADD", s.keys.Inbound(), "*", fieldData, string(data), fieldAttempt, "0")
	res, err := t.run(ctx, s.rdb)
	if err != nil {
		return "", false, fmt.Errorf("enqueueing %s message %q: %w", msg.Channel, msg.SourceID, err)
	}
	if res.status == "duplicate" {
		return res.value, true, nil
	}
	return msg.ID, false, nil
}

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
