package router

import (
	"testing"
	"time"
)

// The owner a new complaint goes to: fewest open first, then whoever waited
// longest for a new one, then by id; only owners that pass the filter.
func TestLeastLoadedOrder(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	owners := []Owner{{ID: "cem"}, {ID: "anna"}, {ID: "bas"}, {ID: "dirk"}}
	all := func(Owner) bool { return true }
	tests := []struct {
		name  string
		loads map[string]OwnerLoad
		ok    func(Owner) bool
		want  string
	}{
		{"fewest open wins", map[string]OwnerLoad{"cem": {Open: 3}, "anna": {Open: 2}, "bas": {Open: 1}, "dirk": {Open: 4}}, all, "bas"},
		{"a tie goes to who waited longest", map[string]OwnerLoad{
			"cem": {Open: 1, LastAssigned: t0.Add(time.Minute)}, "anna": {Open: 1, LastAssigned: t0.Add(2 * time.Minute)},
			"bas": {Open: 1, LastAssigned: t0}, "dirk": {Open: 2}}, all, "bas"},
		{"never assigned waited longest", map[string]OwnerLoad{
			"cem": {Open: 1}, "anna": {Open: 1, LastAssigned: t0}, "bas": {Open: 1, LastAssigned: t0}, "dirk": {Open: 1, LastAssigned: t0}}, all, "cem"},
		{"then by id", map[string]OwnerLoad{}, all, "anna"},
		{"only who passes", map[string]OwnerLoad{"anna": {Open: 0}, "dirk": {Open: 9}}, func(o Owner) bool { return o.ID == "dirk" || o.ID == "cem" }, "cem"},
		{"nobody passes", nil, func(Owner) bool { return false }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := leastLoaded(owners, tt.loads, tt.ok)
			if ok != (tt.want != "") || got.ID != tt.want {
				t.Errorf("leastLoaded = %q, %v; want %q", got.ID, ok, tt.want)
			}
		})
	}
}

// Every new complaint filters the team's owners (present, speaking the
// language): when all pass, which is usual, that costs no copy.
func TestOwnersWhereCopiesOnlyWhenItDrops(t *testing.T) {
	owners := []Owner{{ID: "anna", Active: true}, {ID: "bas", Active: true}, {ID: "cem"}}
	active := func(o Owner) bool { return o.Active }
	if got := ownersWhere(owners[:2], active); len(got) != 2 || &got[0] != &owners[0] {
		t.Errorf("all pass: got %v, want the same slice", got)
	}
	if allocs := testing.AllocsPerRun(100, func() { ownersWhere(owners[:2], active) }); allocs != 0 {
		t.Errorf("all pass: %v allocations, want 0", allocs)
	}
	got := ownersWhere(owners, active)
	if len(got) != 2 || got[0].ID != "anna" || got[1].ID != "bas" {
		t.Errorf("cem inactive: got %v", got)
	}
	got[0].ID = "changed"
	if owners[0].ID != "anna" {
		t.Error("a filtered copy shares the roster's slice")
	}
}
