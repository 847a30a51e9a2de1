package queue_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// TestMigrateBringsTheOldLayoutToTheNew: data written before the ordered
// open index and the figure indexes existed (a set of open ids, no due or
// promise indexes) is migrated at start: afterwards the audit finds every
// index in step with the complaints, the newest open complaints list first,
// and a second run changes nothing.
func TestMigrateBringsTheOldLayoutToTheNew(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.testRouter(3)
	ids := e.routeWebhooks(r, 12, func(i int) string { return fmt.Sprintf("c%d@example.com", i) })
	for _, id := range ids[:4] {
		c, err := e.store.Complaint(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Promise(ctx, id, c.Owner, time.Now().Add(50*time.Millisecond), "I will call you back.", false); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // the promises lapse: overdue
	c, err := e.store.Complaint(ctx, ids[5])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Close(ctx, ids[5], c.Owner, "answered", ""); err != nil {
		t.Fatal(err)
	}
	// Turn the namespace into what the previous version wrote.
	open, err := e.rdb.ZRange(ctx, e.keys.OpenComplaints(), 0, -1).Result()
	if err != nil || len(open) != 11 {
		t.Fatalf("open = %v, %v", open, err)
	}
	if err := e.rdb.SAdd(ctx, e.keys.LegacyOpenComplaints(), open).Err(); err != nil {
		t.Fatal(err)
	}
	old := []string{e.keys.OpenComplaints(), e.keys.PromisesPending(), e.keys.PromisesBroken(), e.keys.Layout(), e.keys.OpenCounts()}
	for i := range 3 {
		old = append(old, e.keys.OwnerDue(fmt.Sprintf("owner%02d", i)))
	}
	// Owners' last assignments were a hash of their own before layout 4.
	owners := []string{"owner00", "owner01", "owner02"}
	loadsBefore, err := e.store.OwnerLoads(ctx, owners)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range owners {
		ms, err := e.rdb.HGet(ctx, e.keys.OpenCounts(), queue.LastAssignedField(o)).Result()
		if err != nil {
			t.Fatalf("%s has no last assignment: %v", o, err)
		}
		e.rdb.HSet(ctx, e.keys.LegacyOwnerLastAssigned(), o, ms)
	}
	if err := e.rdb.Del(ctx, old...).Err(); err != nil {
		t.Fatal(err)
	}
	if rep, _ := e.store.Audit(ctx); len(rep.Problems) == 0 {
		t.Fatal("the audit finds nothing wrong with the old layout: the test proves nothing")
	}

	// A dedup key an earlier version kept for ever, and the unbounded
	// hashes of routed messages and once-keys.
	oldDedup := e.keys.Dedup("webhook", "old-form-1")
	e.rdb.Set(ctx, oldDedup, "M-OLD", 0)
	e.rdb.HSet(ctx, e.keys.LegacyMessageComplaints(), "M-OLD", ids[0])
	e.rdb.HSet(ctx, e.keys.LegacyOnce(), "note:old", ids[1])
	store := queue.NewStore(e.rdb, e.keys, 30*24*time.Hour)
	if got, found, err := store.MessageComplaint(ctx, "M-OLD"); err != nil || !found || got != ids[0] {
		t.Fatalf("before the migration, the legacy index answers %q, %v, %v", got, found, err)
	}

	for range 2 {
		if _, err := store.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		rep, err := store.Audit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) > 0 {
			t.Fatalf("after the migration: %v", rep.Problems)
		}
	}
	if n, _ := e.rdb.Exists(ctx, e.keys.LegacyOpenComplaints(), e.keys.LegacyMessageComplaints(), e.keys.LegacyOnce(), e.keys.LegacyOwnerLastAssigned()).Result(); n != 0 {
		t.Error("a legacy key is still there")
	}
	if loads, err := store.OwnerLoads(ctx, owners); err != nil || fmt.Sprint(loads) != fmt.Sprint(loadsBefore) {
		t.Errorf("owners' loads after the migration = %v, %v; want %v", loads, err, loadsBefore)
	}
	if got, found, err := store.MessageComplaint(ctx, "M-OLD"); err != nil || !found || got != ids[0] {
		t.Errorf("after the migration, message M-OLD is on %q (%v, %v), want %s", got, found, err, ids[0])
	}
	for _, k := range []string{oldDedup, e.keys.MessageComplaint("M-OLD"), e.keys.Once("note:old")} {
		if ttl, err := e.rdb.PTTL(ctx, k).Result(); err != nil || ttl <= 0 {
			t.Errorf("%s: ttl %v (%v), want a retention", k, ttl, err)
		}
	}
	f, err := e.store.OpenFigures(ctx, nil, time.Now())
	if err != nil || f.PromisesPending != 4 || f.Overdue() != 4 {
		t.Fatalf("figures after the migration = %+v, %v; want 4 promises pending, all overdue", f, err)
	}
	for o := range f.Owners {
		if !slices.Contains(owners, o) {
			t.Errorf("figures list owner %q, who has no complaint", o)
		}
	}
	newest, err := e.store.Complaints(ctx, router.Filter{Status: router.StatusOpen, Limit: 2})
	if err != nil || len(newest) != 2 || newest[0].ID != ids[11] || newest[1].ID != ids[10] {
		t.Fatalf("newest open = %+v, %v; want %s, %s", newest, err, ids[11], ids[10])
	}
}

// An old replica still running during an upgrade may write the legacy hash
// of last assignments after a new one folded it: the next fold keeps, per
// owner, the later of the two times, and the owner's load shows it.
func TestFoldingLastAssignmentsKeepsTheLaterTime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	earlier, later := time.UnixMilli(1_700_000_000_000).UTC(), time.UnixMilli(1_700_000_600_000).UTC()
	e.rdb.HSet(ctx, e.keys.OpenCounts(), "anna", 2, queue.LastAssignedField("anna"), later.UnixMilli(), queue.LastAssignedField("bas"), earlier.UnixMilli())
	e.rdb.HSet(ctx, e.keys.LegacyOwnerLastAssigned(), "anna", earlier.UnixMilli(), "bas", later.UnixMilli(), "cem", earlier.UnixMilli())
	if _, err := e.store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	loads, err := e.store.OwnerLoads(ctx, []string{"anna", "bas", "cem"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]router.OwnerLoad{"anna": {Open: 2, LastAssigned: later}, "bas": {LastAssigned: later}, "cem": {LastAssigned: earlier}}
	if fmt.Sprint(loads) != fmt.Sprint(want) {
		t.Errorf("loads = %v, want %v", loads, want)
	}
	if n, _ := e.rdb.Exists(ctx, e.keys.LegacyOwnerLastAssigned()).Result(); n != 0 {
		t.Error("the legacy hash is still there")
	}
}

// The routing read (a script) and OwnerLoads (Go) read an owner's load
// from the fields the commit writes: the same open count and last
// assignment, to the millisecond.
func TestRoutingReadsTheLoadsTheCommitWrote(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.testRouter(3)
	for i := range 4 {
		if _, err := r.Route(ctx, router.Message{ID: fmt.Sprintf("M-%02d", i), Channel: router.ChannelWebhook, SourceID: fmt.Sprint(i),
			Customer: router.Customer{Email: fmt.Sprintf("c%d@example.com", i)}, Body: "my order is late", ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	owners := []string{"owner00", "owner01", "owner02"}
	loads, err := e.store.OwnerLoads(ctx, owners)
	if err != nil {
		t.Fatal(err)
	}
	in, err := e.store.RoutingInputs(ctx, nil, "", owners)
	if err != nil {
		t.Fatal(err)
	}
	open := 0
	for _, o := range owners {
		l := loads[o]
		open += l.Open
		if l.Open > 0 && l.LastAssigned.IsZero() {
			t.Errorf("%s has %d open but no last assignment", o, l.Open)
		}
		if got := in.Loads[o]; got != l {
			t.Errorf("%s: the routing read says %+v, OwnerLoads %+v", o, got, l)
		}
	}
	if open != 4 {
		t.Errorf("%d open in all, want 4", open)
	}
}
