package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
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
	var c router.Complaint
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		t.Fatal(err)
	}
	version := strconv.FormatInt(c.Version, 10)
	head := complaintHead + version + ","
	if !strings.HasPrefix(data, head) {
		t.Fatalf("stored complaint does not start with %q: %.60s", head, data)
	}
	old := "{" + strings.TrimSuffix(strings.TrimPrefix(data, head), "}") + `,"version":` + version + "}"
	if err := rdb.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, key, "version", version, legacyComplaintData, old).Err(); err != nil {
		t.Fatal(err)
	}
	return c
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
	for _, srv := range []struct {
		name    string
		connect func(*testing.T) redis.UniversalClient
	}{{"redis", realRedis}, {"embedded", embeddedRedis}} {
		t.Run(srv.name, func(t *testing.T) {
			rdb := srv.connect(t)
			ctx := context.Background()
			keys, err := NewKeys(fmt.Sprintf("layout5%d", time.Now().UnixNano()%1e9))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ks, _ := rdb.Keys(context.Background(), keys.Pattern()).Result()
				if len(ks) > 0 {
					rdb.Del(context.Background(), ks...)
				}
			})
			store := NewStore(rdb, keys, 0)
			if err := store.Migrate(ctx); err != nil {
				t.Fatal(err)
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
			for range 2 {
				if err := store.Migrate(ctx); err != nil {
					t.Fatal(err)
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
		})
	}
}
