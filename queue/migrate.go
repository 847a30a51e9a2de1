package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// layoutVersion is the key layout this code writes. 2: the open index is
// a sorted set by creation time, and the figure indexes (owner due,
// promises) exist. 3: owners' open counts are kept beside their sets. 4:
// owners' last assignments are fields of the open counts, so one HMGET
// reads an owner's whole load (folded at every start, like the other
// legacy keys: an old replica still running may write the old hash). 5:
// a complaint is a string of its JSON, version first, not a hash of
// version and data (some 200 bytes less per complaint). 6: complaints and
// timeline entries are compact records (complaintRecord, entryRecord),
// some 400 bytes less per new complaint; complaints are stored as records
// once (timelines are not rewritten: their entries stay readable as they
// are), and a replica of an earlier version cannot read records. 7:
// breaches are indexed by when they happened (Keys.Breaches); the breaches
// recorded before are indexed once.
const layoutVersion = 7

// countOpenScript sets an owner's open count to the size of their open
// set, in one step. KEYS[1]: the owner's open set; KEYS[2]: the open
// counts. ARGV[1]: the owner.
var countOpenScript = redis.NewScript(`
redis.call('HSET', KEYS[2], ARGV[1], redis.call('SCARD', KEYS[1]))
return 1
`)

// foldLegacyOpenScript moves the legacy open set into the open index,
// scored by each complaint's creation time, and deletes it, in one step.
// KEYS[1]: the legacy open set; KEYS[2]: the open index; KEYS[3]: the
// complaints index (creation times).
var foldLegacyOpenScript = redis.NewScript(`
local ids = redis.call('SMEMBERS', KEYS[1])
for _, id in ipairs(ids) do
  local score = redis.call('ZSCORE', KEYS[3], id) or '0'
  redis.call('ZADD', KEYS[2], score, id)
end
redis.call('DEL', KEYS[1])
return #ids
`)

// foldLastAssignedScript moves the legacy hash of owners' last
// assignments into the open counts (LastAssignedField), keeping the later
// time where both have one, and deletes it, in one step.
// KEYS[1]: the legacy hash; KEYS[2]: the open counts.
var foldLastAssignedScript = redis.NewScript(`
local kv = redis.call('HGETALL', KEYS[1])
for i = 1, #kv, 2 do
  local field = 'last:' .. kv[i]
  local now = tonumber(redis.call('HGET', KEYS[2], field) or '0') or 0
  if (tonumber(kv[i + 1]) or 0) > now then redis.call('HSET', KEYS[2], field, kv[i + 1]) end
end
redis.call('DEL', KEYS[1])
return #kv / 2
`)

// ErrNewerLayout is Migrate refusing data that a newer version of
// forgetmenot has stored: this version would read its complaints wrong
// (a version before layout 6 reads the records of layout 6 as blank
// complaints), so it must not route, deliver or answer on them.
var ErrNewerLayout = errors.New("a newer version of forgetmenot has run on this data")

// Migration is what Migrate did.
type Migration struct {
	// From is the layout the data had, To the one it has now (equal when
	// there was nothing to migrate).
	From, To int
	// ComplaintsConverted counts the complaints found stored as hashes and
	// stored as strings: a layout before 5 left them, or a replica of such
	// a version still running wrote them.
	ComplaintsConverted int
	// ComplaintsCompacted counts the complaints a layout before 6 stored
	// as the API's JSON and now stored as records.
	ComplaintsCompacted int
	// BreachesIndexed counts the breaches recorded before layout 7 and
	// put in the breach index.
	BreachesIndexed int
	// Fresh says the namespace held no complaint yet: there was nothing to
	// migrate, whatever From says.
	Fresh bool
}

// Migrate brings data written by earlier versions to this layout: the set
// of open complaints becomes the open index ordered by creation, the
// figure indexes (owner due, promises) are built for the open complaints
// once, and complaints stored as hashes become strings. It is idempotent
// and safe while other replicas of this version commit (every backfilled
// entry and every conversion is guarded by its complaint's version); every
// replica runs it at start, before it routes or delivers. Replicas of an
// older version must be stopped first: they would keep writing the old
// layout (what they write in the meantime is folded in at the next start).
// Data of a newer layout than this version's is refused (ErrNewerLayout),
// unchanged.
func (s *Store) Migrate(ctx context.Context) (Migration, error) {
	k := s.keys
	v, err := s.rdb.Get(ctx, k.Layout()).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Migration{}, fmt.Errorf("reading the layout version: %w", err)
	}
	if v > layoutVersion {
		return Migration{From: v, To: v}, fmt.Errorf("%w: the stored data has key layout %d, this version reads and writes layout %d", ErrNewerLayout, v, layoutVersion)
	}
	if _, err := foldLegacyOpenScript.Run(ctx, s.rdb, []string{k.LegacyOpenComplaints(), k.OpenComplaints(), k.Complaints()}).Result(); err != nil {
		return Migration{}, fmt.Errorf("moving the open complaints to the ordered index: %w", err)
	}
	if _, err := foldLastAssignedScript.Run(ctx, s.rdb, []string{k.LegacyOwnerLastAssigned(), k.OpenCounts()}).Result(); err != nil {
		return Migration{}, fmt.Errorf("moving the owners' last assignments to their open counts: %w", err)
	}
	if err := s.moveLegacyHash(ctx, k.LegacyMessageComplaints(), k.MessageComplaint); err != nil {
		return Migration{}, fmt.Errorf("moving the message index to keys with a retention: %w", err)
	}
	if err := s.moveLegacyHash(ctx, k.LegacyOnce(), k.Once); err != nil {
		return Migration{}, fmt.Errorf("moving the once-keys to keys with a retention: %w", err)
	}
	n, err := s.rdb.Exists(ctx, k.LegacyMessageComplaints(), k.LegacyOnce()).Result()
	if err != nil {
		return Migration{}, err
	}
	s.legacy.Store(n > 0)
	m := Migration{From: v, To: max(v, layoutVersion)}
	if v == 0 {
		n, err := s.rdb.Exists(ctx, k.Complaints()).Result()
		if err != nil {
			return m, fmt.Errorf("looking for stored complaints: %w", err)
		}
		m.Fresh = n == 0
	}
	if v < 2 {
		if err := s.backfillFigures(ctx); err != nil {
			return m, err
		}
	}
	if v < 3 {
		if err := s.countOpen(ctx); err != nil {
			return m, err
		}
		if err := s.expireOldDedupKeys(ctx); err != nil {
			return m, err
		}
	}
	// Looked for at every start, like the legacy keys above: a replica of
	// a version before layout 5 still running writes hashes whatever the
	// layout says.
	if m.ComplaintsConverted, err = s.storeComplaintsAsStrings(ctx); err != nil {
		return m, err
	}
	compact := v < 6 && !m.Fresh
	if !compact && v >= 6 {
		// A replica of an earlier version still running (or started
		// again) opens complaints in the API's JSON: it cannot change the
		// records, so what it wrote is among the newest complaints.
		if compact, err = s.newestComplaintsHaveJSON(ctx, 1000); err != nil {
			return m, err
		}
	}
	if compact {
		if m.ComplaintsCompacted, err = s.storeComplaintsAsRecords(ctx); err != nil {
			return m, err
		}
	}
	if v < 7 && !m.Fresh {
		if m.BreachesIndexed, err = s.indexBreaches(ctx); err != nil {
			return m, err
		}
	}
	if v < layoutVersion {
		// A replica of a newer version may have recorded its layout while
		// this one migrated: that is never written back down.
		stored, err := recordLayoutScript.Run(ctx, s.rdb, []string{k.Layout()}, layoutVersion).Int()
		if err != nil {
			return m, fmt.Errorf("recording the layout version: %w", err)
		}
		if stored > layoutVersion {
			return Migration{From: stored, To: stored}, fmt.Errorf("%w: the stored data has key layout %d (recorded while this version migrated), this version reads and writes layout %d", ErrNewerLayout, stored, layoutVersion)
		}
	}
	return m, nil
}

// indexBreaches puts the breaches recorded before layout 7 in the breach
// index, a page of complaints at a time: each at the time of the timer
// event that recorded it (the complaint's last change when its timeline no
// longer says). The members are those a commit writes, and an entry is
// never moved: a breach a replica of this version indexed meanwhile stays
// as it is, and nothing is counted twice.
func (s *Store) indexBreaches(ctx context.Context) (int, error) {
	const page = 500
	indexed := 0
	for start := int64(0); ; start += page {
		ids, err := s.rdb.ZRange(ctx, s.keys.Complaints(), start, start+page-1).Result()
		if err != nil {
			return indexed, fmt.Errorf("reading complaints to index their breaches: %w", err)
		}
		cs, err := s.loadComplaints(ctx, ids)
		if err != nil {
			return indexed, err
		}
		pipe := s.rdb.Pipeline()
		for _, c := range cs {
			if len(c.Breaches) == 0 {
				continue
			}
			tl, err := s.Timeline(ctx, c.ID)
			if err != nil {
				return indexed, fmt.Errorf("reading the timeline of %s to index its breaches: %w", c.ID, err)
			}
			var at []time.Time
			for _, e := range tl {
				if e.Event != nil && breachTimers[router.TimerKind(e.Event.Details["timer"])] {
					at = append(at, e.At)
				}
			}
			for i, kind := range c.Breaches {
				when := c.UpdatedAt
				if i < len(at) {
					when = at[i]
				}
				pipe.ZAddNX(ctx, s.keys.Breaches(), redis.Z{Score: float64(when.UnixMilli()), Member: breachMember(c.ID, i, kind)})
				indexed++
			}
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return indexed, fmt.Errorf("indexing breaches: %w", err)
		}
		if len(ids) < page {
			return indexed, nil
		}
	}
}

// breachTimers are the timers whose firing records a breach.
var breachTimers = map[router.TimerKind]bool{router.TimerRespondBreach: true, router.TimerResolveBreach: true, router.TimerPromiseBreach: true}

// recordLayoutScript records layout ARGV[1] in KEYS[1] unless a higher one
// is there, and returns the layout stored.
var recordLayoutScript = redis.NewScript(`
local v = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local want = tonumber(ARGV[1])
if v < want then redis.call('SET', KEYS[1], want); v = want end
return v
`)

// backfillFigures indexes every open complaint's figures, a page at a
// time, each entry guarded by the version it was computed from.
func (s *Store) backfillFigures(ctx context.Context) error {
	const page = 500
	if err := commitScript.Load(ctx, s.rdb).Err(); err != nil {
		return err
	}
	for start := int64(0); ; start += page {
		ids, err := s.rdb.ZRange(ctx, s.keys.OpenComplaints(), start, start+page-1).Result()
		if err != nil {
			return fmt.Errorf("reading open complaints: %w", err)
		}
		cs, err := s.loadComplaints(ctx, ids)
		if err != nil {
			return err
		}
		pipe := s.rdb.Pipeline()
		for _, c := range cs {
			t := &tx{}
			t.versionIs("version", s.keys.Complaint(c.ID), strconv.FormatInt(c.Version, 10))
			syncFigures(t, s.keys, nil, c)
			if len(t.Writes) > 0 {
				t.queue(ctx, pipe)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("indexing the figures of open complaints: %w", err)
		}
		if len(ids) < page {
			return nil
		}
	}
}

// moveLegacyHash moves every field of an unbounded legacy hash to its own
// key under the once retention (never over a newer value), deleting the
// fields moved, a page at a time; the hash is gone when it is empty. The
// once-guard looks in both until then, so nothing is ever in neither.
func (s *Store) moveLegacyHash(ctx context.Context, legacy string, key func(string) string) error {
	for {
		fields, _, err := s.rdb.HScan(ctx, legacy, 0, "", 1000).Result()
		if err != nil {
			return err
		}
		if len(fields) == 0 {
			return nil
		}
		pipe := s.rdb.Pipeline()
		names := make([]string, 0, len(fields)/2)
		for i := 0; i+1 < len(fields); i += 2 {
			pipe.SetNX(ctx, key(fields[i]), fields[i+1], s.onceTTL)
			names = append(names, fields[i])
		}
		pipe.HDel(ctx, legacy, names...)
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
}

// countOpen sets every owner's open count from their open set.
func (s *Store) countOpen(ctx context.Context) error {
	scan, err := s.scanner(ctx)
	if err != nil {
		return err
	}
	prefix, suffix := s.keys.OwnerOpen(""), ":open"
	iter := scan.Scan(ctx, 0, s.keys.OwnerOpen("*"), 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		owner := strings.TrimSuffix(strings.TrimPrefix(key, prefix[:len(prefix)-len(suffix)]), suffix)
		if err := countOpenScript.Run(ctx, s.rdb, []string{key, s.keys.OpenCounts()}, owner).Err(); err != nil {
			return fmt.Errorf("counting the open complaints of %s: %w", owner, err)
		}
	}
	return iter.Err()
}

// expireOldDedupKeys gives the ingest dedup keys that earlier versions kept
// for ever (DEDUP_RETENTION was 0 by default) the retention in force, from
// now; keys that already expire keep their time.
func (s *Store) expireOldDedupKeys(ctx context.Context) error {
	if s.dedupTTL <= 0 {
		return nil
	}
	scan, err := s.scanner(ctx)
	if err != nil {
		return err
	}
	iter := scan.Scan(ctx, 0, s.keys.DedupPattern(), 1000).Iterator()
	pipe := s.rdb.Pipeline()
	n := 0
	for iter.Next(ctx) {
		pipe.ExpireNX(ctx, iter.Val(), s.dedupTTL)
		if n++; n%1000 == 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("giving old dedup keys a retention: %w", err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("giving old dedup keys a retention: %w", err)
	}
	return nil
}

// complaintAsRecordScript replaces a complaint stored as the API's JSON
// (layouts 5 and before) with its record, in one step, if it still is that
// JSON of the version it was read at: a commit meanwhile stored a record
// itself. KEYS[1]: the complaint; ARGV[1]: its version; ARGV[2]: its
// record. Returns 1 when it replaced the JSON.
var complaintAsRecordScript = redis.NewScript(`
local head = redis.pcall('GETRANGE', KEYS[1], 0, 31)
if type(head) ~= 'string' or string.match(head, '^{"version":(%d+)[,}]') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`)

// newestComplaintsHaveJSON tells whether one of the n newest complaints is
// stored as the API's JSON, not as a record.
func (s *Store) newestComplaintsHaveJSON(ctx context.Context, n int64) (bool, error) {
	ids, err := s.rdb.ZRevRange(ctx, s.keys.Complaints(), 0, n-1).Result()
	if err != nil || len(ids) == 0 {
		return false, err
	}
	pipe := s.rdb.Pipeline()
	heads := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		heads[i] = pipe.GetRange(ctx, s.keys.Complaint(id), 0, int64(len(complaintHeadLegacy))-1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !isWrongType(err) {
		return false, fmt.Errorf("looking for complaints an older version stored: %w", err)
	}
	for _, h := range heads {
		if h.Val() == complaintHeadLegacy {
			return true, nil
		}
	}
	return false, nil
}

// storeComplaintsAsRecords stores every complaint kept as the API's JSON
// as its record, a page at a time, each under a guard of its version. One
// that does not decode stays as it is (and reads as before). It returns
// how many it stored as records.
func (s *Store) storeComplaintsAsRecords(ctx context.Context) (int, error) {
	return s.storeComplaintsAnew(ctx, complaintConversion{
		keyType: "string", what: "JSON", as: "records", script: complaintAsRecordScript,
		read: func(pipe redis.Pipeliner, key string) redis.Cmder { return pipe.Get(ctx, key) },
		plan: func(cmd redis.Cmder) (string, string, bool) {
			old, err := cmd.(*redis.StringCmd).Result()
			if err != nil || !strings.HasPrefix(old, complaintHeadLegacy) {
				return "", "", false // gone, a hash again, or a record already
			}
			return "", old, true // guarded by the version it holds
		},
	})
}

// complaintAsStringScript replaces a complaint stored as a hash (layouts
// before 5) with its JSON as a string, in one step, if it is still a hash
// of the version it was read at: a commit meanwhile wrote the string
// itself. KEYS[1]: the complaint; ARGV[1]: its version; ARGV[2]: its JSON,
// version first. Returns 1 when it replaced the hash.
var complaintAsStringScript = redis.NewScript(`
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' or redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2])
return 1
`)

// storeComplaintsAsStrings converts every complaint a layout before 5
// stored as a hash, a page at a time. Each is decoded and encoded again
// (as a record) and replaced under a guard of its version. One whose JSON
// does not decode stays a hash: reads fall back to hashes, so it reads as
// before (and fails to decode as before). It returns how many it stored
// as strings.
func (s *Store) storeComplaintsAsStrings(ctx context.Context) (int, error) {
	return s.storeComplaintsAnew(ctx, complaintConversion{
		keyType: "hash", what: "hashes", as: "strings", script: complaintAsStringScript,
		read: func(pipe redis.Pipeliner, key string) redis.Cmder {
			return pipe.HMGet(ctx, key, "version", legacyComplaintData)
		},
		plan: func(cmd redis.Cmder) (string, string, bool) {
			vals := cmd.(*redis.SliceCmd).Val()
			if cmd.Err() != nil || len(vals) != 2 {
				return "", "", false // a commit stored it as a string meanwhile
			}
			version, _ := vals[0].(string)
			data, _ := vals[1].(string)
			return version, data, version != ""
		},
	})
}

// complaintConversion is one way of storing complaints anew: those of a
// kind of key, read a page at a time, replaced each by script under a
// guard of its version.
type complaintConversion struct {
	keyType  string // of the keys SCAN finds
	what, as string // in errors: what is converted, into what
	script   *redis.Script
	// read queues the read of one complaint; plan takes from the answer
	// the version the guard compares ("": the one the JSON holds) and the
	// stored JSON, ok false to leave the complaint as it is.
	read func(pipe redis.Pipeliner, key string) redis.Cmder
	plan func(cmd redis.Cmder) (version, data string, ok bool)
}

// storeComplaintsAnew carries out cv over the namespace and returns how
// many complaints it replaced. A read that fails for another reason than
// the key being gone or of another type stops it (the next start resumes).
func (s *Store) storeComplaintsAnew(ctx context.Context, cv complaintConversion) (int, error) {
	scan, err := s.scanner(ctx)
	if err != nil {
		return 0, err
	}
	if err := cv.script.Load(ctx, s.rdb).Err(); err != nil {
		return 0, fmt.Errorf("storing complaints as %s: %w", cv.as, err)
	}
	done := 0
	iter := scan.ScanType(ctx, 0, s.keys.Complaint("*"), 500, cv.keyType).Iterator()
	var page []string
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		read := s.rdb.Pipeline()
		cmds := make([]redis.Cmder, len(page))
		for i, key := range page {
			cmds[i] = cv.read(read, key)
		}
		_, _ = read.Exec(ctx) // each answer is looked at below
		write := s.rdb.Pipeline()
		var replaced []*redis.Cmd
		for i, key := range page {
			if err := cmds[i].Err(); err != nil && !errors.Is(err, redis.Nil) && !isWrongType(err) {
				return fmt.Errorf("reading complaints stored as %s: %w", cv.what, err)
			}
			version, data, ok := cv.plan(cmds[i])
			if !ok {
				continue
			}
			c, err := decodeComplaint(data)
			if err != nil {
				continue
			}
			b, err := encodeComplaint(c)
			if err != nil {
				return err
			}
			if version == "" {
				version = strconv.FormatInt(c.Version, 10)
			}
			replaced = append(replaced, cv.script.EvalSha(ctx, write, []string{key}, version, string(b)))
		}
		if len(replaced) > 0 {
			if _, err := write.Exec(ctx); err != nil {
				return fmt.Errorf("storing complaints as %s: %w", cv.as, err)
			}
		}
		for _, r := range replaced {
			if n, _ := r.Int(); n == 1 {
				done++
			}
		}
		page = page[:0]
		return nil
	}
	for iter.Next(ctx) {
		if kind, ok := s.keys.KindOf(iter.Val()); !ok || kind.Name != "complaint" {
			continue
		}
		if page = append(page, iter.Val()); len(page) == 500 {
			if err := flush(); err != nil {
				return done, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return done, fmt.Errorf("finding complaints stored as %s: %w", cv.what, err)
	}
	return done, flush()
}
