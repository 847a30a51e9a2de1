package router_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// What must hold: the digest of last week is queued once it is due on the
// configured day and time of the business calendar (a holiday Monday moves
// it to the next start of work), exactly once across two routers sharing
// the store, with last week's figures and the signed link.
func TestWeeklyDigestIsQueuedOnceWhenDueAcrossReplicas(t *testing.T) {
	d := newDesk(t)
	ctx := context.Background()
	// A complaint in week 48 (Mon 23 Nov 09:00), closed Tuesday 11:00 as
	// "delivery": 10h of working time.
	out := d.route(d.msg("mila@example.com", "My parcel never came"))
	d.clock.Advance(26 * time.Hour)
	if _, err := d.router.CloseWith(ctx, out.ComplaintID, out.Owner, router.Closing{Resolution: "Found", Category: "delivery"}); err != nil {
		t.Fatal(err)
	}
	office := &router.Calendar{Name: "office", Location: time.UTC, Start: 9 * time.Hour, End: 17 * time.Hour,
		Days:     [7]bool{time.Monday: true, time.Tuesday: true, time.Wednesday: true, time.Thursday: true, time.Friday: true},
		Holidays: map[string]bool{"2026-11-30": true}}
	policy := &router.Policy{DefaultCalendar: office}
	sched := &router.DigestSchedule{Day: time.Monday, At: 8 * time.Hour,
		Link: func(since, until time.Time) string {
			return "https://support.example/r?since=" + since.Format(time.DateOnly)
		}}
	replica := func() *router.Router {
		r, err := router.New(router.Config{Store: d.store, Directory: d.router.Directory(), Rules: &router.Rules{DefaultTeam: "support"},
			Policy: policy, Digest: sched, Clock: d.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := replica(), replica()
	digests := func() []router.Digest {
		var out []router.Digest
		for _, o := range d.outbox() {
			if n := o.Notification; n != nil && n.Kind == router.NotifyDigest {
				if n.Recipient != router.DigestRecipient || n.Digest == nil {
					t.Fatalf("digest notification %+v", n)
				}
				out = append(out, *n.Digest)
			}
		}
		return out
	}
	// Monday 30 Nov is a holiday: 08:00 is not due yet, nor is Monday
	// noon; the digest waits for Tuesday 09:00, the next start of work.
	for _, at := range []string{"2026-11-30T08:00:00Z", "2026-11-30T12:00:00Z", "2026-12-01T08:59:00Z"} {
		now, _ := time.Parse(time.RFC3339, at)
		d.clock.Advance(now.Sub(d.clock.Now()))
		if sent, err := a.CheckDigest(ctx); sent || err != nil {
			t.Fatalf("at %s: digest sent %v, %v; want not yet", at, sent, err)
		}
	}
	d.clock.Advance(time.Minute)
	sentA, errA := a.CheckDigest(ctx)
	sentB, errB := b.CheckDigest(ctx)
	if err := errors.Join(errA, errB); err != nil || sentA == sentB {
		t.Fatalf("replica a sent %v, b sent %v (%v): want exactly one", sentA, sentB, err)
	}
	d.clock.Advance(time.Hour)
	for _, r := range []*router.Router{a, b, replica()} {
		if sent, err := r.CheckDigest(ctx); sent || err != nil {
			t.Fatalf("later check sent again: %v %v", sent, err)
		}
	}
	got := digests()
	if len(got) != 1 {
		t.Fatalf("%d digests queued, want 1", len(got))
	}
	dg := got[0]
	if dg.Week != "2026-W48" || dg.Complaints != 1 || dg.Resolution.MedianSeconds != 10*3600 || !dg.BusinessTime ||
		len(dg.TopCauses) != 1 || dg.TopCauses[0].Name != "delivery" || !strings.HasSuffix(dg.ReportURL, "since=2026-11-23") {
		t.Errorf("digest %+v", dg)
	}
}

// What must hold: a digest time the calendar moves into the next week (a
// Friday evening, a weekend day, a holiday Friday) is sent at the next
// start of work, once a week, every week; it was never sent, as that week
// counted its own due time only.
func TestDigestMovedIntoTheNextWeekIsStillSent(t *testing.T) {
	office := &router.Calendar{Name: "office", Location: time.UTC, Start: 9 * time.Hour, End: 17 * time.Hour,
		Days:     [7]bool{time.Monday: true, time.Tuesday: true, time.Wednesday: true, time.Thursday: true, time.Friday: true},
		Holidays: map[string]bool{"2026-12-25": true, "2027-01-01": true}}
	for _, tc := range []struct {
		name string
		day  time.Weekday
		at   time.Duration
		want []string // "week sent-at"
	}{
		{"friday 18:00, after hours", time.Friday, 18 * time.Hour,
			[]string{"2026-W49 2026-12-14T09:00", "2026-W50 2026-12-21T09:00", "2026-W51 2026-12-28T09:00", "2026-W52 2027-01-04T09:00"}},
		{"saturday 10:00", time.Saturday, 10 * time.Hour,
			[]string{"2026-W49 2026-12-14T09:00", "2026-W50 2026-12-21T09:00", "2026-W51 2026-12-28T09:00", "2026-W52 2027-01-04T09:00"}},
		{"friday 16:00, two holiday Fridays", time.Friday, 16 * time.Hour,
			[]string{"2026-W50 2026-12-18T16:00", "2026-W51 2026-12-28T09:00", "2026-W52 2027-01-04T09:00", "2026-W53 2027-01-08T16:00"}}, // 2026 has 53 ISO weeks
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDesk(t)
			ctx := context.Background()
			start, _ := time.Parse(time.RFC3339, "2026-12-14T00:00:00Z")
			d.clock.Advance(start.Sub(d.clock.Now()))
			r, err := router.New(router.Config{Store: d.store, Directory: d.router.Directory(), Rules: &router.Rules{DefaultTeam: "support"},
				Policy: &router.Policy{DefaultCalendar: office}, Digest: &router.DigestSchedule{Day: tc.day, At: tc.at}, Clock: d.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for d.clock.Now().Before(start.Add(26 * 24 * time.Hour)) {
				sent, err := r.CheckDigest(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if sent {
					o := d.outbox()
					got = append(got, o[len(o)-1].Notification.Digest.Week+" "+d.clock.Now().UTC().Format("2006-01-02T15:04"))
				}
				d.clock.Advance(time.Hour)
			}
			if strings.Join(got, ", ") != strings.Join(tc.want, ", ") {
				t.Errorf("digests sent:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// What must hold: with configured categories a close must name one of them
// (any case, stored as configured), and the error names the allowed values.
func TestCloseRequiresAConfiguredCategory(t *testing.T) {
	d := newDesk(t)
	r, err := router.New(router.Config{Store: d.store, Directory: d.router.Directory(), Rules: &router.Rules{DefaultTeam: "support"},
		Categories: []string{"delivery", " billing ", "delivery"}, Clock: d.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out := d.route(d.msg("mila@example.com", "Where is my parcel"))
	for _, bad := range []string{"", "late-delivery", "<script>alert(1)</script>"} {
		_, err := r.CloseWith(ctx, out.ComplaintID, out.Owner, router.Closing{Resolution: "Found", Category: bad})
		var v *router.ValidationError
		if !errors.As(err, &v) || v.Field != "category" || !strings.Contains(err.Error(), "delivery, billing") {
			t.Errorf("category %q: %v, want a category error naming delivery, billing", bad, err)
		}
	}
	if c, _ := d.complaint(out.ComplaintID); c.Status != router.StatusOpen {
		t.Fatal("a refused close changed the complaint")
	}
	c, err := r.CloseWith(ctx, out.ComplaintID, out.Owner, router.Closing{Resolution: "Found", Category: "BILLING", Prevention: "Check the invoice run"})
	if err != nil || c.Category != "billing" || c.Prevention != "Check the invoice run" {
		t.Fatalf("close: %+v %v", c, err)
	}
	if got := r.Categories(); strings.Join(got, "|") != "delivery|billing" {
		t.Errorf("categories %q", got)
	}

	// An erasure on request closes quietly, without staff judging the
	// cause: no category is accepted there, a wrong one still is not.
	other := d.route(d.msg("jan@example.com", "My lamp flickers"))
	if _, err := r.CloseWith(ctx, other.ComplaintID, other.Owner, router.Closing{Resolution: "erased on request", Category: "late-delivery", Quiet: true}); err == nil {
		t.Error("a quiet close accepted a category that is not configured")
	}
	if c, err := r.CloseWith(ctx, other.ComplaintID, other.Owner, router.Closing{Resolution: "erased on request", Quiet: true}); err != nil || c.Category != "" {
		t.Errorf("quiet close without a category: %+v %v, want it closed with none", c, err)
	}
}
