package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// The erasure map: every kind of key forgetmenot writes in a namespace, what
// personal data it can hold, and how an erasure (issue 16) deals with it.
// It is the one place to update when the key layout changes: the privacy
// tests scan a namespace after exercising every channel and fail on a key no
// kind here matches, and after an erasure they dump every key and fail on any
// trace of the erased customer.

// KeyKind is one kind of key in a namespace.
type KeyKind struct {
	// Name identifies the kind ("complaint", "state:email:ack").
	Name string
	// Pattern matches the key after the namespace's "{ns}:" prefix.
	Pattern *regexp.Regexp
	// Personal says what personal data the kind can hold; "" for none.
	Personal string
	// Erasure says how an erasure covers it; for kinds without personal
	// data, why it is kept.
	Erasure string
	// sweep, when set, is the SCAN glob (after "{ns}:") of the keys the
	// state step of an erasure visits, and clean decides each one.
	sweep string
	clean func(ctx context.Context, s *Store, key string, p *PersonalData) (bool, error)
}

// ErasureMap lists every key kind of the namespace (see KeyKind).
func ErasureMap() []KeyKind { return erasureMap }

var erasureMap = []KeyKind{
	{Name: "stream:inbound", Pattern: re(`stream:inbound`),
		Personal: "customer messages waiting to be routed (names, addresses, texts)",
		Erasure:  "entries from the customer are acknowledged and deleted (the consumer skips a deleted entry)"},
	{Name: "stream:outbox", Pattern: re(`stream:outbox`),
		Personal: "notifications and replies about complaints (complaint copies, texts)",
		Erasure:  "entries about the erased complaints are acknowledged and deleted; staff get one 'erased' notification that re-renders the Slack top message"},
	{Name: "stream:deadletters", Pattern: re(`stream:deadletters`),
		Personal: "failed work with its data and error",
		Erasure:  "entries about the erased complaints or naming the customer are deleted"},
	{Name: "stream:delayed", Pattern: re(`stream:(inbound|outbox):delayed`),
		Personal: "entries waiting for a retry",
		Erasure:  "members about the erased complaints or naming the customer are removed"},
	{Name: "stream:consumers-seen", Pattern: re(`stream:[a-z]+:group:[a-z]+:seen`),
		Erasure: "no personal data (replica names)"},
	{Name: "dedup", Pattern: re(`dedup:[a-z]+:.+`),
		Personal: "the channel's source id in the key name (Message-ID, chat session, post id)",
		Erasure:  "deleted for every message of the customer"},
	{Name: "seq:complaint", Pattern: re(`seq:complaint`), Erasure: "no personal data (a counter)"},
	{Name: "complaint", Pattern: re(`complaint:[A-Za-z0-9-]+`),
		Personal: "the customer (name, address, ids), subject, identities, promise note",
		Erasure:  "rewritten with the pseudonym; id, owner, team, dates, category, deadlines, breaches, promises and CSAT score kept"},
	{Name: "timeline", Pattern: re(`complaint:[A-Za-z0-9-]+:timeline`),
		Personal: "every message (texts, headers, metadata) and staff texts",
		Erasure:  "rewritten: messages keep id, channel and time; texts, metadata and source ids removed; events keep type, actor, owners and times"},
	{Name: "complaints", Pattern: re(`complaints(:open-by-time)?`), Erasure: "no personal data (complaint ids)"},
	{Name: "owner:open", Pattern: re(`owner:.+:(open|due)`), Erasure: "no personal data (complaint ids of an owner)"},
	{Name: "owners:open-count", Pattern: re(`owners:open-count`), Erasure: "no personal data (counts and last assignment times per owner)"},
	{Name: "promises", Pattern: re(`promises:(pending|broken)`), Erasure: "no personal data (complaint ids)"},
	{Name: "layout", Pattern: re(`layout`), Erasure: "no personal data (the key layout's version)"},
	{Name: "migration", Pattern: re(`migration:[a-z0-9-]+`), Erasure: "no personal data (when a one-time data migration finished)"},
	{Name: "owners:last-assigned", Pattern: re(`owners:last-assigned`), Erasure: "no personal data (layouts before 4; folded into owners:open-count at start)"},
	{Name: "threads", Pattern: re(`threads`),
		Personal: "thread keys in field names (Message-IDs, chat sessions, forum topics, webhook threads)",
		Erasure:  "every field pointing at an erased complaint is deleted"},
	{Name: "once", Pattern: re(`once:.+`),
		Personal: "once-keys of applied changes: some name an outside reference (external-reply:<key>); values are complaint ids",
		Erasure:  "keys of the erased complaints that name the customer are deleted; the others hold internal ids only and keep exactly-once for work in flight (all expire after ONCE_RETENTION)"},
	{Name: "message", Pattern: re(`message:.+`),
		Erasure: "no personal data (random message id → complaint id); kept so a redelivered message is not routed twice, expires after ONCE_RETENTION"},
	{Name: "customer", Pattern: re(`customer:.+`),
		Personal: "the customer's identity (address, session, ids) in the key name",
		Erasure:  "deleted; the erased complaints are indexed under customer:erased:<pseudonym>"},
	{Name: "timers", Pattern: re(`timers`), Erasure: "no personal data; an erased complaint's timers are removed with it"},
	{Name: "breaches", Pattern: re(`breaches`), Erasure: "no personal data (complaint id, breach kind, when); kept for the reports"},
	{Name: "mentions", Pattern: re(`mentions`), Erasure: "no personal data (complaint id → the number of lines strangers' messages added)"},
	{Name: "absences", Pattern: re(`absences`), Erasure: "staff data only"},
	{Name: "volumes", Pattern: re(`volumes`), Erasure: "no personal data"},
	{Name: "privacy:erasures", Pattern: re(`privacy:erasures`),
		Personal: "erasures in progress (the identities being erased)",
		Erasure:  "each entry is deleted when its erasure finishes"},
	{Name: "privacy:log", Pattern: re(`privacy:log`), Erasure: "the audit of erasures: pseudonyms, complaint ids, counts, actor, reason (redacted)"},
	{Name: "privacy:erased", Pattern: re(`privacy:erased`), Erasure: "no personal data (erased complaint ids)"},

	// Channel state (queue.State scopes).
	{Name: "state:lease", Pattern: re(`state:[a-z]+:lease:.+`), Erasure: "no personal data (replica names)"},
	{Name: "state:email:uid", Pattern: re(`state:email:(uid|uidvalidity):.+`), Erasure: "no personal data (IMAP checkpoints)"},
	{Name: "state:email:message-id-secret", Pattern: re(`state:email:message-id-secret`), Erasure: "no personal data (the deployment's key for Message-ID tags)"},
	{Name: "state:email:quarantined", Pattern: re(`state:email:quarantined:.+`), Erasure: "no personal data (mailbox, UIDVALIDITY, UID)"},
	{Name: "state:email:quarantine", Pattern: re(`state:email:quarantine`),
		Personal: "From and Subject of unreadable mail",
		Erasure:  "records naming the customer are removed", sweep: "state:email:quarantine", clean: cleanList},
	{Name: "state:email:ack", Pattern: re(`state:email:ack:.+`),
		Personal: "the address in the key name (one acknowledgement per hour)",
		Erasure:  "deleted (expires after an hour anyway)", sweep: "state:email:ack:*", clean: cleanNamed},
	{Name: "state:forum:ids", Pattern: re(`state:forum:(topic|queued|sent):.+`), Erasure: "no personal data (topic and post ids)"},
	{Name: "state:forum:author", Pattern: re(`state:forum:author:[0-9]+:[0-9]+`),
		Personal: "the customer key of a post's author",
		Erasure:  "deleted when it is the customer's", sweep: "state:forum:author:*", clean: cleanValue},
	{Name: "state:forum:waiting", Pattern: re(`state:forum:waiting:[0-9]+`),
		Personal: "a post waiting for its topic's decision (text, username)",
		Erasure:  "deleted when it is the customer's", sweep: "state:forum:waiting:*", clean: cleanValue},
	{Name: "state:chat:online", Pattern: re(`state:chat:online:.+`),
		Personal: "a chat session id in the key name (presence, seconds)",
		Erasure:  "deleted", sweep: "state:chat:online:*", clean: cleanNamed},
	{Name: "state:chat:known", Pattern: re(`state:chat:known:.+`),
		Personal: "a chat session id in the key name (a session admitted before, 30 days)",
		Erasure:  "deleted", sweep: "state:chat:known:*", clean: cleanNamed},
	{Name: "state:chat:rate:session", Pattern: re(`state:chat:rate:session:.+`),
		Personal: "a chat session id in the key name (a minute's rate limit)",
		Erasure:  "deleted", sweep: "state:chat:rate:session:*", clean: cleanNamed},
	{Name: "state:chat:rate:ip", Pattern: re(`state:chat:rate:(ip|sessions):.+`),
		Personal: "a network address in the key name, not linked to any customer",
		Erasure:  "not linked to a customer; expires after a minute"},
	{Name: "state:slack:thread", Pattern: re(`state:slack:thread:.+`),
		Personal: "the top message's channel, timestamp and headline",
		Erasure:  "the headline is redacted", sweep: "state:slack:thread:*", clean: cleanRedact},
	{Name: "state:slack:ids", Pattern: re(`state:slack:(root|posted|handled|lead|action|view|event|fallback):.+`),
		Erasure: "no personal data (Slack timestamps, complaint and notification ids)"},
	{Name: "state:slack:home", Pattern: re(`state:slack:home:.+`), Erasure: "staff data only (an owner's Slack user for App Home)"},
	{Name: "state:privacy", Pattern: re(`state:privacy:.+`), Erasure: "no personal data"},
}

func re(p string) *regexp.Regexp { return regexp.MustCompile(`^` + p + `$`) }

// KindOf finds the kind of a key of this namespace; false for a key no
// kind covers (a new key the erasure map must learn).
func (k Keys) KindOf(key string) (KeyKind, bool) {
	rest, ok := strings.CutPrefix(key, k.tag+":")
	if !ok {
		return KeyKind{}, false
	}
	// Longest match wins: "complaint:C-1:timeline" is a timeline, not a
	// complaint with a strange id.
	var best KeyKind
	found := false
	for _, kind := range erasureMap {
		if kind.Pattern.MatchString(rest) && (!found || len(kind.Pattern.String()) > len(best.Pattern.String())) {
			best, found = kind, true
		}
	}
	return best, found
}

// Privacy keys.

// Erasures is a hash of erasure id → the erasure in progress, as JSON.
func (k Keys) Erasures() string { return k.tag + ":privacy:erasures" }

// PrivacyLog is the stream auditing every erasure (no personal data).
func (k Keys) PrivacyLog() string { return k.tag + ":privacy:log" }

// Erased is a sorted set of erased complaint ids by erasure time.
func (k Keys) Erased() string { return k.tag + ":privacy:erased" }

// PersonalData is what names one customer, for finding it in keys.
type PersonalData struct {
	// ComplaintIDs are the customer's complaints.
	ComplaintIDs []string
	// Pseudonym marks what the erasure itself wrote (already pseudonymised,
	// such as the owners' "erased" notifications): kept.
	Pseudonym string
	strong    []string
	names     []string
	// identifying matches the strong tokens; mentioning every token.
	identifying, mentioning *regexp.Regexp
}

// NewPersonalData matches tokens as whole words, case-insensitively:
// "forum:7" does not match "forum:70". Strong tokens (addresses, identity
// keys, session and user ids, usernames) identify the customer: a key or
// entry holding one is theirs and is deleted. Names only mention them
// (another customer may share a name): they are redacted from texts that
// are kept, never a reason to delete. Tokens shorter than 3 characters are
// ignored (they would match everyone).
func NewPersonalData(strong, names, complaintIDs []string) *PersonalData {
	p := &PersonalData{ComplaintIDs: complaintIDs}
	seen := map[string]bool{}
	keep := func(list []string) []string {
		var out []string
		for _, t := range list {
			t = strings.TrimSpace(t)
			if len([]rune(t)) < 3 || seen[strings.ToLower(t)] {
				continue
			}
			seen[strings.ToLower(t)] = true
			out = append(out, t)
		}
		return out
	}
	p.strong, p.names = keep(strong), keep(names)
	p.identifying = wordsPattern(p.strong)
	p.mentioning = wordsPattern(append(slices.Clone(p.strong), p.names...))
	return p
}

func wordsPattern(tokens []string) *regexp.Regexp {
	if len(tokens) == 0 {
		return nil
	}
	alts := make([]string, 0, len(tokens))
	for _, t := range tokens {
		alts = append(alts, regexp.QuoteMeta(t))
	}
	// Longest first, so a name is replaced whole before a part of it.
	sort.Slice(alts, func(i, j int) bool { return len(alts[i]) > len(alts[j]) })
	return regexp.MustCompile(`(?i)(^|[^\pL\pN])(` + strings.Join(alts, "|") + `)([^\pL\pN]|$)`)
}

// WithNameParts adds the parts of each name (first and last names: words
// of three letters or more written with a capital) as names. In the texts
// of the erased complaints themselves, and the erasure's own reason, "Called
// Maarten" names the customer as surely as "Maarten Visser" does. Not for
// other customers' data: a first name alone is shared by many.
func (p *PersonalData) WithNameParts() *PersonalData {
	names := slices.Clone(p.names)
	for _, n := range p.names {
		for _, w := range strings.FieldsFunc(n, func(r rune) bool { return !unicode.IsLetter(r) && r != '\'' && r != '-' }) {
			if r, _ := utf8.DecodeRuneInString(w); unicode.IsUpper(r) && utf8.RuneCountInString(w) >= 3 && !nameParticles[strings.ToLower(w)] {
				names = append(names, w)
			}
		}
	}
	q := NewPersonalData(p.strong, names, p.ComplaintIDs)
	q.Pseudonym = p.Pseudonym
	return q
}

// nameParticles are parts of surnames that are everyday words too ("Van
// Dijk": every "van" in the texts is not the customer). Matched without
// regard to case, they are never removed on their own.
var nameParticles = map[string]bool{"van": true, "der": true, "den": true, "des": true, "del": true, "della": true, "von": true,
	"zum": true, "zur": true, "ten": true, "ter": true, "les": true, "las": true, "los": true, "bin": true, "ibn": true, "mac": true}

// Strong and Names return the tokens in use.
func (p *PersonalData) Strong() []string { return p.strong }

// Names returns the name tokens in use.
func (p *PersonalData) Names() []string { return p.names }

// Identifies reports whether s holds one of the strong tokens as a word.
func (p *PersonalData) Identifies(s string) bool {
	return p.identifying != nil && p.identifying.MatchString(s)
}

// Mentions reports whether s holds any token (a name too) as a word.
func (p *PersonalData) Mentions(s string) bool {
	return p.mentioning != nil && p.mentioning.MatchString(s)
}

// Redact replaces every token (names too) in s with replacement.
func (p *PersonalData) Redact(s, replacement string) string {
	if p.mentioning == nil {
		return s
	}
	// Twice: adjacent tokens share the boundary character between them.
	for range 2 {
		s = p.mentioning.ReplaceAllString(s, "${1}"+strings.ReplaceAll(replacement, "$", "$$")+"${3}")
	}
	return s
}

func (p *PersonalData) about(s string) bool {
	if p.Pseudonym != "" && strings.Contains(s, p.Pseudonym) {
		return false
	}
	for _, id := range p.ComplaintIDs {
		if strings.Contains(s, `"`+id+`"`) {
			return true
		}
	}
	return p.Identifies(s)
}

// RedactedMark replaces personal data in texts that are kept.
const RedactedMark = "[erased]"

func cleanNamed(ctx context.Context, s *Store, key string, p *PersonalData) (bool, error) {
	if !p.Identifies(key) {
		return false, nil
	}
	return true, s.rdb.Del(ctx, key).Err()
}

func cleanValue(ctx context.Context, s *Store, key string, p *PersonalData) (bool, error) {
	v, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) || (err == nil && !p.Identifies(v)) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, s.rdb.Del(ctx, key).Err()
}

func cleanList(ctx context.Context, s *Store, key string, p *PersonalData) (bool, error) {
	vals, err := s.rdb.LRange(ctx, key, 0, -1).Result()
	if err != nil {
		return false, err
	}
	changed := false
	for _, v := range vals {
		if p.Identifies(v) {
			if err := s.rdb.LRem(ctx, key, 0, v).Err(); err != nil {
				return changed, err
			}
			changed = true
		}
	}
	return changed, nil
}

// cleanRedact rewrites a string value without the tokens, keeping its TTL.
func cleanRedact(ctx context.Context, s *Store, key string, p *PersonalData) (bool, error) {
	v, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) || (err == nil && !p.Mentions(v)) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, s.rdb.SetArgs(ctx, key, p.Redact(v, RedactedMark), redis.SetArgs{KeepTTL: true}).Err()
}

// CleanState visits every channel-state key kind that can hold personal
// data and removes or redacts what names the customer. It returns how many
// keys it changed.
func (s *Store) CleanState(ctx context.Context, p *PersonalData) (int, error) {
	n := 0
	scan, err := s.scanner(ctx)
	if err != nil {
		return 0, err
	}
	for _, kind := range erasureMap {
		if kind.clean == nil {
			continue
		}
		iter := scan.Scan(ctx, 0, s.keys.tag+":"+kind.sweep, 500).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			if got, ok := s.keys.KindOf(key); !ok || got.Name != kind.Name {
				continue
			}
			changed, err := kind.clean(ctx, s, key, p)
			if err != nil {
				return n, fmt.Errorf("cleaning %s: %w", kind.Name, err)
			}
			if changed {
				n++
			}
		}
		if err := iter.Err(); err != nil {
			return n, fmt.Errorf("scanning %s: %w", kind.Name, err)
		}
	}
	return n, nil
}

// Pseudonymised is one complaint's erasure: its new state and timeline, and
// the index entries that named its customer.
type Pseudonymised struct {
	// Before is the complaint as read, and TimelineLen its timeline's length
	// then: the rewrite is refused (router.ErrConflict) if either moved on.
	Before      router.Complaint
	TimelineLen int
	After       router.Complaint
	Timeline    []router.Entry
	// ThreadKeys and OnceKeys are deleted where they still point at the
	// complaint.
	ThreadKeys []string
	OnceKeys   []string
	// DedupKeys are (channel, source id) pairs of the customer's messages.
	DedupKeys [][2]string
	// CustomerKeys are identity keys whose customer index loses the
	// complaint; After.CustomerKey indexes it instead.
	CustomerKeys  []string
	Notifications []router.Notification
	// Audit, when set, is added to the privacy log in the same step.
	Audit map[string]string
}

// eraseScript replaces a complaint with its pseudonymised form in one step.
//
// KEYS: every key touched (one hash tag).
// ARGV[1]: JSON {"complaint": K, "version": V, "timeline": T, "length": N,
// "erased": E, "id": I, "writes": [{"cmd","key","args"}],
// "hdel_if": [{"key","field","equals"}], "del_if": [{"key","equals"}]}.
// A complaint already in the erased set E answers "erased" and changes
// nothing (two replicas erase it once); its version must still be V and its
// timeline N long, else "conflict"; then the timeline is replaced, fields in
// hdel_if and keys in del_if are deleted where they still hold their value,
// and writes run (allowed commands only).
var eraseScript = redis.NewScript(storedVersionLua + `
local a = cjson.decode(ARGV[1])
if redis.call('ZSCORE', a.erased, a.id) then return 'erased' end
if storedVersion(a.complaint) ~= a.version then return 'conflict' end
if redis.call('LLEN', a.timeline) ~= tonumber(a.length) then return 'conflict' end
redis.call('DEL', a.timeline)
for _, h in ipairs(a.hdel_if or {}) do
  if redis.call('HGET', h.key, h.field) == h.equals then redis.call('HDEL', h.key, h.field) end
end
for _, d in ipairs(a.del_if or {}) do
  if redis.call('GET', d.key) == d.equals then redis.call('DEL', d.key) end
end
local allowed = {SET=true, HSET=true, DEL=true, SADD=true, SREM=true, ZADD=true, ZREM=true, RPUSH=true, XADD=true, HINCRBY=true}
for _, w in ipairs(a.writes or {}) do
  if not allowed[w.cmd] then return redis.error_reply('erase: command not allowed: ' .. tostring(w.cmd)) end
  local args = w.args
  if type(args) ~= 'table' then args = {} end -- a write without arguments (DEL) comes as null
  redis.call(w.cmd, w.key, unpack(args))
end
return 'ok'
`)

type eraseArgs struct {
	Complaint string    `json:"complaint"`
	Version   string    `json:"version"`
	Timeline  string    `json:"timeline"`
	Length    int       `json:"length"`
	Erased    string    `json:"erased"`
	ID        string    `json:"id"`
	Writes    []txWrite `json:"writes"`
	HDelIf    []hdelIf  `json:"hdel_if,omitempty"`
	DelIf     []delIf   `json:"del_if,omitempty"`
}

type delIf struct {
	Key    string `json:"key"`
	Equals string `json:"equals"`
}

type hdelIf struct {
	Key    string `json:"key"`
	Field  string `json:"field"`
	Equals string `json:"equals"`
}

// ReplacePseudonymised applies one complaint's erasure atomically; it
// returns router.ErrConflict when the complaint changed since it was read,
// and router.ErrDuplicate when it is erased already.
func (s *Store) ReplacePseudonymised(ctx context.Context, e Pseudonymised) error {
	k := s.keys
	id := e.After.ID
	if id == "" || id != e.Before.ID {
		return errors.New("erase: before and after must be the same complaint")
	}
	t := &tx{}
	t.touch(k.Complaint(id))
	t.touch(k.Timeline(id))
	data, err := encodeComplaint(e.After)
	if err != nil {
		return err
	}
	t.write("SET", k.Complaint(id), string(data))
	if len(e.Timeline) > 0 {
		args := make([]string, 0, len(e.Timeline))
		var prev *time.Time
		for i, en := range e.Timeline {
			b, err := encodeEntry(en, prev)
			if err != nil {
				return err
			}
			prev = &e.Timeline[i].At
			args = append(args, string(b))
		}
		t.write("RPUSH", k.Timeline(id), args...)
	}
	before := e.Before
	syncTimers(t, k, &before, e.After)
	syncOpen(t, k, &before, e.After, "")
	for _, ck := range e.CustomerKeys {
		if ck != "" && ck != e.After.CustomerKey {
			t.write("ZREM", k.Customer(ck), id)
		}
	}
	if e.After.CustomerKey != "" {
		t.write("ZADD", k.Customer(e.After.CustomerKey), msString(e.After.CreatedAt.UnixMilli()), id)
	}
	for _, d := range e.DedupKeys {
		t.write("DEL", k.Dedup(d[0], d[1]))
	}
	t.write("ZADD", k.Erased(), msString(time.Now().UnixMilli()), id)
	for _, n := range e.Notifications {
		b, err := json.Marshal(router.Outgoing{Notification: &n})
		if err != nil {
			return fmt.Errorf("encoding notification: %w", err)
		}
		t.write("XADD", k.Outbox(), "*", fieldData, string(b), fieldAttempt, "0")
	}
	if len(e.Audit) > 0 {
		args := []string{"*"}
		for f, v := range e.Audit {
			args = append(args, f, v)
		}
		t.write("XADD", k.PrivacyLog(), args...)
	}
	a := eraseArgs{Complaint: k.Complaint(id), Version: strconv.FormatInt(before.Version, 10),
		Timeline: k.Timeline(id), Length: e.TimelineLen, Erased: k.Erased(), ID: id, Writes: t.Writes}
	t.touch(k.Erased())
	for _, tk := range e.ThreadKeys {
		t.touch(k.Threads())
		a.HDelIf = append(a.HDelIf, hdelIf{Key: k.Threads(), Field: tk, Equals: id})
	}
	for _, ok := range e.OnceKeys {
		t.touch(k.OncePrefix() + ok)
		a.DelIf = append(a.DelIf, delIf{Key: k.OncePrefix() + ok, Equals: id})
	}
	arg, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encoding erasure of %s: %w", id, err)
	}
	res, err := eraseScript.Run(ctx, s.rdb, t.keys, arg).Text()
	if err != nil {
		return fmt.Errorf("erasing %s: %w", id, err)
	}
	switch res {
	case "ok":
		return nil
	case "erased":
		return fmt.Errorf("%s is erased already: %w", id, router.ErrDuplicate)
	}
	return fmt.Errorf("%s changed while it was being erased: %w", id, router.ErrConflict)
}

// IndexedFields returns, for each of the complaints, the fields of the thread
// index and of the once index that point at it.
func (s *Store) IndexedFields(ctx context.Context, ids []string) (threads, once map[string][]string, err error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	scan := func(key string) (map[string][]string, error) {
		out := map[string][]string{}
		iter := s.rdb.HScan(ctx, key, 0, "", 1000).Iterator()
		for iter.Next(ctx) {
			field := iter.Val()
			if !iter.Next(ctx) {
				break
			}
			if v := iter.Val(); want[v] {
				out[v] = append(out[v], field)
			}
		}
		return out, iter.Err()
	}
	if threads, err = scan(s.keys.Threads()); err != nil {
		return nil, nil, fmt.Errorf("reading the thread index: %w", err)
	}
	if once, err = s.onceKeysOf(ctx, want); err != nil {
		return nil, nil, fmt.Errorf("reading the once-keys: %w", err)
	}
	return threads, once, nil
}

// onceKeysOf finds the once-keys whose value is one of the complaints and
// returns them per complaint, as the part of the key after OncePrefix. They
// are keys of their own (each expiring), so this scans them: an erasure is
// rare, and once-keys are bounded by ONCE_RETENTION.
func (s *Store) onceKeysOf(ctx context.Context, want map[string]bool) (map[string][]string, error) {
	out := map[string][]string{}
	prefix := s.keys.OncePrefix()
	scan, err := s.scanner(ctx)
	if err != nil {
		return nil, err
	}
	iter := scan.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		vals, err := s.rdb.MGet(ctx, batch...).Result()
		if err != nil {
			return err
		}
		for i, v := range vals {
			if id, ok := v.(string); ok && want[id] {
				out[id] = append(out[id], strings.TrimPrefix(batch[i], prefix))
			}
		}
		batch = batch[:0]
		return nil
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	return out, flush()
}

// WhichErased tells which of the complaints are erased already.
func (s *Store) WhichErased(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	scores, err := s.rdb.ZMScore(ctx, s.keys.Erased(), ids...).Result()
	if err != nil {
		return nil, err
	}
	for i, sc := range scores {
		if sc != 0 {
			out[ids[i]] = true
		}
	}
	return out, nil
}

// PendingMessages returns the inbound messages not routed yet for which
// match is true (the customer's, for an export).
func (s *Store) PendingMessages(ctx context.Context, match func(router.Message) bool) ([]router.Message, error) {
	var out []router.Message
	err := s.eachEntry(ctx, s.keys.Inbound(), func(m redis.XMessage) error {
		data, _ := m.Values[fieldData].(string)
		var msg router.Message
		if decodeJSON([]byte(data), &msg) == nil && match(msg) {
			out = append(out, msg)
		}
		return nil
	})
	return out, err
}

func (s *Store) eachEntry(ctx context.Context, stream string, fn func(redis.XMessage) error) error {
	start := "-"
	for {
		msgs, err := s.rdb.XRangeN(ctx, stream, start, "+", 500).Result()
		if err != nil {
			return fmt.Errorf("reading %s: %w", stream, err)
		}
		for _, m := range msgs {
			if err := fn(m); err != nil {
				return err
			}
		}
		if len(msgs) < 500 {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// PurgeStreams removes from the inbound, outbox and dead-letter streams and
// their retry sets every entry about the customer's complaints or naming the
// customer. A pending entry is acknowledged and deleted in one step: its
// consumer, if still working on it, finds it gone and only clears it, so
// other customers' entries keep their at-least-once delivery. It returns the
// (channel, source id) of every inbound message it removed, whose dedup keys
// name the customer too, and how many entries went.
func (s *Store) PurgeStreams(ctx context.Context, p *PersonalData) (dedup [][2]string, n int, err error) {
	return s.purge(ctx, p, true)
}

// PurgeOutgoing removes, like PurgeStreams, what is about to leave or has
// failed to leave (outbox entries, their retries, and the dead letters that
// came from the outbox), but nothing inbound: what retention removes with a
// complaint closed long ago. A customer's new message that names that
// complaint is theirs to have handled, not the old complaint's data.
func (s *Store) PurgeOutgoing(ctx context.Context, p *PersonalData) (n int, err error) {
	_, n, err = s.purge(ctx, p, false)
	return n, err
}

func (s *Store) purge(ctx context.Context, p *PersonalData, inbound bool) (dedup [][2]string, n int, err error) {
	k := s.keys
	for _, st := range []struct{ stream, group string }{
		{k.Inbound(), RouterGroup}, {k.Outbox(), DeliveryGroup}, {k.DeadLetters(), ""},
	} {
		if st.stream == k.Inbound() && !inbound {
			continue
		}
		var ids []string
		err := s.eachEntry(ctx, st.stream, func(m redis.XMessage) error {
			if !inbound {
				// Only what is about the expired complaints themselves: a
				// newer complaint's notification may name one of them (the
				// customer wrote "about C-1001") and is not theirs.
				if st.stream == k.DeadLetters() && m.Values["stream"] != k.Outbox() {
					return nil
				}
				if data, _ := m.Values[fieldData].(string); !slices.Contains(p.ComplaintIDs, outgoingComplaintID(data)) {
					return nil
				}
			} else {
				raw, _ := json.Marshal(m.Values)
				if !p.about(string(raw)) && !p.about(fmt.Sprint(m.Values[fieldData])) {
					return nil
				}
			}
			ids = append(ids, m.ID)
			if st.stream == k.Inbound() {
				var msg router.Message
				if data, ok := m.Values[fieldData].(string); ok && decodeJSON([]byte(data), &msg) == nil && msg.SourceID != "" {
					dedup = append(dedup, [2]string{string(msg.Channel), msg.SourceID})
				}
			}
			return nil
		})
		if err != nil {
			return dedup, n, err
		}
		for start := 0; start < len(ids); start += 200 {
			batch := ids[start:min(start+200, len(ids))]
			pipe := s.rdb.TxPipeline()
			if st.group != "" {
				pipe.XAck(ctx, st.stream, st.group, batch...)
			}
			pipe.XDel(ctx, st.stream, batch...)
			if _, err := pipe.Exec(ctx); err != nil && !strings.HasPrefix(err.Error(), "NOGROUP") {
				return dedup, n, fmt.Errorf("deleting entries of %s: %w", st.stream, err)
			}
			n += len(batch)
		}
	}
	for _, stream := range []string{k.Inbound(), k.Outbox()} {
		if stream == k.Inbound() && !inbound {
			continue
		}
		members, err := s.rdb.ZRange(ctx, k.Delayed(stream), 0, -1).Result()
		if err != nil {
			return dedup, n, fmt.Errorf("reading retries of %s: %w", stream, err)
		}
		for _, m := range members {
			var de delayedEntry
			if json.Unmarshal([]byte(m), &de) != nil {
				continue
			}
			if !inbound && !slices.Contains(p.ComplaintIDs, outgoingComplaintID(de.Data)) {
				continue
			}
			if inbound && !(p.about(de.Data) || p.about(m)) {
				continue
			}
			if stream == k.Inbound() {
				var msg router.Message
				if decodeJSON([]byte(de.Data), &msg) == nil && msg.SourceID != "" {
					dedup = append(dedup, [2]string{string(msg.Channel), msg.SourceID})
				}
			}
			if err := s.rdb.ZRem(ctx, k.Delayed(stream), m).Err(); err != nil {
				return dedup, n, err
			}
			n++
		}
	}
	return dedup, n, nil
}

// outgoingComplaintID is the complaint an outbox entry is about ("" when
// it decodes to none).
func outgoingComplaintID(data string) string {
	out, err := DecodeOutgoing([]byte(data))
	switch {
	case err != nil:
		return ""
	case out.Notification != nil:
		return out.Notification.Complaint.ID
	case out.Customer != nil:
		return out.Customer.Complaint.ID
	}
	return ""
}

// DeleteDedup removes the dedup keys of messages.
func (s *Store) DeleteDedup(ctx context.Context, pairs [][2]string) error {
	if len(pairs) == 0 {
		return nil
	}
	keys := make([]string, 0, len(pairs))
	for _, p := range pairs {
		keys = append(keys, s.keys.Dedup(p[0], p[1]))
	}
	return s.rdb.Del(ctx, keys...).Err()
}

// CustomerIndexSize counts the complaints indexed under an identity key.
func (s *Store) CustomerIndexSize(ctx context.Context, identity string) (int64, error) {
	return s.rdb.ZCard(ctx, s.keys.Customer(identity)).Result()
}

// ErrErasureFinished: the erasure is no longer in progress (another runner
// finished it), so its progress is not recorded again.
var ErrErasureFinished = errors.New("the erasure was finished elsewhere")

// saveErasureScript: KEYS[1] the erasures hash; ARGV[1] id, ARGV[2] data.
// Records progress only while the erasure is in progress.
var saveErasureScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// SaveErasure records the progress of an erasure in progress (JSON) under
// id; ErrErasureFinished when it is no longer in progress.
func (s *Store) SaveErasure(ctx context.Context, id string, data []byte) error {
	n, err := saveErasureScript.Run(ctx, s.rdb, []string{s.keys.Erasures()}, id, data).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrErasureFinished
	}
	return nil
}

// Erasures returns every erasure in progress.
func (s *Store) Erasures(ctx context.Context) (map[string]string, error) {
	return s.rdb.HGetAll(ctx, s.keys.Erasures()).Result()
}

// Erasure returns one erasure in progress.
func (s *Store) Erasure(ctx context.Context, id string) (string, bool, error) {
	v, err := s.rdb.HGet(ctx, s.keys.Erasures(), id).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return v, err == nil, err
}

// DropErasure forgets an erasure that was refused before it changed
// anything.
func (s *Store) DropErasure(ctx context.Context, id string) error {
	return s.rdb.HDel(ctx, s.keys.Erasures(), id).Err()
}

// CreateErasure records a new erasure unless one with the id is in
// progress already (asked twice at once, or on two replicas).
func (s *Store) CreateErasure(ctx context.Context, id string, data []byte) (bool, error) {
	return s.rdb.HSetNX(ctx, s.keys.Erasures(), id, data).Result()
}

// finishErasureScript forgets an erasure in progress and audits it, once:
// KEYS[1] the erasures hash, KEYS[2] the privacy log; ARGV[1] the erasure
// id, ARGV[2..] the audit's field/value pairs. Two runners finishing the
// same erasure (a request and the background resume) audit it once.
var finishErasureScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
  return 1
end
return 0
`)

// FinishErasure adds the audit record and forgets the erasure in progress,
// in one step, so a finished erasure is audited exactly once.
func (s *Store) FinishErasure(ctx context.Context, id string, audit map[string]string) error {
	args := []any{id}
	fields := make([]string, 0, len(audit))
	for f := range audit {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		args = append(args, f, audit[f])
	}
	return finishErasureScript.Run(ctx, s.rdb, []string{s.keys.Erasures(), s.keys.PrivacyLog()}, args...).Err()
}

// PrivacyLog returns the audit of erasures, newest first.
func (s *Store) PrivacyLog(ctx context.Context, limit int64) ([]map[string]string, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.keys.PrivacyLog(), "+", "-", limit).Result()
	if err != nil {
		return nil, err
	}
	out := make([]map[string]string, 0, len(msgs))
	for _, m := range msgs {
		rec := map[string]string{"id": m.ID}
		for f, v := range m.Values {
			rec[f] = fmt.Sprint(v)
		}
		out = append(out, rec)
	}
	return out, nil
}

// ComplaintsCreatedBefore lists complaint ids created before t, oldest
// first: limit of them from offset on. Erasure keeps complaints in the index,
// so offsets stay put while complaints are erased.
func (s *Store) ComplaintsCreatedBefore(ctx context.Context, t time.Time, offset, limit int64) ([]string, error) {
	return s.rdb.ZRangeByScore(ctx, s.keys.Complaints(), &redis.ZRangeBy{
		Min: "-inf", Max: "(" + msString(t.UnixMilli()), Offset: offset, Count: limit,
	}).Result()
}

// EachComplaint calls fn with every complaint, oldest first, a page at a
// time (for finding a customer by an identity no index holds).
func (s *Store) EachComplaint(ctx context.Context, fn func(router.Complaint) error) error {
	const page = 500
	for start := int64(0); ; start += page {
		ids, err := s.rdb.ZRange(ctx, s.keys.Complaints(), start, start+page-1).Result()
		if err != nil {
			return err
		}
		cs, err := s.loadComplaints(ctx, ids)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if err := fn(c); err != nil {
				return err
			}
		}
		if len(ids) < page {
			return nil
		}
	}
}

// DeadLettersAbout returns the dead letters about the customer's complaints
// or naming the customer (for an export).
func (s *Store) DeadLettersAbout(ctx context.Context, p *PersonalData) ([]DeadLetter, error) {
	var out []DeadLetter
	err := s.eachEntry(ctx, s.keys.DeadLetters(), func(m redis.XMessage) error {
		raw, _ := json.Marshal(m.Values)
		if p.about(string(raw)) || p.about(fmt.Sprint(m.Values[fieldData])) {
			out = append(out, decodeDeadLetter(m))
		}
		return nil
	})
	return out, err
}

// replaceEntryScript sets one timeline entry if it still holds what was
// read (entries are only appended, or a whole timeline replaced by an
// erasure, so a changed one is read again).
// KEYS[1]: the timeline; ARGV: index, the entry as read, its new value.
var replaceEntryScript = redis.NewScript(`
if redis.call('LINDEX', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('LSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`)

// maxScrubAttempts bounds the readings of a timeline that keeps changing
// while ScrubMentions rewrites it.
const maxScrubAttempts = 5

// ScrubMentions rewrites the "mentioned" lines complaint from left on
// complaint id's timeline to say only router.MentionReason: lines written
// before it was so named their sender, whose erasure this is. It returns
// how many lines it changed.
func (s *Store) ScrubMentions(ctx context.Context, id, from string) (int, error) {
	key := s.keys.Timeline(id)
	for attempt := 1; ; attempt++ {
		raw, err := s.rdb.LRange(ctx, key, 0, -1).Result()
		if err != nil {
			return 0, fmt.Errorf("reading the timeline of %s: %w", id, err)
		}
		changed, stale := 0, false
		for i, data := range raw {
			scrubbed, ok, err := scrubbedMention(data, from)
			if err != nil {
				return changed, router.NamesComplaint(id, fmt.Errorf("timeline entry %d of %s: %w", i, id, err))
			}
			if !ok {
				continue
			}
			set, err := replaceEntryScript.Run(ctx, s.rdb, []string{key}, i, data, scrubbed).Int()
			if err != nil {
				return changed, fmt.Errorf("rewriting a mention line of %s: %w", id, err)
			}
			if set == 0 {
				stale = true
				break
			}
			changed++
		}
		if !stale || attempt == maxScrubAttempts {
			return changed, nil
		}
	}
}

// scrubbedMention is data, a stored timeline entry, with its reason made
// router.MentionReason, when it is a "mentioned" line left by complaint
// from that says more; ok is false for any other entry.
func scrubbedMention(data, from string) (string, bool, error) {
	if !strings.Contains(data, `"mentioned"`) {
		return "", false, nil // the cheap test: most entries are something else
	}
	if strings.HasPrefix(data, legacyEntryHead) {
		var e router.Entry
		if err := decodeJSON([]byte(data), &e); err != nil {
			return "", false, err
		}
		if !isMentionBy(e.Event, from) {
			return "", false, nil
		}
		e.Event.Reason = router.MentionReason(e.Event.Details)
		b, err := json.Marshal(e)
		return string(b), err == nil, err
	}
	var r entryRecord
	if err := decodeJSON([]byte(data), &r); err != nil {
		return "", false, err
	}
	ev := r.Event.event()
	if !isMentionBy(ev, from) {
		return "", false, nil
	}
	r.Event.Reason = router.MentionReason(ev.Details)
	b, err := json.Marshal(r)
	return string(b), err == nil, err
}

func isMentionBy(ev *router.Event, from string) bool {
	return ev != nil && ev.Type == router.EventMentioned && ev.Details["complaint"] == from && ev.Reason != router.MentionReason(ev.Details)
}
