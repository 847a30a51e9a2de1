package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// toLegacyHash turns the complaint stored at key back into what layouts
// before 5 wrote: a hash of its version and its JSON, the version last in
// the JSON as the struct had it then.
func toLegacyHash(t *testing.T, rdb redis.UniversalClient, key string) router.Complaint {
	t.Helper()
	ctx := context.Background()
	data, err := rdb.Get(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	c, err := decodeComplaint(data)
	if err != nil {
		t.Fatal(err)
	}
	// Before records, a complaint was stored as the API's JSON.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	version := strconv.FormatInt(c.Version, 10)
	head := complaintHeadLegacy + version + ","
	if !strings.HasPrefix(string(b), head) {
		t.Fatalf("complaint JSON does not start with %q: %.60s", head, b)
	}
	old := "{" + strings.TrimSuffix(strings.TrimPrefix(string(b), head), "}") + `,"version":` + version + "}"
	if err := rdb.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, key, "version", version, legacyComplaintData, old).Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

// onBothServers runs test on the test run's redis-server and on the
// embedded Redis, each time with a namespace of its own that is deleted
// afterwards.
func onBothServers(t *testing.T, test func(t *testing.T, rdb redis.UniversalClient, keys Keys)) {
	for _, srv := range []struct {
		name    string
		connect func(*testing.T) redis.UniversalClient
	}{{"redis", realRedis}, {"embedded", embeddedRedis}} {
		t.Run(srv.name, func(t *testing.T) {
			rdb := srv.connect(t)
			keys, err := NewKeys(fmt.Sprintf("layout%d", time.Now().UnixNano()%1e9))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ks, _ := rdb.Keys(context.Background(), keys.Pattern()).Result()
				if len(ks) > 0 {
					rdb.Del(context.Background(), ks...)
				}
			})
			test(t, rdb, keys)
		})
	}
}

func keyType(t *testing.T, rdb redis.UniversalClient, key string) string {
	t.Helper()
	typ, err := rdb.Type(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return typ
}

// TestComplaintsStoredAsHashesStayUsableUntilMigrated: layout 5 stores a
// complaint as a string of its JSON, version first. What must hold for data
// an earlier version stored as hashes, on Redis and on the embedded Redis:
// until Migrate has converted it, every read finds the complaint (by id,
// in lists, when routing a follow-up), a change is guarded by its version
// and stores it as a string; Migrate converts the rest, loses nothing,
// leaves a complaint it cannot decode readable as before, and never
// overwrites a complaint changed since it read it.
func TestComplaintsStoredAsHashesStayUsableUntilMigrated(t *testing.T) {
	onBothServers(t, func(t *testing.T, rdb redis.UniversalClient, keys Keys) {
		ctx := context.Background()
		store := NewStore(rdb, keys, 0)
		if m, err := store.Migrate(ctx); err != nil || !m.Fresh {
			t.Fatalf("Migrate of an empty namespace = %+v, %v; want it fresh", m, err)
		}
		roster, err := router.NewRoster([]router.Team{{ID: "support"}}, []router.Owner{{ID: "ann", Name: "Ann", Teams: []string{"support"}, Capacity: 100, Active: true}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := router.New(router.Config{Store: store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}, ReopenWindow: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		route := func(id, email, subject string) string {
			out, err := r.Route(ctx, router.Message{ID: id, Channel: router.ChannelWebhook, SourceID: id,
				Customer: router.Customer{Email: email}, Subject: subject, Body: "The lid is cracked.", ReceivedAt: time.Now(),
				ThreadKeys: []string{"order-of-" + email}})
			if err != nil {
				t.Fatal(err)
			}
			return out.ComplaintID
		}
		// A subject that looks like a stored head must not be taken
		// for one.
		first := route("M-1", "a@example.com", `{"version":99,"id":"C-9"}`)
		second := route("M-2", "b@example.com", "Kettle")
		for _, id := range []string{first, second} {
			if typ := keyType(t, rdb, keys.Complaint(id)); typ != "string" {
				t.Fatalf("a new complaint is stored as a %s, want a string", typ)
			}
		}
		guard := func(id, version string) string {
			tx := &tx{}
			tx.versionIs("version of "+id, keys.Complaint(id), version)
			tx.write("SADD", keys.tag+":probe", id)
			res, err := tx.run(ctx, rdb)
			if err != nil {
				t.Fatal(err)
			}
			return res.status
		}
		if got := guard(first, "99"); got != "conflict" {
			t.Errorf("the version guard took the subject for the version: %s", got)
		}
		if got := guard(first, "1"); got != "ok" {
			t.Errorf("the version guard refused the right version: %s", got)
		}

		// The namespace as version 4 left it.
		legacyFirst := toLegacyHash(t, rdb, keys.Complaint(first))
		legacySecond := toLegacyHash(t, rdb, keys.Complaint(second))
		badKey := keys.Complaint("C-BAD")
		rdb.HSet(ctx, badKey, "version", "1", legacyComplaintData, "not json")
		if err := rdb.Set(ctx, keys.Layout(), 4, 0).Err(); err != nil {
			t.Fatal(err)
		}

		// Before the migration: reads fall back to the hash.
		if c, err := store.Complaint(ctx, first); err != nil || !reflect.DeepEqual(c, legacyFirst) {
			t.Fatalf("Complaint of a hash = %+v, %v; want %+v", c, err, legacyFirst)
		}
		if cs, err := store.Complaints(ctx, router.Filter{Status: router.StatusOpen}); err != nil || len(cs) != 2 {
			t.Fatalf("open complaints with both stored as hashes = %d, %v; want 2", len(cs), err)
		}
		if got := guard(first, "2"); got != "conflict" {
			t.Errorf("the version guard on a hash let a wrong version through: %s", got)
		}
		// A follow-up threads onto the hash-stored complaint (the
		// routing read finds it) and its change stores it as a string.
		if id := route("M-3", "a@example.com", "Re: lid"); id != first {
			t.Fatalf("the follow-up opened %s, want it on %s", id, first)
		}
		if typ := keyType(t, rdb, keys.Complaint(first)); typ != "string" {
			t.Fatalf("after a change the complaint is a %s, want a string", typ)
		}
		after, err := store.Complaint(ctx, first)
		if err != nil || after.Version != legacyFirst.Version+1 || after.Messages != 2 {
			t.Fatalf("after the follow-up: %+v, %v; want version %d with 2 messages", after, err, legacyFirst.Version+1)
		}

		// Migrate's guard: a hash changed since it was read is left.
		stale, err := complaintAsStringScript.Run(ctx, rdb, []string{keys.Complaint(second)}, "7", "{}").Int()
		if err != nil || stale != 0 || keyType(t, rdb, keys.Complaint(second)) != "hash" {
			t.Fatalf("converting with a stale version answered %d, %v; the hash must stay", stale, err)
		}
		for _, want := range []Migration{{From: 4, To: layoutVersion, ComplaintsConverted: 1}, {From: layoutVersion, To: layoutVersion}} {
			if got, err := store.Migrate(ctx); err != nil || got != want {
				t.Fatalf("Migrate = %+v, %v; want %+v", got, err, want)
			}
		}
		data, err := rdb.Get(ctx, keys.Complaint(second)).Result()
		if err != nil || !strings.HasPrefix(data, complaintHead+"1,") {
			t.Fatalf("after the migration the complaint is %.60q, %v; want a string that starts with its version", data, err)
		}
		if c, err := store.Complaint(ctx, second); err != nil || !reflect.DeepEqual(c, legacySecond) {
			t.Fatalf("migrated complaint = %+v, %v; want %+v", c, err, legacySecond)
		}
		if typ := keyType(t, rdb, badKey); typ != "hash" {
			t.Errorf("a complaint that does not decode is a %s after the migration, want the hash kept", typ)
		}
		if v, _ := rdb.Get(ctx, keys.Layout()).Int(); v != layoutVersion {
			t.Errorf("layout %d after the migration, want %d", v, layoutVersion)
		}

		// A replica of an older version still running writes a hash after
		// the layout is 5: the next start converts it too, and says so.
		toLegacyHash(t, rdb, keys.Complaint(second))
		if got, err := store.Migrate(ctx); err != nil || got != (Migration{From: layoutVersion, To: layoutVersion, ComplaintsConverted: 1}) {
			t.Fatalf("Migrate after an old replica wrote a hash = %+v, %v; want one complaint converted", got, err)
		}
		if typ := keyType(t, rdb, keys.Complaint(second)); typ != "string" {
			t.Errorf("a hash written after the migration is a %s after the next start, want a string", typ)
		}
	})
}

// beforeFirst is a go-redis hook that runs do once, before the first
// command named name is sent (alone or in a pipeline): another replica's
// write landing between two steps.
type beforeFirst struct {
	name string
	do   func()
	once sync.Once
}

func (h *beforeFirst) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *beforeFirst) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if strings.EqualFold(cmd.Name(), h.name) {
			h.once.Do(h.do)
		}
		return next(ctx, cmd)
	}
}

func (h *beforeFirst) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if strings.EqualFold(cmd.Name(), h.name) {
				h.once.Do(h.do)
			}
		}
		return next(ctx, cmds)
	}
}

// TestAHashTurnedIntoAStringMeanwhileIsNoError: what must hold while
// complaints are converted: a commit of another replica that stores a
// complaint as a string between two steps of a read or of the migration
// fails neither, and the read answers what is stored.
func TestAHashTurnedIntoAStringMeanwhileIsNoError(t *testing.T) {
	onBothServers(t, func(t *testing.T, other redis.UniversalClient, keys Keys) {
		ctx := context.Background()
		legacy := func(id string) {
			b, err := encodeComplaint(router.Complaint{Version: 1, ID: id, Status: router.StatusOpen, Owner: "ann"})
			if err != nil {
				t.Fatal(err)
			}
			other.Set(ctx, keys.Complaint(id), b, 0)
			toLegacyHash(t, other, keys.Complaint(id))
		}
		committed := func(id string) func() {
			return func() {
				b, _ := encodeComplaint(router.Complaint{Version: 2, ID: id, Status: router.StatusOpen, Owner: "bob"})
				if err := other.Set(ctx, keys.Complaint(id), b, 0).Err(); err != nil {
					t.Error(err)
				}
			}
		}
		client := func(h redis.Hook) *Store {
			rdb := redis.NewClient(other.(*redis.Client).Options()) // the same server
			t.Cleanup(func() { rdb.Close() })
			rdb.AddHook(h)
			return NewStore(rdb, keys, 0)
		}

		// Reads: the GET meets the hash, the fallback meets a string.
		for _, id := range []string{"C-1", "C-2"} {
			legacy(id)
		}
		one := client(&beforeFirst{name: "evalsha", do: committed("C-1")})
		if c, err := one.Complaint(ctx, "C-1"); err != nil || c.Version != 2 || c.Owner != "bob" {
			t.Fatalf("reading a complaint converted meanwhile: %+v, %v; want version 2 of bob", c, err)
		}
		many := client(&beforeFirst{name: "eval", do: committed("C-2")})
		cs, err := many.loadComplaints(ctx, []string{"C-2"})
		if err != nil || len(cs) != 1 || cs[0].Version != 2 {
			t.Fatalf("listing a complaint converted meanwhile: %+v, %v; want version 2", cs, err)
		}

		// The migration: the scan finds hashes, a commit stores one as
		// a string before they are read.
		for _, id := range []string{"C-3", "C-4"} {
			legacy(id)
		}
		if err := other.Set(ctx, keys.Layout(), 4, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := client(&beforeFirst{name: "hmget", do: committed("C-3")}).Migrate(ctx); err != nil {
			t.Fatalf("the migration beside a commit: %v", err)
		}
		for id, want := range map[string]int64{"C-3": 2, "C-4": 1} {
			data, err := other.Get(ctx, keys.Complaint(id)).Result()
			if err != nil || !strings.HasPrefix(data, complaintHead+strconv.FormatInt(want, 10)+",") {
				t.Errorf("%s after the migration: %.40q, %v; want version %d as a string", id, data, err, want)
			}
		}
	})
}

// TestTheVersionGuardTellsACorruptComplaintFromAMissingOne: a guard that
// the complaint is gone (DropTimer's) does not pass on a complaint stored
// corrupt.
func TestTheVersionGuardTellsACorruptComplaintFromAMissingOne(t *testing.T) {
	rdb := realRedis(t)
	ctx := context.Background()
	keys, err := NewKeys(fmt.Sprintf("corrupt%d", time.Now().UnixNano()%1e9))
	if err != nil {
		t.Fatal(err)
	}
	key := keys.Complaint("C-1")
	t.Cleanup(func() { rdb.Del(context.Background(), key, keys.Timers()) })
	for _, c := range []struct {
		stored, want string
	}{
		{"", "ok"}, // absent
		{"not a complaint", "conflict"},
		{`{"id":"C-1","version":1}`, "conflict"},
	} {
		rdb.Del(ctx, key)
		if c.stored != "" {
			rdb.Set(ctx, key, c.stored, 0)
		}
		tx := &tx{}
		tx.versionIs("complaint gone", key, "")
		tx.write("ZREM", keys.Timers(), "C-1|reminder|1")
		res, err := tx.run(ctx, rdb)
		if err != nil || res.status != c.want {
			t.Errorf("guard \"gone\" with %q stored: %+v, %v; want %s", c.stored, res, err, c.want)
		}
	}
}

// A replica started on data a newer version has stored (a layout above
// its own) would read complaints wrong: a replica of layout 5 read the
// records of layout 6 as blank complaints, split customers' threads and
// fired no reminders. What must hold: Migrate refuses such data with
// ErrNewerLayout, saying both layouts, and changes nothing, not even what
// it would otherwise fold in.
func TestMigrateRefusesDataOfANewerLayout(t *testing.T) {
	onBothServers(t, func(t *testing.T, rdb redis.UniversalClient, keys Keys) {
		ctx := context.Background()
		newer := layoutVersion + 1
		if err := rdb.Set(ctx, keys.Layout(), newer, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.SAdd(ctx, keys.LegacyOpenComplaints(), "C-1").Err(); err != nil {
			t.Fatal(err)
		}
		m, err := NewStore(rdb, keys, 0).Migrate(ctx)
		if !errors.Is(err, ErrNewerLayout) || !strings.Contains(err.Error(), fmt.Sprintf("layout %d, this version reads and writes layout %d", newer, layoutVersion)) {
			t.Fatalf("Migrate on layout %d: %+v, %v; want ErrNewerLayout naming both layouts", newer, m, err)
		}
		if v, _ := rdb.Get(ctx, keys.Layout()).Int(); v != newer {
			t.Errorf("layout %d after the refusal, want %d", v, newer)
		}
		if n, _ := rdb.Exists(ctx, keys.LegacyOpenComplaints()).Result(); n != 1 {
			t.Error("the refused migration folded the legacy open set")
		}
		// Recording this version's layout never lowers one a newer
		// replica recorded while this one migrated.
		if got, err := recordLayoutScript.Run(ctx, rdb, []string{keys.Layout()}, layoutVersion).Int(); err != nil || got != newer {
			t.Errorf("recording layout %d over %d: %d, %v; want %d kept", layoutVersion, newer, got, err, newer)
		}
		if v, _ := rdb.Get(ctx, keys.Layout()).Int(); v != newer {
			t.Errorf("layout %d after recording this version's, want %d", v, newer)
		}
	})
}

// Complaints a layout before 6 stored as the API's JSON are stored as
// records when a version of layout 6 first starts. What must hold: each
// reads back exactly as before, one that does not decode is left as it
// is, a complaint a commit changed meanwhile is not overwritten, a later
// start compacts nothing more, unless a replica of an earlier version has
// opened complaints since.
func TestStartStoresComplaintsOfTheAPIsJSONAsRecords(t *testing.T) {
	onBothServers(t, func(t *testing.T, rdb redis.UniversalClient, keys Keys) {
		ctx := context.Background()
		store := NewStore(rdb, keys, 0)
		at := time.UnixMilli(1796208880493).UTC()
		var want []router.Complaint
		for i := range 3 {
			c := router.Complaint{Version: int64(i + 1), ID: fmt.Sprintf("C-%d", 1001+i), Status: router.StatusOpen, Owner: "ann",
				Team: "support", Channel: router.ChannelEmail, Subject: "Kettle", Customer: router.Customer{Email: "jan@example.nl"},
				CreatedAt: at, UpdatedAt: at.Add(time.Second), LastMessageAt: at.Add(123456789), Messages: 2}
			legacy, err := json.Marshal(c)
			if err != nil || !strings.HasPrefix(string(legacy), complaintHeadLegacy) {
				t.Fatalf("the API's JSON %s, %v", legacy, err)
			}
			rdb.Set(ctx, keys.Complaint(c.ID), legacy, 0)
			rdb.ZAdd(ctx, keys.Complaints(), redis.Z{Score: float64(at.UnixMilli()), Member: c.ID})
			want = append(want, c)
		}
		corrupt := `{"version":4,"id":"C-1004","status":`
		rdb.Set(ctx, keys.Complaint("C-1004"), corrupt, 0)
		rdb.Set(ctx, keys.Layout(), 5, 0)

		// A commit of another replica lands between the read and the write.
		if got, err := complaintAsRecordScript.Run(ctx, rdb, []string{keys.Complaint("C-1001")}, "7", "{}").Int(); err != nil || got != 0 {
			t.Fatalf("the guard replaced a complaint of another version: %d, %v", got, err)
		}

		m, err := store.Migrate(ctx)
		if err != nil || m.From != 5 || m.To != layoutVersion || m.ComplaintsCompacted != 3 {
			t.Fatalf("Migrate = %+v, %v; want 3 complaints compacted from layout 5", m, err)
		}
		for _, c := range want {
			data, _ := rdb.Get(ctx, keys.Complaint(c.ID)).Result()
			if !strings.HasPrefix(data, complaintHead) {
				t.Errorf("%s after the migration: %.40s, want a record", c.ID, data)
			}
			if got, err := store.Complaint(ctx, c.ID); err != nil || !reflect.DeepEqual(got, c) {
				t.Errorf("%s reads back as %+v, %v; want %+v", c.ID, got, err, c)
			}
		}
		if data, _ := rdb.Get(ctx, keys.Complaint("C-1004")).Result(); data != corrupt {
			t.Errorf("an undecodable complaint was rewritten: %q", data)
		}
		if m, err := store.Migrate(ctx); err != nil || m.ComplaintsCompacted != 0 {
			t.Errorf("a second start: %+v, %v; want nothing compacted", m, err)
		}

		// A replica of layout 5 started again opens a complaint in the
		// API's JSON: the next start finds it among the newest, and
		// compacts it.
		late := want[0]
		late.ID, late.Version = "C-1099", 1
		legacy, _ := json.Marshal(late)
		rdb.Set(ctx, keys.Complaint(late.ID), legacy, 0)
		rdb.ZAdd(ctx, keys.Complaints(), redis.Z{Score: float64(at.UnixMilli() + 1), Member: late.ID})
		if m, err := store.Migrate(ctx); err != nil || m.From != layoutVersion || m.ComplaintsCompacted != 1 {
			t.Errorf("a start after an old replica wrote a complaint: %+v, %v; want it compacted", m, err)
		}
		if got, err := store.Complaint(ctx, late.ID); err != nil || !reflect.DeepEqual(got, late) {
			t.Errorf("%s reads back as %+v, %v", late.ID, got, err)
		}
	})
}
