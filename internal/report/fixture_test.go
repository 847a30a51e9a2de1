package report_test

import (
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// hostileCause and hostileNote are staff text that must reach the page as
// text, never as markup.
const (
	hostileCause = `<script>alert("cause")</script>`
	hostileNote  = `<img src="http://evil.example/p.png"> & check the label`
)

// seededWeek is a week of complaints (ISO week 2026-W48, Monday 23 November)
// in a report of two weeks (W47 is empty), with figures worked out by hand
// in the test that reads them. Working time is Monday to Friday,
// 09:00-17:00 UTC.
func seededWeek(t *testing.T) router.Report {
	t.Helper()
	return seeded(t, time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC))
}

// seeded is the seeded week in a report from since to 30 November.
func seeded(t *testing.T, since time.Time) router.Report {
	t.Helper()
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	office := &router.Calendar{Name: "office", Location: time.UTC, Start: 9 * time.Hour, End: 17 * time.Hour,
		Days: [7]bool{time.Monday: true, time.Tuesday: true, time.Wednesday: true, time.Thursday: true, time.Friday: true}}
	closed := func(c router.Complaint, when, cat string) router.Complaint {
		c.Status, c.ClosedAt, c.Category = router.StatusClosed, at(when), cat
		return c
	}
	// K1: Mon 09:00, answered 10:00 (1h), closed Tue 09:00 (8h).
	k1 := router.Complaint{ID: "K-1", Channel: router.ChannelEmail, Owner: "anna", CreatedAt: at("2026-11-23 09:00"),
		FirstResponseAt: at("2026-11-23 10:00"), Promises: 1, PromisesKept: 1, CSAT: 5, Prevention: "Use the tracked service"}
	k1 = closed(k1, "2026-11-24 09:00", "delivery")
	// K2: Mon 16:00, answered Tue 10:00 (1h + 1h = 2h), closed Wed 12:00
	// (1h + 8h + 3h = 12h); reopened once; one promise kept, one broken.
	k2 := router.Complaint{ID: "K-2", Channel: router.ChannelEmail, Owner: "bas", CreatedAt: at("2026-11-23 16:00"),
		FirstResponseAt: at("2026-11-24 10:00"), Reopens: 1, Promises: 2, PromisesKept: 1, PromisesBroken: 1,
		Breaches: []string{"promise"}, CSAT: 2}
	k2 = closed(k2, "2026-11-25 12:00", "delivery")
	// K3: Tue 13:00, answered 13:30 (0.5h), closed Fri 15:00 (4 + 8 + 8 + 6
	// = 26h), with a hostile category and note.
	k3 := router.Complaint{ID: "K-3", Channel: router.ChannelChat, Owner: "anna", CreatedAt: at("2026-11-24 13:00"),
		FirstResponseAt: at("2026-11-24 13:30"), CSAT: 4, Prevention: hostileNote}
	k3 = closed(k3, "2026-11-27 15:00", hostileCause)
	// K4: Thu 11:00, answered Fri 11:00 (6h + 2h = 8h), open, resolution
	// due Fri 17:00 (overdue now), a promise pending.
	k4 := router.Complaint{ID: "K-4", Channel: router.ChannelWebhook, Owner: "chloe", Status: router.StatusOpen, CreatedAt: at("2026-11-26 11:00"),
		FirstResponseAt: at("2026-11-27 11:00"), ResolveBy: at("2026-11-27 17:00"), Promises: 1, PromisedBy: at("2026-12-02 10:00"),
		Breaches: []string{"response"}}
	// K5: Saturday 10:00, answered Monday 30 November 09:30: the weekend
	// counts nothing, 0.5h.
	k5 := router.Complaint{ID: "K-5", Channel: router.ChannelEmail, Owner: "anna", Status: router.StatusOpen, CreatedAt: at("2026-11-28 10:00"),
		FirstResponseAt: at("2026-11-30 09:30")}
	// K0: opened before the period, open, its promise lapsed at 11:00.
	k0 := router.Complaint{ID: "K-0", Channel: router.ChannelEmail, Owner: "anna", Status: router.StatusOpen, CreatedAt: at("2026-11-02 09:00"),
		PromisedBy: at("2026-11-30 11:00")}
	return router.BuildReport(router.ReportInput{
		Since: since, Until: at("2026-11-30 00:00"), Now: at("2026-11-30 12:00"), Location: time.UTC,
		Complaints: []router.Complaint{k1, k2, k3, k4, k5}, Open: router.FiguresOf([]router.Complaint{k4, k5, k0}, []string{"anna", "bas", "chloe"}, at("2026-11-30 12:00")),
		Owners:        []string{"anna", "bas", "chloe"},
		Capacity:      map[string]int{"anna": 1, "bas": 2, "chloe": 2},
		Names:         map[string]string{"anna": "Anna <b>de Vries</b>", "bas": "bas"},
		Calendar:      func(string) *router.Calendar { return office },
		Rates:         []router.RateReport{{Period: "2026-W48", Volume: 200, Complaints: 5, Percent: 2.5, Alert: true}},
		RateThreshold: 0.025,
	})
}
