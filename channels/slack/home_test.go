package slack

import (
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
