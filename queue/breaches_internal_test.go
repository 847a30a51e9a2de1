package queue

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// What must hold: breaches recorded before layout 7 are put in the breach
// index at the first start of this version, each when its timer recorded
// it (the complaint's last change when its timeline no longer says), once:
// later starts and breaches indexed meanwhile are not counted twice. A
// breach committed now is indexed by its commit.
func TestBreachesRecordedBeforeLayout7AreIndexedOnce(t *testing.T) {
	onBothServers(t, func(t *testing.T, rdb redis.UniversalClient, keys Keys) {
		ctx := context.Background()
		store := NewStore(rdb, keys, 0)
		if _, err := store.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		opened := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
		missed := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		later := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
		commit := func(id string, breaches []string, entries []router.Entry) {
			t.Helper()
			c := router.Complaint{ID: id, Owner: "anna", Team: "support", Status: router.StatusOpen, Channel: router.ChannelWebhook,
				CreatedAt: opened, UpdatedAt: later, Version: 1, Breaches: breaches}
			if err := store.Commit(ctx, router.Change{After: c, Entries: entries}); err != nil {
				t.Fatal(err)
			}
		}
		breached := func(kind router.TimerKind) *router.Event {
			return &router.Event{Type: router.EventBreached, Actor: router.ActorRouter, Owner: "anna", Details: map[string]string{"timer": string(kind)}}
		}
		// C-1's breach has its event on the timeline; C-2's timeline no
		// longer says (it counts at its last change); C-3 has none.
		commit("C-1", []string{router.BreachResponse}, []router.Entry{{At: missed, Event: breached(router.TimerRespondBreach)}})
		commit("C-2", []string{router.BreachResolution}, nil)
		commit("C-3", nil, nil)
		if got, _ := store.BreachesBetween(ctx, opened, later.Add(time.Hour)); !reflect.DeepEqual(got, map[string]int{"response": 1, "resolution": 1}) {
			t.Fatalf("breaches indexed by their commits: %v", got)
		}
		// As layout 6 left them: no index.
		if err := rdb.Del(ctx, keys.Breaches()).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Set(ctx, keys.Layout(), 6, 0).Err(); err != nil {
			t.Fatal(err)
		}
		m, err := store.Migrate(ctx)
		if err != nil || m.BreachesIndexed != 2 || m.To != layoutVersion {
			t.Fatalf("Migrate = %+v, %v; want 2 breaches indexed", m, err)
		}
		for _, c := range []struct {
			since, until time.Time
			want         map[string]int
		}{
			{opened, missed, map[string]int{}},
			{missed, missed.Add(time.Millisecond), map[string]int{"response": 1}},
			{later, later.Add(time.Millisecond), map[string]int{"resolution": 1}},
		} {
			if got, err := store.BreachesBetween(ctx, c.since, c.until); err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("breaches in [%s, %s) = %v, %v; want %v", c.since, c.until, got, err, c.want)
			}
		}
		if m, err := store.Migrate(ctx); err != nil || m.BreachesIndexed != 0 {
			t.Errorf("a second start = %+v, %v; want nothing indexed again", m, err)
		}
		if n, _ := rdb.ZCard(ctx, keys.Breaches()).Result(); n != 2 {
			t.Errorf("%d entries in the breach index, want 2", n)
		}
	})
}
