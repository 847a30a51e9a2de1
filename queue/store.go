// Package queue is everything Redis in forgetmenot: the inbound and outbox
// streams with their consumer groups, retries and dead letters, the complaint
// store the router commits to, and the embedded in-memory Redis for trying
// forgetmenot out. It is the only package that imports go-redis.
package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// Group names of the two consumer groups.
const (
	RouterGroup   = "router"
	DeliveryGroup = "delivery"
)

// Store keeps complaints in Redis and implements router.Store.
type Store struct {
	rdb  redis.UniversalClient
	keys Keys
	// ids hands out complaint ids from a block this process reserved.
	ids idBlock
	// absences are the absences routing read last (absenceCacheTTL).
	absences absenceCache
	// dedupTTL bounds how long an ingest idempotency key is kept; 0 keeps it
	// forever.
	dedupTTL time.Duration
	// onceTTL bounds how long a routed message's complaint and a once-key
	// are kept (see SetOnceRetention).
	onceTTL time.Duration
	// legacy is set while hashes of the unbounded layout (Keys.LegacyOnce,
	// Keys.LegacyMessageComplaints) may still hold fields: the once-guard
	// then looks there too.
	legacy atomic.Bool
}

// NewStore builds a store on rdb for the namespace's keys.
func NewStore(rdb redis.UniversalClient, keys Keys, dedupTTL time.Duration) *Store {
	s := &Store{rdb: rdb, keys: keys, dedupTTL: dedupTTL, onceTTL: DefaultOnceRetention}
	s.legacy.Store(true) // until Migrate has seen the legacy hashes gone
	return s
}

// DefaultOnceRetention is how long a routed message's complaint and a
// once-key are kept unless SetOnceRetention says otherwise: far beyond any
// redelivery (minutes to hours) and the complaint-rate look-back (8 weeks).
const DefaultOnceRetention = 90 * 24 * time.Hour

// SetOnceRetention sets how long a routed message's complaint (the
// routing once-guard and GET /v1/messages/{id}) and once-keys are kept;
// d ≤ 0 keeps the default. Call before use.
func (s *Store) SetOnceRetention(d time.Duration) {
	if d > 0 {
		s.onceTTL = d
	}
}

func (s *Store) onceTTLms() string { return msString(s.onceTTL.Milliseconds()) }

// onceGuard makes t apply at most once per key, which it sets to value
// under the once retention, looking also at field of the legacy hash while
// it may exist.
func (s *Store) onceGuard(t *tx, key, value, legacy, field string) {
	if !s.legacy.Load() {
		// Nothing to look up: the field is not sent either.
		legacy, field = "", ""
	}
	t.onceString(key, value, s.onceTTLms(), legacy, field)
}

// Keys returns the store's key builder.
func (s *Store) Keys() Keys { return s.keys }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

var _ router.Store = (*Store)(nil)

// Complaint loads one complaint.
func (s *Store) Complaint(ctx context.Context, id string) (router.Complaint, error) {
	key := s.keys.Complaint(id)
	data, err := s.rdb.Get(ctx, key).Result()
	if isWrongType(err) {
		data, err = legacyComplaintScript.Run(ctx, s.rdb, []string{key}).Text()
	}
	if errors.Is(err, redis.Nil) {
		return router.Complaint{}, fmt.Errorf("complaint %s: %w", id, router.ErrNotFound)
	}
	if err != nil {
		return router.Complaint{}, err
	}
	return decodeComplaint(data)
}

// A complaint is stored as a string: its record (see complaintRecord),
// which starts with its version, so a guard checks the version from the
// head of the string (tx.versionIs) and the whole complaint is one
// allocation in Redis. Layouts before 5 stored a hash of version and data,
// which takes some 200 bytes more: Migrate converts those, and until it has,
// reads fall back to the hash (legacyComplaintData).

// legacyComplaintData is the field of a complaint stored as a hash that
// holds its JSON (layouts before 5).
const legacyComplaintData = "data"

// storedComplaintLua defines, for the scripts that read complaints,
// storedComplaint(key): the JSON of the complaint stored at key (false when
// there is none), from the string, or from the data field of a hash that a
// layout before 5 wrote, in one step (a commit or the migration may turn
// the hash into a string between a GET and an HGET sent apart).
const storedComplaintLua = `
local function storedComplaint(key)
  local v = redis.pcall('GET', key)
  if type(v) == 'table' then return redis.call('HGET', key, 'data') end
  return v
end
`

// legacyComplaintScript reads a complaint that a layout before 5 may still
// hold as a hash. KEYS[1]: the complaint.
var legacyComplaintScript = redis.NewScript(storedComplaintLua + `
return storedComplaint(KEYS[1])
`)

// isWrongType tells whether err is Redis refusing a command for the type of
// the key: a complaint still stored as a hash, read as a string.
func isWrongType(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE") }

// Timeline loads a complaint's messages and events, oldest first.
func (s *Store) Timeline(ctx context.Context, id string) ([]router.Entry, error) {
	raw, err := s.rdb.LRange(ctx, s.keys.Timeline(id), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	return decodeTimeline(id, raw)
}

// Complaints lists complaints matching f, newest first. It reads from the most
// selective index and filters the rest in memory.
func (s *Store) Complaints(ctx context.Context, f router.Filter) ([]router.Complaint, error) {
	var ids []string
	var err error
	switch {
	case f.Customer != "":
		ids, err = s.rdb.ZRevRange(ctx, s.keys.Customer(customerIndexKey(f.Customer)), 0, -1).Result()
	case f.Owner != "" && f.Status == router.StatusOpen:
		ids, err = s.rdb.SMembers(ctx, s.keys.OwnerOpen(f.Owner)).Result()
	case f.Status == router.StatusOpen:
		// The open index is ordered by creation: the newest are read, and
		// only they are loaded, however many are open.
		ids, err = s.rdb.ZRevRange(ctx, s.keys.OpenComplaints(), 0, int64(f.Limit)-1).Result()
	default:
		return s.scanComplaints(ctx, f)
	}
	if err != nil {
		return nil, err
	}
	if f.Customer == "" && f.Limit > 0 && len(ids) > f.Limit {
		// Every member of an owner's open set matches the filter: load only
		// the newest, not all of them.
		if ids, err = s.newest(ctx, ids, f.Limit); err != nil {
			return nil, err
		}
	}
	cs, err := s.loadComplaints(ctx, ids)
	if err != nil {
		return nil, err
	}
	return limitNewest(filterComplaints(cs, f), f.Limit), nil
}

// CustomerComplaints returns a customer's newest complaints (at most limit)
// and how many they have in all: the count (ZCARD) and the newest ids go in
// one pipelined round trip, so a customer with 300 complaints costs no more
// than one with 3.
func (s *Store) CustomerComplaints(ctx context.Context, customer string, limit int) ([]router.Complaint, int, error) {
	key := s.keys.Customer(customerIndexKey(customer))
	pipe := s.rdb.Pipeline()
	count := pipe.ZCard(ctx, key)
	newest := pipe.ZRevRange(ctx, key, 0, int64(limit)-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, err
	}
	cs, err := s.loadComplaints(ctx, newest.Val())
	if err != nil {
		return nil, 0, err
	}
	return limitNewest(cs, limit), int(count.Val()), nil
}

// newest keeps the limit most recently created of ids, by their creation
// time in the complaints index, plus any tied with the last one kept (the
// index has millisecond scores; limitNewest decides the ties exactly).
func (s *Store) newest(ctx context.Context, ids []string, limit int) ([]string, error) {
	scores, err := s.rdb.ZMScore(ctx, s.keys.OpenComplaints(), ids...).Result()
	if err != nil {
		return nil, err
	}
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return scores[order[a]] > scores[order[b]] })
	cut := scores[order[limit-1]]
	out := make([]string, 0, limit)
	for _, i := range order {
		if len(out) >= limit && scores[i] < cut {
			break
		}
		out = append(out, ids[i])
	}
	return out, nil
}

// scanComplaints pages through all complaints from the newest until the
// limit is filled.
func (s *Store) scanComplaints(ctx context.Context, f router.Filter) ([]router.Complaint, error) {
	const page = 500
	var out []router.Complaint
	for start := int64(0); ; start += page {
		ids, err := s.rdb.ZRevRange(ctx, s.keys.Complaints(), start, start+page-1).Result()
		if err != nil {
			return nil, err
		}
		cs, err := s.loadComplaints(ctx, ids)
		if err != nil {
			return nil, err
		}
		out = append(out, filterComplaints(cs, f)...)
		if len(out) >= f.Limit || len(ids) < page {
			return limitNewest(out, f.Limit), nil
		}
	}
}

func (s *Store) loadComplaints(ctx context.Context, ids []string) ([]router.Complaint, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds, err := s.complaintData(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]router.Complaint, 0, len(ids))
	for _, cmd := range cmds {
		data, err := cmd.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		c, err := decodeComplaint(data)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func filterComplaints(cs []router.Complaint, f router.Filter) []router.Complaint {
	out := cs[:0]
	for _, c := range cs {
		if (f.Status == "" || c.Status == f.Status) && (f.Owner == "" || c.Owner == f.Owner) {
			out = append(out, c)
		}
	}
	return out
}

func limitNewest(cs []router.Complaint, limit int) []router.Complaint {
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].CreatedAt.After(cs[j].CreatedAt) })
	if limit > 0 && len(cs) > limit {
		cs = cs[:limit]
	}
	return cs
}

// customerIndexKey accepts an e-mail address or a customer key.
func customerIndexKey(customer string) string {
	if strings.Contains(customer, "@") && !strings.HasPrefix(customer, "email:") {
		return router.Customer{Email: customer}.Key("")
	}
	return customer
}

// MentionLines counts the "mentioned" lines commits added to a
// complaint's timeline.
func (s *Store) MentionLines(ctx context.Context, complaintID string) (int, error) {
	n, err := s.rdb.HGet(ctx, s.keys.Mentions(), complaintID).Int()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

// ThreadComplaints maps known thread keys to their complaints.
func (s *Store) ThreadComplaints(ctx context.Context, keys []string) (map[string]string, error) {
	if len(keys) == 0 {
		return map[string]string{}, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.keys.Threads(), keys...).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(keys))
	for i, v := range vals {
		if id, ok := v.(string); ok {
			out[keys[i]] = id
		}
	}
	return out, nil
}

// MessageComplaint tells which complaint a routed message is on (for the
// once retention after it was routed).
func (s *Store) MessageComplaint(ctx context.Context, messageID string) (string, bool, error) {
	m, err := s.MessagesRouted(ctx, []string{messageID})
	if err != nil {
		return "", false, err
	}
	id, ok := m[messageID]
	return id, ok, nil
}

// MessagesRouted maps each of the message ids that were routed (within the
// once retention) to its complaint.
func (s *Store) MessagesRouted(ctx context.Context, messageIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(messageIDs))
	if len(messageIDs) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cur := make([]*redis.StringCmd, len(messageIDs))
	for i, id := range messageIDs {
		cur[i] = pipe.Get(ctx, s.keys.MessageComplaint(id))
	}
	var legacy *redis.SliceCmd
	if s.legacy.Load() {
		legacy = pipe.HMGet(ctx, s.keys.LegacyMessageComplaints(), messageIDs...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for i, id := range messageIDs {
		if v, err := cur[i].Result(); err == nil {
			out[id] = v
		} else if legacy != nil {
			if v, ok := legacy.Val()[i].(string); ok {
				out[id] = v
			}
		}
	}
	return out, nil
}

// LatestComplaintOf returns the customer's most recently opened complaint.
func (s *Store) LatestComplaintOf(ctx context.Context, customerKey string) (router.Complaint, error) {
	ids, err := s.rdb.ZRevRange(ctx, s.keys.Customer(customerKey), 0, 0).Result()
	if err != nil {
		return router.Complaint{}, err
	}
	if len(ids) == 0 {
		return router.Complaint{}, fmt.Errorf("complaints of %s: %w", customerKey, router.ErrNotFound)
	}
	return s.Complaint(ctx, ids[0])
}

// OwnerLoads reads each owner's open count and last assignment time, in
// one HMGET.
func (s *Store) OwnerLoads(ctx context.Context, ownerIDs []string) (map[string]router.OwnerLoad, error) {
	out := make(map[string]router.OwnerLoad, len(ownerIDs))
	if len(ownerIDs) == 0 {
		return out, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.keys.OpenCounts(), loadFields(ownerIDs)...).Result()
	if err != nil {
		return nil, err
	}
	for i, id := range ownerIDs {
		out[id] = ownerLoad(vals, i)
	}
	return out, nil
}

// loadFields are the OpenCounts fields of the owners' loads: each owner's
// count, then their last assignment.
func loadFields(owners []string) []string {
	fields := make([]string, 0, 2*len(owners))
	for _, o := range owners {
		fields = append(fields, o, LastAssignedField(o))
	}
	return fields
}

// ownerLoad is the i-th owner's load from the values of loadFields.
func ownerLoad(vals []any, i int) router.OwnerLoad {
	var l router.OwnerLoad
	if 2*i+1 >= len(vals) {
		return l
	}
	if v, ok := vals[2*i].(string); ok {
		l.Open, _ = strconv.Atoi(v)
	}
	if v, ok := vals[2*i+1].(string); ok {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			l.LastAssigned = time.UnixMilli(ms).UTC()
		}
	}
	return l
}

// complaintIDBase makes the first complaint C-1001: four digits read better
// than one in subjects and on the phone.
const complaintIDBase = 1000

// idBlockSize is how many complaint ids a process reserves at once: one
// INCRBY per this many new complaints instead of one per complaint. Ids stay
// unique and are never reused; a process that stops leaves the rest of its
// block unused, and replicas open complaints from blocks of their own, so
// ids follow creation order only within one process.
const idBlockSize = 20

// idBlock is the part of a reserved block of ids not yet handed out.
type idBlock struct {
	mu         sync.Mutex
	next, last int64
}

// discard drops what is left of the block.
func (b *idBlock) discard() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next, b.last = 0, 0
}

// NextComplaintID hands out the next id of this process's block, reserving
// a new block when it is used up.
func (s *Store) NextComplaintID(ctx context.Context) (string, error) {
	b := &s.ids
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next == 0 || b.next > b.last {
		last, err := s.rdb.IncrBy(ctx, s.keys.ComplaintSeq(), idBlockSize).Result()
		if err != nil {
			return "", fmt.Errorf("reserving complaint ids: %w", err)
		}
		b.next, b.last = last-idBlockSize+1, last
	}
	n := b.next
	b.next++
	return "C-" + strconv.FormatInt(complaintIDBase+n, 10), nil
}

// Commit applies a router change in one atomic script: the complaint, its
// indexes and owner load, thread keys, timeline, outbox notifications and
// the message index. (The inbound entry that caused it is acknowledged by
// the consumer with its batch: the message index makes a redelivery a
// duplicate that changes nothing.)
//
// The customer's message the change stores is not sent again when the
// consumer handed the handler the inbound entry it routes (see
// deliveryKey) and the message is stored as it was received: the script
// copies it from that entry, which is still in the stream.
func (s *Store) Commit(ctx context.Context, ch router.Change) error {
	var src *inboundSource
	if d, ok := ctx.Value(deliveryKey{}).(*Delivery); ok && d.Stream == s.keys.Inbound() && ch.MessageID != "" {
		src = &inboundSource{d: d, messageID: ch.MessageID}
	}
	t, err := s.changeTx(ch, src)
	if err != nil {
		return err
	}
	res, err := t.run(ctx, s.rdb)
	if err != nil && len(t.sources) > 0 && strings.Contains(err.Error(), sourceGone) {
		// The inbound entry went meanwhile (another consumer took it over
		// and finished it, say): nothing was written, and the change is
		// sent with the message in full.
		if t, err = s.changeTx(ch, nil); err != nil {
			return err
		}
		res, err = t.run(ctx, s.rdb)
	}
	if err != nil {
		return router.NamesComplaint(ch.After.ID, fmt.Errorf("committing change to %s: %w", ch.After.ID, err))
	}
	switch res.status {
	case "ok":
		return nil
	case "duplicate":
		return fmt.Errorf("%s%s: %w", ch.MessageID, ch.OnceKey, &router.AppliedError{ComplaintID: res.value})
	default:
		if ch.Before == nil && res.value == newComplaintGuard+ch.After.ID {
			// The rest of this block is suspect too: reserve a fresh one.
			s.ids.discard()
			return router.NamesComplaint(ch.After.ID, fmt.Errorf("%s exists already: %w", ch.After.ID, router.ErrIDTaken))
		}
		return router.NamesComplaint(ch.After.ID, fmt.Errorf("%s changed meanwhile (%s): %w", ch.After.ID, res.value, router.ErrConflict))
	}
}

// newComplaintGuard names the guard that a new complaint's key is free.
const newComplaintGuard = "new complaint "

// sourceGone is in commitScript's error when a source was not found.
const sourceGone = "commit: source gone"

// inboundSource is the inbound entry a change routes: the writes of the
// change copy the routed message from it (tx.source) when they store it
// as it was received.
type inboundSource struct {
	d         *Delivery
	messageID string
	ref       *txRef // once declared in the tx
}

// message returns the pieces that make m's JSON from the inbound entry, if
// m is the message the entry holds, perhaps with the language the router
// detected added: the ingest encoded it with the same encoder, so the
// message is unchanged exactly when it encodes to the entry's data.
func (src *inboundSource) message(t *tx, m *router.Message) ([]txPiece, bool) {
	if src == nil || m.ID != src.messageID {
		return nil, false
	}
	data := src.d.Data
	plain := *m
	plain.Language = ""
	b, err := json.Marshal(plain)
	if err != nil {
		return nil, false
	}
	tail := ""
	if !bytes.Equal(b, data) {
		// A language the channel gave is in the entry already.
		if m.Language == "" {
			return nil, false
		}
		if b, err = json.Marshal(m); err != nil || !bytes.Equal(b, data) {
			return nil, false
		}
	} else if m.Language != "" {
		// The entry has no language ("omitempty"): the message's is added
		// at the end, which decodes to the same message.
		lang, err := json.Marshal(m.Language)
		if err != nil {
			return nil, false
		}
		tail = `,"language":` + string(lang) + "}"
	}
	if src.ref == nil {
		r := t.source(src.d.Stream, src.d.ID, string(data))
		src.ref = &r
	}
	r := *src.ref
	if tail == "" {
		return []txPiece{{ref: &r}}, true
	}
	r.from, r.to = 0, len(data)-1 // without its closing brace
	return []txPiece{{ref: &r}, {lit: tail}}, true
}

func (s *Store) changeTx(ch router.Change, src *inboundSource) (*tx, error) {
	k := s.keys
	t := &tx{}
	switch {
	case ch.MessageID != "" && ch.OnceKey != "":
		return nil, errors.New("commit: a change has either a message id or a once key")
	case ch.MessageID != "":
		s.onceGuard(t, k.MessageComplaint(ch.MessageID), ch.After.ID, k.LegacyMessageComplaints(), ch.MessageID)
	case ch.OnceKey != "":
		s.onceGuard(t, k.Once(ch.OnceKey), ch.After.ID, k.LegacyOnce(), ch.OnceKey)
	}
	main, err := s.complaintChange(t, ch, src)
	if err != nil {
		return nil, err
	}
	for _, rel := range ch.Related {
		if rel.MessageID != "" || rel.OnceKey != "" || len(rel.Related) > 0 {
			return nil, errors.New("commit: a related change carries no message id, once key or further changes")
		}
		if _, err := s.complaintChange(t, rel, src); err != nil {
			return nil, err
		}
	}
	for _, m := range ch.Mentions {
		b, err := encodeEntry(m.Entry, nil)
		if err != nil {
			return nil, err
		}
		t.write("RPUSH", k.Timeline(m.ComplaintID), string(b))
		t.write("HINCRBY", k.Mentions(), m.ComplaintID, "1")
	}
	for _, n := range ch.Notifications {
		if err := s.queueNotification(t, n, ch, main); err != nil {
			return nil, err
		}
	}
	for _, m := range ch.CustomerMessages {
		if err := s.queueCustomerMessage(t, m, src, main); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// queueCustomerMessage adds m to the outbox. The complaint m carries, when
// it is the one the change stores, and the message it answers, when it is
// the routed one as received, are copied by the script, as a
// notification's are.
func (s *Store) queueCustomerMessage(t *tx, m router.CustomerMessage, src *inboundSource, w written) error {
	b, err := json.Marshal(router.Outgoing{Customer: &m})
	if err != nil {
		return fmt.Errorf("encoding customer message: %w", err)
	}
	var parts []splice
	if m.Complaint.ID == w.after.ID && reflect.DeepEqual(m.Complaint, w.after) {
		// The stored record takes the place of the complaint's JSON
		// (DecodeOutgoing reads either).
		cb, err := json.Marshal(m.Complaint)
		if err != nil {
			return fmt.Errorf("encoding customer message: %w", err)
		}
		parts = append(parts, splice{`"complaint":` + string(cb), []txPiece{{lit: `"complaint":`}, {ref: &w.data}}})
	}
	if m.InReplyTo != nil {
		if msg, ok := src.message(t, m.InReplyTo); ok {
			mb, err := json.Marshal(m.InReplyTo)
			if err != nil {
				return fmt.Errorf("encoding customer message: %w", err)
			}
			parts = append(parts, splice{`"in_reply_to":` + string(mb), append([]txPiece{{lit: `"in_reply_to":`}}, msg...)})
		}
	}
	t.writePieces("XADD", s.keys.Outbox(), [][]txPiece{
		{{lit: "*"}}, {{lit: fieldData}}, spliced(string(b), parts), {{lit: fieldAttempt}}, {{lit: "0"}},
	})
	return nil
}

// minReuse is the shortest text worth copying from elsewhere in the tx
// rather than sending it: a reference, and the joining of the argument it
// is in, cost about 35 bytes.
const minReuse = 40

// reuse returns text as pieces that copy each of needles (of at least
// minReuse bytes) that text and what r names both hold from r. A needle
// is replaced by the very same bytes, wherever it is.
func (t *tx) reuse(text string, r txRef, needles ...string) []txPiece {
	from := t.text(r)
	type found struct{ at, from int }
	var parts []splice
	var at []found
	for _, n := range needles {
		if len(n) < minReuse {
			continue
		}
		i, j := strings.Index(text, n), strings.Index(from, n)
		if i < 0 || j < 0 {
			continue
		}
		ref := r
		ref.from, ref.to = r.from+j, r.from+j+len(n)
		parts = append(parts, splice{n, []txPiece{{ref: &ref}}})
		at = append(at, found{i, j})
	}
	// spliced takes parts in the order they come in text, not overlapping.
	order := make([]int, len(parts))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return at[order[a]].at < at[order[b]].at })
	var sorted []splice
	end := 0
	for _, i := range order {
		if at[i].at >= end {
			sorted = append(sorted, parts[i])
			end = at[i].at + len(parts[i].text)
		}
	}
	return spliced(text, sorted)
}

// splice is text to be replaced by pieces that make the very same text.
type splice struct {
	text   string
	pieces []txPiece
}

// spliced is s as pieces: each part's text, where it occurs in s after the
// part before, is replaced by its pieces (which make the same bytes, so
// which occurrence is replaced does not matter), and literal text next to
// each other is joined.
func spliced(s string, parts []splice) []txPiece {
	var out []txPiece
	lit := func(l string) {
		if l == "" {
			return
		}
		if n := len(out); n > 0 && out[n-1].ref == nil {
			out[n-1].lit += l
			return
		}
		out = append(out, txPiece{lit: l})
	}
	for _, p := range parts {
		i := strings.Index(s, p.text)
		if i < 0 {
			continue
		}
		lit(s[:i])
		for _, q := range p.pieces {
			if q.ref == nil {
				lit(q.lit)
			} else {
				out = append(out, q)
			}
		}
		s = s[i+len(p.text):]
	}
	lit(s)
	return out
}

// written says where a complaint change put what a notification repeats:
// the complaint's data and its timeline entries.
type written struct {
	data    txRef
	entries []txRef
	after   router.Complaint
}

// complaintChange adds one complaint's guarded change to t: its state,
// indexes, owner load, timers, thread keys and timeline.
func (s *Store) complaintChange(t *tx, ch router.Change, src *inboundSource) (written, error) {
	after := ch.After
	if after.ID == "" || after.Owner == "" {
		return written{}, errors.New("commit: a complaint needs an id and an owner")
	}
	k := s.keys
	ckey := k.Complaint(after.ID)
	before := ch.Before
	if before == nil {
		// The counter makes ids unique, but a block of them lives in this
		// process's memory for as long as it lasts: if Redis lost the INCRBY
		// that reserved it (a failover, a restore), another process gets the
		// same ids. Every complaint is in the index of all complaints, so
		// adding the new one there is the guard that it overwrites none (and
		// costs no command more).
		t.addNew(newComplaintGuard+after.ID, k.Complaints(), msString(after.CreatedAt.UnixMilli()), after.ID)
	} else {
		t.versionIs("version of "+after.ID, ckey, strconv.FormatInt(before.Version, 10))
	}
	for _, c := range ch.ThreadKeys {
		t.fieldEquals("thread key "+c.Key, k.Threads(), c.Key, c.Expect)
	}
	counted := "" // the owner whose open count the capacity guard raises
	if g := ch.Capacity; g != nil {
		if opens(before, after) && g.Owner == after.Owner {
			t.incrementAtMost("capacity of "+g.Owner, k.OpenCounts(), g.Owner, g.Limit)
			counted = g.Owner
		} else {
			t.countBelow("capacity of "+g.Owner, k.OpenCounts(), g.Owner, g.Limit)
		}
	}

	data, err := encodeComplaint(after)
	if err != nil {
		return written{}, err
	}
	// The routed message, copied from the inbound entry if it can be; the
	// complaint's customer and subject too, if long enough to pay.
	copied := make([][]txPiece, len(ch.Entries))
	for i, e := range ch.Entries {
		if e.Message != nil && e.Event == nil {
			copied[i], _ = src.message(t, e.Message)
		}
	}
	var reused []txPiece
	if src != nil && src.ref != nil {
		customer, err := json.Marshal(after.Customer)
		if err != nil {
			return written{}, router.NamesComplaint(after.ID, fmt.Errorf("encoding complaint %s: %w", after.ID, err))
		}
		subject, err := json.Marshal(after.Subject)
		if err != nil {
			return written{}, router.NamesComplaint(after.ID, fmt.Errorf("encoding complaint %s: %w", after.ID, err))
		}
		reused = t.reuse(string(data), *src.ref, string(customer), string(subject))
	}
	w := written{after: after}
	// SET replaces a complaint a layout before 5 stored as a hash, too.
	if len(reused) > 1 {
		w.data = t.writePieces("SET", ckey, [][]txPiece{reused})
	} else {
		w.data = t.write("SET", ckey, string(data))
	}
	if before == nil {
		if after.CustomerKey != "" {
			t.write("ZADD", k.Customer(after.CustomerKey), msString(after.CreatedAt.UnixMilli()), after.ID)
		}
	}
	syncOpen(t, k, before, after, counted)
	syncTimers(t, k, before, after)
	syncBreaches(t, k, before, after)
	if !ch.AssignedAt.IsZero() {
		t.write("HSET", k.OpenCounts(), LastAssignedField(after.Owner), msString(ch.AssignedAt.UnixMilli()))
	}
	for _, c := range ch.ThreadKeys {
		t.write("HSET", k.Threads(), c.Key, after.ID)
	}
	var prev *time.Time // the time of the entry before, written by this change
	for i, e := range ch.Entries {
		if msg := copied[i]; msg != nil {
			// {"t":…,"m":<the message>}, as encodeEntry(e, prev).
			head, err := entryHead(e, prev)
			if err != nil {
				return written{}, err
			}
			pieces := append([]txPiece{{lit: string(head) + entryRecordMessage}}, msg...)
			prev = &ch.Entries[i].At
			if last := &pieces[len(pieces)-1]; last.ref == nil {
				last.lit += "}"
			} else {
				pieces = append(pieces, txPiece{lit: "}"})
			}
			w.entries = append(w.entries, t.writePieces("RPUSH", k.Timeline(after.ID), [][]txPiece{pieces}))
			continue
		}
		b, err := encodeEntry(e, prev)
		if err != nil {
			return written{}, err
		}
		prev = &ch.Entries[i].At
		if e.Event != nil && e.Event.Reason != "" {
			// An assignment's reason is the complaint's routing reason.
			reason, err := json.Marshal(e.Event.Reason)
			if err != nil {
				return written{}, fmt.Errorf("encoding timeline entry: %w", err)
			}
			if p := t.reuse(string(b), w.data, string(reason)); len(p) > 1 {
				w.entries = append(w.entries, t.writePieces("RPUSH", k.Timeline(after.ID), [][]txPiece{p}))
				continue
			}
		}
		w.entries = append(w.entries, t.write("RPUSH", k.Timeline(after.ID), string(b)))
	}
	return w, nil
}

// opens tells whether a change makes after's owner carry one more open
// complaint.
func opens(before *router.Complaint, after router.Complaint) bool {
	wasOpen := before != nil && before.Status == router.StatusOpen
	return after.Status == router.StatusOpen && (!wasOpen || before.Owner != after.Owner)
}

// syncOpen keeps the open indexes (the owner's open set and count, the open
// complaints by time, the figure indexes) in step with a complaint's change,
// in the same step as the change itself.
func syncOpen(t *tx, k Keys, before *router.Complaint, after router.Complaint, counted string) {
	wasOpen := before != nil && before.Status == router.StatusOpen
	isOpen := after.Status == router.StatusOpen
	if wasOpen && (!isOpen || before.Owner != after.Owner) {
		t.write("SREM", k.OwnerOpen(before.Owner), after.ID)
		t.write("HINCRBY", k.OpenCounts(), before.Owner, "-1")
	}
	if opens(before, after) {
		t.write("SADD", k.OwnerOpen(after.Owner), after.ID)
		if counted != after.Owner {
			t.write("HINCRBY", k.OpenCounts(), after.Owner, "1")
		}
	}
	switch {
	case isOpen && !wasOpen:
		t.write("ZADD", k.OpenComplaints(), msString(after.CreatedAt.UnixMilli()), after.ID)
	case wasOpen && !isOpen:
		t.write("ZREM", k.OpenComplaints(), after.ID)
	}
	syncFigures(t, k, before, after)
}

// queueNotification adds n to the outbox. What n repeats of the change
// itself (the complaint as stored, the event and the message of its
// timeline entries) is not sent twice: the script copies it from the
// arguments that store it, and the entry comes out as it always was, a
// self-contained notification.
func (s *Store) queueNotification(t *tx, n router.Notification, ch router.Change, w written) error {
	var pieces []txPiece
	head, err := json.Marshal(notificationHead{ID: n.ID, Kind: n.Kind, Recipient: n.Recipient, At: n.At, Digest: n.Digest})
	if err != nil {
		return fmt.Errorf("encoding notification: %w", err)
	}
	lit := append([]byte(`{"notification":`), head[:len(head)-1]...)
	flush := func() {
		if len(lit) > 0 {
			pieces = append(pieces, txPiece{lit: string(lit)})
			lit = lit[:0]
		}
	}
	lit = append(lit, `,"complaint":`...)
	if n.Complaint.ID == w.after.ID && reflect.DeepEqual(n.Complaint, w.after) {
		flush()
		pieces = append(pieces, txPiece{ref: &w.data})
	} else {
		b, err := json.Marshal(n.Complaint)
		if err != nil {
			return fmt.Errorf("encoding notification: %w", err)
		}
		lit = append(lit, b...)
	}
	// The event and message, from the timeline entry that holds the very
	// same one when there is one.
	inner := func(field, recordField string, match func(router.Entry) bool, v any) error {
		lit = append(lit, `,"`+field+`":`...)
		for i, e := range ch.Entries {
			if i < len(w.entries) && match(e) {
				if r, ok := s.entryPart(t, w.entries[i], recordField); ok {
					flush()
					pieces = append(pieces, txPiece{ref: &r})
					return nil
				}
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding notification: %w", err)
		}
		lit = append(lit, b...)
		return nil
	}
	// entryPart relies on an entry holding one of the two.
	if n.Event != nil {
		if err := inner("event", entryRecordEvent, func(e router.Entry) bool { return e.Event == n.Event && e.Message == nil }, n.Event); err != nil {
			return err
		}
	}
	if n.Message != nil {
		if err := inner("message", entryRecordMessage, func(e router.Entry) bool { return e.Message == n.Message && e.Event == nil }, n.Message); err != nil {
			return err
		}
	}
	lit = append(lit, "}}"...)
	flush()
	t.writePieces("XADD", s.keys.Outbox(), [][]txPiece{
		{{lit: "*"}}, {{lit: fieldData}}, pieces, {{lit: fieldAttempt}}, {{lit: "0"}},
	})
	return nil
}

// notificationHead is a notification without what it repeats of the
// change: the complaint, event and message are joined to it by the script.
type notificationHead struct {
	ID        string                  `json:"id"`
	Kind      router.NotificationKind `json:"kind"`
	Recipient string                  `json:"recipient"`
	At        time.Time               `json:"at"`
	Digest    *router.Digest          `json:"digest,omitempty"`
}

// entryPart is the reference to the object after field (entryRecordEvent
// or entryRecordMessage) in the timeline entry at r: an entry record is
// {"t":…,<field>{…}} or {<field>{…}}, with nothing after the object but
// the entry's closing brace (and no field before it that could hold the
// text: its time is a number or a time's text).
func (s *Store) entryPart(t *tx, r txRef, field string) (txRef, bool) {
	arg := t.text(r)
	i := strings.Index(arg, field)
	if i < 0 || !strings.HasSuffix(arg, "}}") {
		return txRef{}, false
	}
	r.from, r.to = i+len(field), len(arg)-1
	return r, true
}
