package router_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// TestReportFiguresMatchAHandComputedFixture checks every figure of the
// report against values worked out by hand in the comments.
func TestReportFiguresMatchAHandComputedFixture(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	h := time.Hour
	now := at("2026-12-03 12:00")
	closed := func(c router.Complaint, after time.Duration, cat string) router.Complaint {
		c.Status, c.ClosedAt, c.Category = router.StatusClosed, c.CreatedAt.Add(after), cat
		return c
	}
	c1 := router.Complaint{ID: "C-1", Channel: router.ChannelEmail, Owner: "anna", CreatedAt: at("2026-11-23 09:00"), Promises: 1, PromisesKept: 1, CSAT: 5}
	c1.FirstResponseAt = c1.CreatedAt.Add(1 * h)
	c1 = closed(c1, 48*h, "late-delivery")
	c2 := router.Complaint{ID: "C-2", Channel: router.ChannelWebhook, Owner: "bas", CreatedAt: at("2026-11-24 10:00"), Reopens: 1,
		Promises: 2, PromisesKept: 1, PromisesBroken: 1, Breaches: []string{"promise"}, CSAT: 2}
	c2.FirstResponseAt = c2.CreatedAt.Add(3 * h)
	c2 = closed(c2, 24*h, "late-delivery")
	c3 := router.Complaint{ID: "C-3", Channel: router.ChannelChat, Owner: "anna", Status: router.StatusOpen, CreatedAt: at("2026-11-30 08:00"),
		ResolveBy: at("2026-12-02 08:00"), Breaches: []string{"response"}}
	c3.FirstResponseAt = c3.CreatedAt.Add(30 * time.Minute)
	c4 := router.Complaint{ID: "C-4", Channel: router.ChannelEmail, Owner: "bas", Status: router.StatusOpen, CreatedAt: at("2026-12-01 12:00"),
		RespondBy: at("2026-12-03 16:00"), PromisedBy: at("2026-12-04 10:00"), Promises: 0}
	c5 := router.Complaint{ID: "C-5", Channel: router.ChannelEmail, Owner: "chloe", CreatedAt: at("2026-12-02 09:00"),
		Breaches: []string{"response", "resolution"}, CSAT: 4}
	c5.FirstResponseAt = c5.CreatedAt.Add(2 * h)
	c5 = closed(c5, 72*h, "damaged")
	// Opened before the period, still open, with a lapsed promise: counts for
	// load and overdue only.
	c6 := router.Complaint{ID: "C-0", Channel: router.ChannelEmail, Owner: "anna", Status: router.StatusOpen, CreatedAt: at("2026-11-10 08:00"),
		PromisedBy: at("2026-12-03 11:00")}

	rep := router.BuildReport(router.ReportInput{
		Since: at("2026-11-23 00:00"), Until: at("2026-12-07 00:00"), Now: now,
		Complaints: []router.Complaint{c1, c2, c3, c4, c5}, Open: router.FiguresOf([]router.Complaint{c3, c4, c6}, []string{"anna", "bas", "chloe"}, now),
		Owners: []string{"anna", "bas", "chloe"},
	})
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %+v, want %+v", name, got, want)
		}
	}
	check("complaints", rep.Complaints, 5)
	check("by channel", rep.ByChannel, []router.Count{{"email", 3}, {"chat", 1}, {"webhook", 1}})
	check("by category", rep.ByCategory, []router.Count{{"(none)", 2}, {"late-delivery", 2}, {"damaged", 1}})
	check("by week", rep.ByWeek, []router.Count{{"2026-W48", 2}, {"2026-W49", 3}})
	// First responses 0.5h, 1h, 2h, 3h: median (1h+2h)/2 = 1.5h; p90 is the
	// ceil(0.9*4) = 4th value, 3h.
	check("first response", rep.FirstResponse, router.Durations{Count: 4, MedianSeconds: 5400, P90Seconds: 10800})
	// Resolutions 24h, 48h, 72h: median 48h, p90 the 3rd value, 72h.
	check("resolution", rep.Resolution, router.Durations{Count: 3, MedianSeconds: 172800, P90Seconds: 259200})
	// 3 promises made, 2 kept, 1 broken: 2 of 3 settled kept = 66.7 %; C-4's is pending.
	check("promises", rep.Promises, router.PromiseStats{Made: 3, Kept: 2, Broken: 1, Pending: 1, KeptPercent: 66.7})
	check("reopened", []any{rep.Reopened, rep.ReopenPercent}, []any{1, 20.0})
	check("breaches", rep.Breaches, []router.Count{{"response", 2}, {"promise", 1}, {"resolution", 1}})
	check("top causes", rep.TopCauses, []router.Count{{"late-delivery", 2}, {"damaged", 1}})
	// CSAT 5, 2, 4: average 3.67, 2 of 3 satisfied.
	check("csat", rep.CSAT, router.CSATStats{Responses: 3, Average: 3.67, SatisfiedPercent: 66.7, Scores: map[int]int{5: 1, 2: 1, 4: 1}})
	// anna: C-3 (resolution lapsed 2 Dec) and C-0 (promise lapsed 11:00)
	// both overdue; bas: C-4 due later; chloe: nothing open.
	check("owners", rep.Owners, []router.OwnerReport{{"anna", 2, 2}, {"bas", 1, 0}, {"chloe", 0, 0}})
	check("overdue", rep.Overdue, 2)
}

func TestISOWeeks(t *testing.T) {
	for period, want := range map[string]string{"2026-W48": "2026-11-23", "2026-W01": "2025-12-29", "2026-W53": "2026-12-28"} {
		got, err := router.WeekStart(period, time.UTC)
		if err != nil || got.Format(time.DateOnly) != want {
			t.Errorf("WeekStart(%s) = %s %v, want %s", period, got, err, want)
		}
	}
	for _, bad := range []string{"2026-48", "2025-W53", "2026-W00", "W48"} {
		if _, err := router.WeekStart(bad, time.UTC); err == nil {
			t.Errorf("WeekStart(%q) accepted", bad)
		}
	}
}
