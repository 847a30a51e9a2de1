package slack

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// What must hold: the worklist puts overdue and promised-today first, then
// the nearest deadline (respond-by only until answered), those without one
// last, oldest first among equals.
func TestWorklistOrder(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	h := func(n int) time.Time { return now.Add(time.Duration(n) * time.Hour) }
	cs := []router.Complaint{
		{ID: "none-old", CreatedAt: h(-50)},
		{ID: "resolve-in-48h", ResolveBy: h(48), CreatedAt: h(-1)},
		{ID: "answered-respond-passed", RespondBy: h(-2), FirstResponseAt: h(-3), ResolveBy: h(30), CreatedAt: h(-5)},
		{ID: "promised-tonight", PromisedBy: h(8), ResolveBy: h(100), CreatedAt: h(-2)},
		{ID: "respond-in-2h", RespondBy: h(2), CreatedAt: h(-1)},
		{ID: "overdue", RespondBy: h(-1), CreatedAt: h(-3)},
		{ID: "none-new", CreatedAt: h(-1)},
	}
	sortWorklist(cs, now)
	want := []string{"overdue", "promised-tonight", "respond-in-2h", "answered-respond-passed", "resolve-in-48h", "none-old", "none-new"}
	for i, c := range cs {
		if c.ID != want[i] {
			var got []string
			for _, c := range cs {
				got = append(got, c.ID)
			}
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

// What must hold: "today" is the date in now's zone (the worklist owner's):
// at 10:00 in Auckland (21:00 the day before in UTC), a promise due at 20:00
// Auckland time is due today and goes above an earlier resolve-by; on the
// UTC date it would not be.
func TestWorklistOrderFollowsTheOwnersToday(t *testing.T) {
	akl, err := time.LoadLocation("Pacific/Auckland")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, akl) // 2026-12-02 21:00 UTC
	order := func(now time.Time) []string {
		cs := []router.Complaint{
			{ID: "resolve-at-noon", ResolveBy: time.Date(2026, 12, 3, 12, 0, 0, 0, akl), CreatedAt: now.Add(-time.Hour)},
			{ID: "promised-tonight", PromisedBy: time.Date(2026, 12, 3, 20, 0, 0, 0, akl), CreatedAt: now.Add(-time.Hour)},
		}
		sortWorklist(cs, now)
		return []string{cs[0].ID, cs[1].ID}
	}
	if got := order(now); got[0] != "promised-tonight" {
		t.Errorf("in the owner's zone: order %v, want the promise due today first", got)
	}
	if got := order(now.UTC()); got[0] != "resolve-at-noon" {
		t.Errorf("on the UTC date the promise is tomorrow's: order %v, want the earlier deadline first", got)
	}
}

// What must hold: an away owner's App Home names who has their work now.
// When their cover is away too, that is the colleague standing in for the
// cover, not the cover (whose name alone sent people to someone absent).
func TestHomeSaysWhoCoversNow(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	names := map[string]string{"bas": "Bas Jansen", "daan": "Daan Smit"}
	o := router.Owner{ID: "anna", Name: "Anna de Vries"}
	for _, c := range []struct {
		name, coveredBy, want string
		nobody                bool
	}{
		{"the cover is at work", "bas", "covered by Bas Jansen", false},
		{"the cover is away too", "daan", "covered by Daan Smit, standing in for Bas Jansen", false},
		{"nobody along the covers is at work", "bas", "Nobody who covers for you is at work now", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			self := router.OwnerStatus{Owner: o, Away: &router.Absence{Owner: "anna", Until: now.Add(48 * time.Hour), Cover: "bas"}, CoveredBy: c.coveredBy, NobodyCovers: c.nobody}
			view := homeView(o, false, nil, self, now, func(id string) string { return names[id] }, func(router.Complaint) bool { return false })
			raw, err := json.Marshal(view)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(raw), c.want) {
				t.Errorf("App Home status does not say %q:\n%s", c.want, raw)
			}
			if !c.nobody && strings.Contains(string(raw), "Nobody who covers") {
				t.Errorf("App Home warns that nobody covers while someone does:\n%s", raw)
			}
			if c.coveredBy == "bas" && strings.Contains(string(raw), "standing in") {
				t.Errorf("App Home names a stand-in when the cover is at work:\n%s", raw)
			}
		})
	}
}

// What must hold: an owner's App Home shows their next planned absence.
func TestHomeShowsAPlannedAbsence(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	o := router.Owner{ID: "anna", Name: "Anna de Vries"}
	self := router.OwnerStatus{Owner: o, Planned: []router.Absence{{Owner: "anna", From: now.AddDate(0, 0, 19), Until: now.AddDate(0, 0, 27), Cover: "bas"}}}
	view := homeView(o, false, nil, self, now, func(id string) string { return map[string]string{"bas": "Bas Jansen"}[id] }, func(router.Complaint) bool { return false })
	raw, err := json.Marshal(view)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "Planned away: ") || !strings.Contains(string(raw), "covered by Bas Jansen") {
		t.Errorf("App Home does not show the planned absence:\n%s", raw)
	}
}
