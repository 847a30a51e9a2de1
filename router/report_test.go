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

	c5.Prevention = "Pack glass in double boxes"
	c2.Prevention = "Tell the carrier about the new depot"
	// Durations count working time, as the deadlines do: Monday to Friday,
	// 09:00-17:00 UTC.
	week := &router.Calendar{Name: "office", Location: time.UTC, Start: 9 * h, End: 17 * h,
		Days: [7]bool{time.Monday: true, time.Tuesday: true, time.Wednesday: true, time.Thursday: true, time.Friday: true}}
	rep := router.BuildReport(router.ReportInput{
		Since: at("2026-11-23 00:00"), Until: at("2026-12-07 00:00"), Now: now,
		Complaints: []router.Complaint{c1, c2, c3, c4, c5}, Open: router.FiguresOf([]router.Complaint{c3, c4, c6}, []string{"anna", "bas", "chloe"}, now),
		Owners:        []string{"anna", "bas", "chloe"},
		Calendar:      func(string) *router.Calendar { return week },
		Capacity:      map[string]int{"anna": 1, "bas": 3},
		Rates:         []router.RateReport{{Period: "2026-W49", Volume: 100, Complaints: 3, Percent: 3, Alert: true}},
		RateThreshold: 0.025,
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
	// First responses in working time: C-3 was answered at 08:30, before
	// work began, so 0; C-1 1h, C-5 2h, C-2 3h (all within one working
	// day). Median (1h+2h)/2 = 1.5h; p90 is the ceil(0.9*4) = 4th value, 3h.
	check("business time", rep.BusinessTime, true)
	check("first response", rep.FirstResponse, router.Durations{Count: 4, MedianSeconds: 5400, P90Seconds: 10800})
	// Resolutions in working time (wall clock was 48h, 24h, 72h):
	// C-1 Mon 09:00 -> Wed 09:00 = Mon 8h + Tue 8h = 16h;
	// C-2 Tue 10:00 -> Wed 10:00 = Tue 7h + Wed 1h = 8h;
	// C-5 Wed 09:00 -> Sat 09:00 = Wed, Thu, Fri 8h each = 24h.
	// Median 16h, p90 the 3rd value, 24h.
	check("resolution", rep.Resolution, router.Durations{Count: 3, MedianSeconds: 57600, P90Seconds: 86400})
	// 3 promises made, 2 kept, 1 broken: 2 of 3 settled kept = 66.7 %; C-4's is pending.
	check("promises", rep.Promises, router.PromiseStats{Made: 3, Kept: 2, Broken: 1, Pending: 1, KeptPercent: 66.7})
	check("reopened", []any{rep.Reopened, rep.ReopenPercent}, []any{1, 20.0})
	check("breaches", rep.Breaches, []router.Count{{"response", 2}, {"promise", 1}, {"resolution", 1}})
	check("top causes", rep.TopCauses, []router.Count{{"late-delivery", 2}, {"damaged", 1}})
	// CSAT 5, 2, 4: average 3.67, 2 of 3 satisfied.
	check("csat", rep.CSAT, router.CSATStats{Responses: 3, Average: 3.67, SatisfiedPercent: 66.7, Scores: map[int]int{5: 1, 2: 1, 4: 1}})
	// anna: C-3 (resolution lapsed 2 Dec) and C-0 (promise lapsed 11:00)
	// both overdue; bas: C-4 due later; chloe: nothing open.
	// Capacity: anna carries 2 of 1 (over), bas 1 of 3, chloe has none set.
	// Promises of the period's complaints: anna's C-1 1 made 1 kept; bas's
	// C-2 2 made, 1 kept, 1 broken and C-4's pending; chloe none.
	check("owners", rep.Owners, []router.OwnerReport{
		{Owner: "anna", Open: 2, Overdue: 2, Capacity: 1, OverCapacity: true, Promises: router.PromiseStats{Made: 1, Kept: 1, KeptPercent: 100}},
		{Owner: "bas", Open: 1, Overdue: 0, Capacity: 3, Promises: router.PromiseStats{Made: 2, Kept: 1, Broken: 1, Pending: 1, KeptPercent: 50}},
		{Owner: "chloe", Open: 0, Overdue: 0, Promises: router.PromiseStats{}},
	})
	check("overdue", rep.Overdue, 2)
	check("threshold", rep.RateThresholdPercent, 2.5)
	// Week 48: C-1 (email) and C-2 (webhook), both closed late-delivery;
	// first responses 1h and 3h (median 2h), resolutions 16h and 8h
	// (median 12h, p90 16h); C-2 reopened: 1 of 2 = 50 %.
	if len(rep.Weeks) != 2 {
		t.Fatalf("weeks = %+v, want W48 and W49", rep.Weeks)
	}
	w48, w49 := rep.Weeks[0], rep.Weeks[1]
	check("W48", []any{w48.Week, w48.Complaints, w48.ByChannel, w48.FirstResponse, w48.Resolution, w48.Reopened, w48.ReopenPercent, w48.Causes, w48.Volume},
		[]any{"2026-W48", 2, []router.Count{{"email", 1}, {"webhook", 1}}, router.Durations{Count: 2, MedianSeconds: 7200, P90Seconds: 10800},
			router.Durations{Count: 2, MedianSeconds: 43200, P90Seconds: 57600}, 1, 50.0, []router.Count{{"late-delivery", 2}}, 0})
	check("W48 promises", w48.Promises, router.PromiseStats{Made: 3, Kept: 2, Broken: 1, KeptPercent: 66.7})
	// Week 49: C-3 (chat), C-4 (email), C-5 (email); first responses 0 and
	// 2h (median 1h, p90 2h); C-5 resolved in 24h, damaged; 3 of 100 orders.
	check("W49", []any{w49.Week, w49.Complaints, w49.ByChannel, w49.FirstResponse, w49.Resolution, w49.Reopened, w49.Causes, w49.Volume, w49.RatePercent, w49.Alert},
		[]any{"2026-W49", 3, []router.Count{{"email", 2}, {"chat", 1}}, router.Durations{Count: 2, MedianSeconds: 3600, P90Seconds: 7200},
			router.Durations{Count: 1, MedianSeconds: 86400, P90Seconds: 86400}, 0, []router.Count{{"damaged", 1}}, 100, 3.0, true})
	check("prevention", rep.Prevention, []router.PreventionNotes{
		{Category: "damaged", Notes: []router.PreventionNote{{Complaint: "C-5", Owner: "chloe", ClosedAt: c5.ClosedAt, Note: "Pack glass in double boxes"}}},
		{Category: "late-delivery", Notes: []router.PreventionNote{{Complaint: "C-2", Owner: "bas", ClosedAt: c2.ClosedAt, Note: "Tell the carrier about the new depot"}}},
	})
	// Without calendars durations are wall clock, as before.
	wall := router.BuildReport(router.ReportInput{Since: at("2026-11-23 00:00"), Until: at("2026-12-07 00:00"), Now: now, Complaints: []router.Complaint{c1, c2, c5}})
	check("wall-clock resolution", []any{wall.BusinessTime, wall.Resolution}, []any{false, router.Durations{Count: 3, MedianSeconds: 172800, P90Seconds: 259200}})
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
