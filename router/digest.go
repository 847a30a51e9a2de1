package router

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DigestSchedule says when the weekly digest of the week before goes out:
// on Day at At (time of day) in the default calendar's zone, or at the next
// start of work when that moment is not working time (a holiday Monday).
type DigestSchedule struct {
	Day time.Weekday
	At  time.Duration
	// Link returns the address of the HTML report of [since, until) for
	// the digest to point to (empty: no link).
	Link func(since, until time.Time) string
}

// DigestRecipient is the Recipient of a digest notification: the leads'
// channel, which the notifier knows.
const DigestRecipient = "leads"

// DigestTopCauses is how many causes the digest names.
const DigestTopCauses = 3

// Digest is the weekly summary of one ISO week for the leads.
type Digest struct {
	Week  string    `json:"week"`
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Complaints opened in the week, and the week's volume (0: none
	// recorded) and complaint rate against the threshold (0: no watch).
	Complaints       int     `json:"complaints"`
	Volume           int     `json:"volume,omitempty"`
	RatePercent      float64 `json:"rate_percent,omitempty"`
	ThresholdPercent float64 `json:"threshold_percent,omitempty"`
	Alert            bool    `json:"alert,omitempty"`
	// FirstResponse and Resolution are in working time when BusinessTime.
	FirstResponse Durations    `json:"first_response"`
	Resolution    Durations    `json:"resolution"`
	BusinessTime  bool         `json:"business_time"`
	Promises      PromiseStats `json:"promises"`
	// Breaches counts the deadlines missed in the week.
	Breaches  int     `json:"breaches"`
	TopCauses []Count `json:"top_causes,omitempty"`
	// OverCapacity are the owners carrying more open complaints than their
	// capacity now.
	OverCapacity []OwnerReport `json:"over_capacity,omitempty"`
	ReportURL    string        `json:"report_url,omitempty"`
}

// DigestOf sums up a report of one week for the digest.
func DigestOf(rep Report) Digest {
	d := Digest{Week: ISOWeek(rep.Since), Since: rep.Since, Until: rep.Until, Complaints: rep.Complaints,
		FirstResponse: rep.FirstResponse, Resolution: rep.Resolution, BusinessTime: rep.BusinessTime,
		Promises: rep.Promises, ThresholdPercent: rep.RateThresholdPercent}
	for _, w := range rep.Weeks {
		if w.Week == d.Week {
			d.Volume, d.RatePercent, d.Alert = w.Volume, w.RatePercent, w.Alert
		}
	}
	for _, b := range rep.Breaches {
		d.Breaches += b.Count
	}
	d.TopCauses = rep.TopCauses[:min(len(rep.TopCauses), DigestTopCauses)]
	for _, o := range rep.Owners {
		if o.OverCapacity {
			d.OverCapacity = append(d.OverCapacity, o)
		}
	}
	return d
}

// digestDue returns the week the digest due by now covers ([since, until))
// and when it was due; ok is false before this week's digest is due.
func (r *Router) digestDue(now time.Time) (since, until time.Time, ok bool) {
	loc := r.reportLocation()
	n := now.In(loc)
	monday := time.Date(n.Year(), n.Month(), n.Day()-(int(n.Weekday())+6)%7, 0, 0, 0, 0, loc)
	dueIn := func(weekStart time.Time) time.Time {
		day := weekStart.AddDate(0, 0, (int(r.digest.Day)+6)%7)
		at := r.digest.At
		due := time.Date(day.Year(), day.Month(), day.Day(), int(at/time.Hour), int(at%time.Hour/time.Minute), 0, 0, loc)
		return r.policy().DefaultCalendar.NextWorking(due)
	}
	if due := dueIn(monday); !now.Before(due) {
		return monday.AddDate(0, 0, -7), monday, true
	}
	// Last week's digest, moved into this week by the calendar (a Friday
	// evening, a weekend day or a holiday moves it to the next start of
	// work), is due now; one that was due last week is not sent late.
	lastMonday := monday.AddDate(0, 0, -7)
	if due := dueIn(lastMonday); !due.Before(monday) && !now.Before(due) {
		return lastMonday.AddDate(0, 0, -7), lastMonday, true
	}
	return time.Time{}, time.Time{}, false
}

// digestDone remembers, per process, the last week whose digest was queued
// (by this replica or another), so the report is not rebuilt every poll.
type digestDone struct {
	mu   sync.Mutex
	week string
}

// CheckDigest queues the weekly digest of last week once it is due: one
// notification for the leads, exactly once across replicas (guarded like
// the complaint-rate alert). It reports whether this call queued it. Only
// the latest week's digest is sent: a daemon down all week does not send
// stale ones later.
func (r *Router) CheckDigest(ctx context.Context) (bool, error) {
	if r.digest == nil || r.acct == nil {
		return false, nil
	}
	now := r.clock()
	since, until, ok := r.digestDue(now)
	if !ok {
		return false, nil
	}
	week := ISOWeek(since)
	r.digestDone.mu.Lock()
	defer r.digestDone.mu.Unlock()
	if r.digestDone.week == week {
		return false, nil
	}
	rep, err := r.Report(ctx, since, until)
	if err != nil {
		return false, fmt.Errorf("building the digest of %s: %w", week, err)
	}
	d := DigestOf(rep)
	if r.digest.Link != nil {
		d.ReportURL = r.digest.Link(since, until)
	}
	n := Notification{ID: "digest:" + week, Kind: NotifyDigest, Recipient: DigestRecipient, At: now, Digest: &d}
	queued, err := r.acct.NotifyOnce(ctx, "digest:"+week, []Notification{n})
	if err != nil {
		return false, fmt.Errorf("queueing the digest of %s: %w", week, err)
	}
	r.digestDone.week = week
	if queued {
		r.log.Info("weekly digest queued", "week", week, "complaints", d.Complaints)
	}
	return queued, nil
}
