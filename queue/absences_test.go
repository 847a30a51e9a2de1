package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// What must hold: an absence stored before an owner could have several
// (one JSON object in their field) is still read, by the store and by
// routing's one-trip read, and an update keeps it next to the new one.
func TestAbsencesStoredOnePerOwnerStillCount(t *testing.T) {
	ctx := context.Background()
	rdb, keys := testredis.Client(t)
	store := queue.NewStore(rdb, keys, 0)
	until := time.Date(2026, 12, 24, 9, 0, 0, 0, time.UTC)
	if err := rdb.HSet(ctx, keys.Absences(), "anna", `{"owner":"anna","from":"2026-12-01T09:00:00Z","until":"2026-12-24T09:00:00Z","cover":"bas"}`).Err(); err != nil {
		t.Fatal(err)
	}
	list, err := store.Absences(ctx)
	if err != nil || len(list) != 1 || list[0].Cover != "bas" || !list[0].Until.Equal(until) {
		t.Fatalf("absences = %+v, %v; want anna's, covered by bas", list, err)
	}
	in, err := store.RoutingInputs(ctx, nil, "", []string{"anna"})
	if err != nil || len(in.Absences) != 1 || in.Absences[0].Owner != "anna" {
		t.Fatalf("routing read absences %+v, %v", in.Absences, err)
	}
	later := router.Absence{Owner: "anna", From: until.AddDate(0, 1, 0), Until: until.AddDate(0, 1, 7), Cover: "chloe"}
	if err := store.UpdateAbsences(ctx, "anna", func(cur []router.Absence) []router.Absence { return append(cur, later) }); err != nil {
		t.Fatal(err)
	}
	list, err = store.Absences(ctx)
	if err != nil || len(list) != 2 || list[0].Cover != "bas" || list[1].Cover != "chloe" {
		t.Fatalf("after the update: %+v, %v; want both", list, err)
	}
	if err := store.UpdateAbsences(ctx, "anna", func([]router.Absence) []router.Absence { return nil }); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.HLen(ctx, keys.Absences()).Result(); n != 0 {
		t.Errorf("an owner with no absences left keeps a field")
	}
}
