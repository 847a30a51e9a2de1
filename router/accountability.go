package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// TimerKind says what a timer does when it is due.
type TimerKind string

// Timer kinds: a reminder before, and a breach at, each deadline, plus the
// nudge about a complaint long waiting on the customer.
const (
	TimerRespondReminder TimerKind = "respond_reminder"
	TimerRespondBreach   TimerKind = "respond_breach"
	TimerResolveReminder TimerKind = "resolve_reminder"
	TimerResolveBreach   TimerKind = "resolve_breach"
	TimerPromiseReminder TimerKind = "promise_reminder"
	TimerPromiseBreach   TimerKind = "promise_breach"
	TimerWaitingNudge    TimerKind = "waiting_nudge"
)

// Timer groups: the clock a timer belongs to.
const (
	clockRespond = "respond"
	clockResolve = "resolve"
	clockPromise = "promise"
	clockWaiting = "waiting"
)

// Breach kinds recorded in Complaint.Breaches.
const (
	BreachResponse   = "response"
	BreachResolution = "resolution"
	BreachPromise    = "promise"
)

// Timer is one pending reminder or breach of a complaint.
type Timer struct {
	Kind TimerKind `json:"kind"`
	Due  time.Time `json:"due"`
	// Ref and Via belong to TimerUnseen: the message (a SaidRef) and the
	// channel to send it again by.
	Ref string  `json:"ref,omitempty"`
	Via Channel `json:"via,omitempty"`
}

// newTimer keeps due times to the millisecond, the precision of the store's
// due index, so a timer read back from the index matches its complaint's.
func newTimer(kind TimerKind, due time.Time) Timer {
	return Timer{Kind: kind, Due: due.UTC().Truncate(time.Millisecond)}
}

func (t Timer) clock() string { c, _, _ := strings.Cut(string(t.Kind), "_"); return c }

// Target is a promise the organisation makes about complaints that match it:
// a first response (and an answer after each customer message) within
// FirstResponse, and resolution within Resolution, in working time of the
// owner's calendar. Empty condition lists match anything.
type Target struct {
	Name          string
	Priorities    []string
	Channels      []Channel
	Teams         []string
	FirstResponse Span
	Resolution    Span
}

func (t Target) matches(c Complaint) bool {
	return (len(t.Priorities) == 0 || slices.Contains(t.Priorities, c.Priority)) &&
		(len(t.Channels) == 0 || slices.Contains(t.Channels, c.Channel)) &&
		(len(t.Teams) == 0 || slices.Contains(t.Teams, c.Team))
}

// Policy is the accountability configuration: targets, calendars, reminders.
type Policy struct {
	// Targets are matched in order; the first match applies. No match: no
	// deadlines (promises are still watched).
	Targets []Target
	// DefaultCalendar applies to owners without their own; nil runs around
	// the clock.
	DefaultCalendar *Calendar
	OwnerCalendars  map[string]*Calendar
	// ReminderAt is the fraction of a deadline's time after which the owner
	// is reminded (0.75: with a quarter of the time left); 0 sends no reminders.
	ReminderAt float64
	// WaitingNudge: a complaint waiting on the customer this long (in working
	// days of the owner's calendar) reminds the owner to close it or follow
	// up, and again after each further period. Never an automatic close.
	WaitingNudge Span
	// Absences are the roster's planned absences (owners.yaml).
	Absences []Absence
	// RateThreshold is the complaint rate (complaints / volume of a period)
	// at which RateAlert (owner ids) are alerted; 0 disables the watch.
	RateThreshold float64
	RateAlert     []string
}

// CalendarOf returns the owner's working calendar (nil: around the clock).
func (p *Policy) CalendarOf(owner string) *Calendar {
	if p == nil {
		return nil
	}
	if c, ok := p.OwnerCalendars[owner]; ok {
		return c
	}
	return p.DefaultCalendar
}

func (p *Policy) target(c Complaint) (Target, bool) {
	if p == nil {
		return Target{}, false
	}
	for _, t := range p.Targets {
		if t.matches(c) {
			return t, true
		}
	}
	return Target{}, false
}

// AccountabilityStore is what deadlines, away/cover, reports and the rate
// watch need from storage beyond Store.
type AccountabilityStore interface {
	// DueTimers lists timers due at or before now, oldest first.
	DueTimers(ctx context.Context, now time.Time, limit int) ([]DueTimer, error)
	// DropTimer removes a timer that its complaint no longer has, provided
	// the complaint is still at version (so a timer set again meanwhile stays).
	DropTimer(ctx context.Context, t DueTimer, version int64) error
	// Absences lists every owner's recorded absences (in force, planned,
	// and the marks of returns).
	Absences(ctx context.Context) ([]Absence, error)
	// UpdateAbsences replaces one owner's recorded absences with what
	// update makes of them, atomically.
	UpdateAbsences(ctx context.Context, owner string, update func(current []Absence) []Absence) error
	// ComplaintsCreated lists complaints created in [since, until).
	ComplaintsCreated(ctx context.Context, since, until time.Time) ([]Complaint, error)
	// OpenFigures counts open, overdue (at now) and promised complaints per
	// owner from indexes, without loading the open complaints.
	OpenFigures(ctx context.Context, owners []string, now time.Time) (OpenFigures, error)
	CountCreated(ctx context.Context, since, until time.Time) (int, error)
	SetVolume(ctx context.Context, v Volume) error
	Volumes(ctx context.Context) ([]Volume, error)
	// NotifyOnce queues notifications at most once per key.
	NotifyOnce(ctx context.Context, key string, ns []Notification) (bool, error)
}

// DueTimer is a timer found due in the store's index.
type DueTimer struct {
	Member      string
	ComplaintID string
	Timer       Timer
}

// errNoAccountability refuses accountability operations on a store that
// cannot keep them.
var errNoAccountability = errors.New("this store keeps no timers, absences or volumes")

// --- deadlines ---------------------------------------------------------

// setClock replaces the timers of one clock by a reminder (at the policy's
// fraction of the working time from start to due) and a breach at due.
func (r *Router) setClock(c *Complaint, clock string, start, due time.Time, now time.Time) {
	c.dropClock(clock)
	if due.IsZero() {
		return
	}
	reminder, breach := TimerKind(clock+"_reminder"), TimerKind(clock+"_breach")
	if f := r.policy().ReminderAt; f > 0 && f < 1 {
		cal := r.policy().CalendarOf(c.Owner)
		at := cal.Add(start, time.Duration(float64(cal.Between(start, due))*f))
		if cal.Between(start, due) == 0 { // no working time in between (a promise for Saturday)
			at = start.Add(time.Duration(float64(due.Sub(start)) * f))
		}
		if at.After(now) && at.Before(due) {
			c.Timers = append(c.Timers, newTimer(reminder, at))
		}
	}
	c.Timers = append(c.Timers, newTimer(breach, due))
}

func (c *Complaint) dropClock(clock string) {
	c.Timers = slices.DeleteFunc(slices.Clone(c.Timers), func(t Timer) bool { return t.clock() == clock })
	if len(c.Timers) == 0 {
		c.Timers = nil
	}
}

// armNew sets a new (or reopened) complaint's deadlines from its target.
func (r *Router) armNew(c *Complaint, now time.Time) {
	t, ok := r.policy().target(*c)
	if !ok {
		return
	}
	cal := r.policy().CalendarOf(c.Owner)
	if !t.FirstResponse.IsZero() {
		c.RespondBy = t.FirstResponse.From(cal, now).UTC()
		r.setClock(c, clockRespond, now, c.RespondBy, now)
	}
	if !t.Resolution.IsZero() {
		c.ResolveBy = t.Resolution.From(cal, now).UTC()
		r.setClock(c, clockResolve, now, c.ResolveBy, now)
	}
}

// customerWrote runs the clocks when the customer writes on an open
// complaint: a clock paused while waiting on them resumes, and an answer is
// due again.
func (r *Router) customerWrote(c *Complaint, now time.Time) *Event {
	ev := r.resume(c, now, "the customer answered")
	if t, ok := r.policy().target(*c); ok && !t.FirstResponse.IsZero() && c.RespondBy.IsZero() {
		c.RespondBy = t.FirstResponse.From(r.policy().CalendarOf(c.Owner), now).UTC()
		r.setClock(c, clockRespond, now, c.RespondBy, now)
	}
	return ev
}

// resume restarts a resolution clock paused while waiting on the customer,
// pushed back by the working time the wait took.
func (r *Router) resume(c *Complaint, now time.Time, why string) *Event {
	if c.WaitingSince.IsZero() {
		return nil
	}
	paused := !c.ResolveBy.IsZero() || !r.policy().WaitingNudge.IsZero()
	cal := r.policy().CalendarOf(c.Owner)
	waited := cal.Between(c.WaitingSince, now)
	ev := &Event{Type: EventResumed, Actor: ActorRouter, Owner: c.Owner,
		Reason: fmt.Sprintf("%s after %s of working time; the resolution clock runs again", why, roundDuration(waited))}
	// Re-arm unless the deadline had already passed when the wait began (its
	// breach fired then). Not "never breached": a reopened complaint keeps
	// its old breaches but has a fresh deadline.
	if !c.ResolveBy.IsZero() && c.WaitingSince.Before(c.ResolveBy) {
		c.ResolveBy = cal.Add(c.ResolveBy, waited).UTC()
		r.setClock(c, clockResolve, now, c.ResolveBy, now)
		ev.Details = map[string]string{"resolve_by": c.ResolveBy.Format(time.RFC3339)}
	}
	c.WaitingSince = time.Time{}
	c.dropClock(clockWaiting)
	if !paused { // no clock was paused: nothing worth a timeline line
		return nil
	}
	return ev
}

// staffAnswered settles what an answer to the customer settles: the response
// is given, a pending promise is kept, and unless wait is false the complaint
// now waits on the customer (resolution clock paused, nudge armed).
func (r *Router) staffAnswered(c *Complaint, now time.Time, actor string, wait bool) []Event {
	var evs []Event
	c.RespondBy = time.Time{}
	c.dropClock(clockRespond)
	if ev := r.keepPromise(c, now, actor); ev != nil {
		evs = append(evs, *ev)
	}
	if wait && c.Status == StatusOpen && c.WaitingSince.IsZero() {
		c.WaitingSince = now
		c.dropClock(clockResolve)
		ev := Event{Type: EventWaiting, Actor: ActorRouter, Owner: c.Owner, Reason: "answered; waiting on the customer, the resolution clock is paused"}
		if !r.policy().WaitingNudge.IsZero() {
			c.Timers = append(c.Timers, newTimer(TimerWaitingNudge, r.policy().WaitingNudge.From(r.policy().CalendarOf(c.Owner), now)))
		}
		if !c.ResolveBy.IsZero() || !r.policy().WaitingNudge.IsZero() {
			evs = append(evs, ev)
		}
	}
	return evs
}

// keepPromise settles a pending promise as kept.
func (r *Router) keepPromise(c *Complaint, now time.Time, actor string) *Event {
	if c.PromisedBy.IsZero() {
		return nil
	}
	ev := &Event{Type: EventPromiseKept, Actor: actor, Owner: c.Owner,
		Details: map[string]string{"by": c.PromisedBy.Format(time.RFC3339)},
		Reason:  fmt.Sprintf("followed up %s before the promised time", roundDuration(c.PromisedBy.Sub(now)))}
	c.PromisesKept++
	c.PromisedBy, c.PromiseNote = time.Time{}, ""
	c.dropClock(clockPromise)
	return ev
}

// FireResult says what firing a timer did.
type FireResult struct {
	Fired bool
	// Stale: the complaint no longer has this timer (answered, closed,
	// rescheduled, or fired by another replica); Version is the complaint's
	// version when that was seen.
	Stale   bool
	Version int64
}

// FireTimer carries out a due timer: a reminder to the owner (and their
// cover), or at a breach the escalation to the team lead as well. It is
// recorded on the timeline and removes the timer in the same atomic commit,
// so with several replicas each timer fires exactly once. The owner never
// changes because of a breach.
func (r *Router) FireTimer(ctx context.Context, complaintID string, t Timer) (FireResult, error) {
	if t.Kind == TimerUnseen {
		return r.fireUnseen(ctx, complaintID, t)
	}
	var res FireResult
	_, err := r.update(ctx, complaintID, func(c Complaint, now time.Time) (Change, error) {
		res = FireResult{}
		// The store's index keeps due times to the millisecond.
		i := slices.IndexFunc(c.Timers, func(x Timer) bool { return x.Kind == t.Kind && x.Due.UnixMilli() == t.Due.UnixMilli() })
		if i < 0 {
			res = FireResult{Stale: true, Version: c.Version}
			return Change{}, errUnchanged
		}
		after := c
		after.Timers = slices.Delete(slices.Clone(c.Timers), i, i+1)
		if len(after.Timers) == 0 {
			after.Timers = nil
		}
		after.UpdatedAt = now
		if c.Status != StatusOpen { // defensive: a closed complaint has no timers
			ch := newChange(&c, after)
			return ch, nil
		}
		entries, notes := r.fire(&after, t, now)
		ch := newChange(&c, after)
		for i := range entries {
			ch.Entries = append(ch.Entries, Entry{At: now, Event: &entries[i]})
		}
		for _, n := range notes {
			ch.Notifications = append(ch.Notifications, notification(n.kind, ch.After, n.to, now, &entries[0], nil))
		}
		res.Fired = true
		return ch, nil
	})
	if errors.Is(err, ErrNotFound) {
		return FireResult{Stale: true, Version: -1}, nil
	}
	return res, err
}

type recipient struct {
	kind NotificationKind
	to   string
}

func (r *Router) fire(c *Complaint, t Timer, now time.Time) ([]Event, []recipient) {
	details := map[string]string{"timer": string(t.Kind)}
	remind := func(what string, due time.Time) ([]Event, []recipient) {
		details["due"] = due.Format(time.RFC3339)
		left := r.policy().CalendarOf(c.Owner).Between(now, due)
		ev := Event{Type: EventReminder, Actor: ActorRouter, Owner: c.Owner, Details: details,
			Reason: fmt.Sprintf("%s due %s (%s of working time left)", what, due.Format(time.RFC3339), roundDuration(left))}
		return []Event{ev}, []recipient{{NotifyReminder, c.Owner}}
	}
	breach := func(kind, what string, due time.Time) ([]Event, []recipient) {
		details["due"] = due.Format(time.RFC3339)
		c.Breaches = append(c.Breaches, kind)
		ev := Event{Type: EventBreached, Actor: ActorRouter, Owner: c.Owner, Details: details,
			Reason: fmt.Sprintf("%s was due %s; %s stays the owner, the team lead is alerted", what, due.Format(time.RFC3339), c.Owner)}
		return []Event{ev}, r.escalate(*c)
	}
	switch t.Kind {
	case TimerRespondReminder:
		return remind("an answer to the customer is", c.RespondBy)
	case TimerResolveReminder:
		return remind("resolution is", c.ResolveBy)
	case TimerPromiseReminder:
		return remind(fmt.Sprintf("the promised follow-up (%s) is", clipText(c.PromiseNote, 80)), c.PromisedBy)
	case TimerRespondBreach:
		return breach(BreachResponse, "an answer to the customer", c.RespondBy)
	case TimerResolveBreach:
		return breach(BreachResolution, "resolution", c.ResolveBy)
	case TimerPromiseBreach:
		due := c.PromisedBy
		evs, to := breach(BreachPromise, fmt.Sprintf("the promised follow-up (%s)", clipText(c.PromiseNote, 80)), due)
		evs[0].Type = EventPromiseBroken
		c.PromisesBroken++
		c.PromisedBy, c.PromiseNote = time.Time{}, ""
		return evs, to
	case TimerWaitingNudge:
		since := c.WaitingSince
		ev := Event{Type: EventReminder, Actor: ActorRouter, Owner: c.Owner, Details: details,
			Reason: fmt.Sprintf("waiting on the customer since %s (%s): close it if it is resolved, or follow up; forgetmenot never closes it by itself",
				since.Format(time.DateOnly), roundDuration(now.Sub(since)))}
		if !r.policy().WaitingNudge.IsZero() {
			c.Timers = append(c.Timers, newTimer(TimerWaitingNudge, r.policy().WaitingNudge.From(r.policy().CalendarOf(c.Owner), now)))
		}
		return []Event{ev}, []recipient{{NotifyReminder, c.Owner}}
	}
	ev := Event{Type: EventReminder, Actor: ActorRouter, Owner: c.Owner, Details: details, Reason: "unknown timer " + string(t.Kind)}
	return []Event{ev}, []recipient{{NotifyReminder, c.Owner}}
}

// escalate: the owner is told of the breach, and the team lead is alerted.
func (r *Router) escalate(c Complaint) []recipient {
	out := []recipient{{NotifyReminder, c.Owner}}
	if t, ok := r.dir.Team(c.Team); ok && t.Lead != "" {
		if t.Lead == c.Owner {
			out[0].kind = NotifyEscalation
		} else {
			out = append(out, recipient{NotifyEscalation, t.Lead})
		}
	} else {
		r.log.Warn("deadline breached but the team has no lead to alert", "complaint", c.ID, "team", c.Team)
	}
	return out
}

func clipText(s string, n int) string {
	if s == "" {
		return "no note"
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// FireDue fires every timer due now, up to limit, and drops timers their
// complaint no longer has. It returns how many fired. Several replicas may
// run it at once: each timer fires once.
func (r *Router) FireDue(ctx context.Context, limit int) (int, error) {
	if r.acct == nil {
		return 0, nil
	}
	due, err := r.acct.DueTimers(ctx, r.clock(), limit)
	if err != nil {
		return 0, fmt.Errorf("reading due timers: %w", err)
	}
	fired := 0
	for _, d := range due {
		res, err := r.FireTimer(ctx, d.ComplaintID, d.Timer)
		if err != nil {
			return fired, complaintErr(err, d.ComplaintID, "firing "+string(d.Timer.Kind)+" of "+d.ComplaintID, "firing "+string(d.Timer.Kind))
		}
		if res.Fired {
			fired++
			r.log.Info("timer fired", "complaint", d.ComplaintID, "timer", d.Timer.Kind, "due", d.Timer.Due)
		}
		if res.Stale {
			if err := r.acct.DropTimer(ctx, d, res.Version); err != nil {
				return fired, fmt.Errorf("dropping stale timer %s: %w", d.Member, err)
			}
		}
	}
	return fired, nil
}

// --- away and cover ------------------------------------------------------

// Absence is an owner's time away with the colleague who covers.
type Absence struct {
	Owner string    `json:"owner"`
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	Cover string    `json:"cover,omitempty"`
	Note  string    `json:"note,omitempty"`
	// SetBy and SetAt say who recorded it through the API, and when; an
	// absence recorded while a roster absence is in force replaces that
	// from when it begins (and "back" is an absence that ended when it was
	// set).
	SetBy string    `json:"set_by,omitempty"`
	SetAt time.Time `json:"set_at,omitzero"`
}

// At reports whether the absence is in force at t.
func (a Absence) At(t time.Time) bool { return !t.Before(a.From) && t.Before(a.Until) }

// awaySnapshot is the latest view of who is away, for MayAct (which has no
// context to read the store with).
type awaySnapshot struct {
	at  time.Time
	off map[string]Absence
}

// away returns the absences in force now, by owner.
func (r *Router) away(ctx context.Context, now time.Time) (map[string]Absence, error) {
	stored, err := r.recordedAbsences(ctx)
	if err != nil {
		return nil, err
	}
	off := effectiveAbsences(r.policyAbsences(), stored, now)
	r.snapshot.Store(&awaySnapshot{at: now, off: off})
	return off, nil
}

// recordedAbsences are the absences recorded through the API (as routing
// read them, when it did).
func (r *Router) recordedAbsences(ctx context.Context) ([]Absence, error) {
	if pre := prefetched(ctx); pre != nil {
		return pre.Absences, nil
	}
	if r.acct == nil {
		return nil, nil
	}
	stored, err := r.acct.Absences(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading absences: %w", err)
	}
	return stored, nil
}

func (r *Router) policyAbsences() []Absence { return r.policy().Absences }

// effectiveAbsences are the absences in force at now, by owner: one
// recorded through the API (the latest set, when several are), else one
// planned in the roster that none recorded since has replaced.
func effectiveAbsences(roster, stored []Absence, now time.Time) map[string]Absence {
	byOwner := map[string][]Absence{}
	for _, s := range stored {
		byOwner[s.Owner] = append(byOwner[s.Owner], s)
	}
	off := map[string]Absence{}
	for _, a := range roster {
		if a.At(now) && !replacedBy(a, byOwner[a.Owner], now) {
			off[a.Owner] = a
		}
	}
	for owner, list := range byOwner {
		var in *Absence
		for i, s := range list {
			if s.At(now) && (in == nil || s.SetAt.After(in.SetAt)) {
				in = &list[i]
			}
		}
		if in != nil {
			off[owner] = *in
		}
	}
	return off
}

// replacedBy tells whether a roster absence was replaced, as of now, by
// one of the owner's recorded absences: one set while it was in force that
// has begun by now and begins before it ends (a return, a new absence from
// now, or a later one that cuts it short, from when that begins). One
// planned for after it leaves it as it is.
func replacedBy(roster Absence, recorded []Absence, now time.Time) bool {
	for _, s := range recorded {
		if !s.SetAt.Before(roster.From) && s.SetAt.Before(roster.Until) && !s.From.After(now) && s.From.Before(roster.Until) {
			return true
		}
	}
	return false
}

// isReturn tells a recorded return ("back": an absence that ends when it
// begins) from an absence.
func (a Absence) isReturn() bool { return !a.Until.After(a.From) }

// keptAbsences is what stays of an owner's recorded absences when one is
// recorded at now: those it overlaps are replaced (nil: a return, which
// replaces those in force); the ended go, and so do the marks of returns
// that no roster absence still needs (see replacedBy).
func keptAbsences(current []Absence, added *Absence, roster []Absence, now time.Time) []Absence {
	var out []Absence
	for _, s := range current {
		switch {
		case s.isReturn():
			needed := slices.ContainsFunc(roster, func(r Absence) bool {
				return r.Owner == s.Owner && r.Until.After(now) && !s.SetAt.Before(r.From) && s.SetAt.Before(r.Until)
			})
			if !needed {
				continue
			}
		case !s.Until.After(now):
			continue // over
		case added == nil && s.At(now):
			continue // the return ends it
		case added != nil && s.From.Before(added.Until) && added.From.Before(s.Until):
			continue // replaced by the new one
		}
		out = append(out, s)
	}
	return out
}

// planned lists the absences of owner that begin after now, soonest first:
// recorded, and from the roster unless replaced.
func plannedAbsences(owner string, roster, stored []Absence, now time.Time) []Absence {
	var mine []Absence
	for _, s := range stored {
		if s.Owner == owner && !s.isReturn() {
			mine = append(mine, s)
		}
	}
	var out []Absence
	for _, s := range mine {
		if s.From.After(now) {
			out = append(out, s)
		}
	}
	for _, r := range roster {
		if r.Owner != owner || !r.From.After(now) {
			continue
		}
		// A recorded absence over the same days takes its place.
		if !slices.ContainsFunc(mine, func(s Absence) bool { return s.From.Before(r.Until) && r.From.Before(s.Until) }) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Absence) int { return a.From.Compare(b.From) })
	return out
}

// ParseWhenIn reads a moment as the API, the CLI and Slack take it: an RFC
// 3339 time, or a date (2026-12-21, meaning its start in loc: for an
// absence, the owner's calendar zone, as in the roster; for a report, the
// default calendar's).
func ParseWhenIn(v string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.ParseInLocation(time.DateOnly, v, loc)
}

// SetAway records that an owner is away until a moment, with a cover. While
// away they get no new complaints, keep their open ones, and the cover gets
// their reminders and notifications and may act on their complaints.
func (r *Router) SetAway(ctx context.Context, a Absence, actor string) (Absence, error) {
	if r.acct == nil {
		return Absence{}, errNoAccountability
	}
	now := r.clock()
	a.Note = strings.TrimSpace(a.Note)
	if a.From.IsZero() {
		a.From = now
	}
	o, ok := r.dir.Owner(a.Owner)
	switch {
	case !ok:
		return Absence{}, fmt.Errorf("unknown owner %q: %w", a.Owner, ErrNotFound) // the path names it: 404
	case a.Until.IsZero():
		return Absence{}, invalid("until", "is required: say when %s is back", a.Owner)
	case !a.Until.After(a.From) || !a.Until.After(now):
		return Absence{}, invalid("until", "%s is not after %s", a.Until.Format(time.RFC3339), later(a.From, now).Format(time.RFC3339))
	case len(a.Note) > maxReasonLen:
		return Absence{}, invalid("note", "is longer than %d bytes", maxReasonLen)
	}
	if a.Cover != "" {
		cv, ok := r.dir.Owner(a.Cover)
		switch {
		case !ok:
			return Absence{}, invalid("cover", "unknown owner %q", a.Cover)
		case a.Cover == a.Owner:
			return Absence{}, invalid("cover", "%s cannot cover for themselves", a.Owner)
		case !cv.Active:
			return Absence{}, invalid("cover", "%s is not active", a.Cover)
		}
		// A cover who is away too would leave the complaints with no one
		// at work to hear of them.
		off, err := r.away(ctx, later(a.From, now))
		if err != nil {
			return Absence{}, err
		}
		if ca, away := off[a.Cover]; away {
			return Absence{}, invalid("cover", "%s is away too (until %s): choose a colleague who is at work", a.Cover, ca.Until.UTC().Format(time.RFC3339))
		}
	}
	_ = o
	a.SetBy, a.SetAt = actorOrDefault(actor), now
	a.From, a.Until = a.From.UTC(), a.Until.UTC()
	roster := r.policyAbsences()
	err := r.acct.UpdateAbsences(ctx, a.Owner, func(current []Absence) []Absence {
		return append(keptAbsences(current, &a, roster, now), a)
	})
	if err != nil {
		return Absence{}, fmt.Errorf("recording the absence of %s: %w", a.Owner, err)
	}
	r.log.Info("owner away", "owner", a.Owner, "until", a.Until, "cover", a.Cover, "by", a.SetBy)
	return a, nil
}

// Back records that an owner is back now (ending an absence early, also a
// roster one; absences planned for later stay). Nothing is handed back:
// their complaints stayed theirs.
func (r *Router) Back(ctx context.Context, owner, actor string) error {
	if r.acct == nil {
		return errNoAccountability
	}
	if _, ok := r.dir.Owner(owner); !ok {
		return fmt.Errorf("unknown owner %q: %w", owner, ErrNotFound)
	}
	now := r.clock()
	back := Absence{Owner: owner, From: now.UTC(), Until: now.UTC(), SetBy: actorOrDefault(actor), SetAt: now, Note: "back"}
	roster := r.policyAbsences()
	err := r.acct.UpdateAbsences(ctx, owner, func(current []Absence) []Absence {
		return append(keptAbsences(current, nil, roster, now), back)
	})
	if err != nil {
		return fmt.Errorf("recording that %s is back: %w", owner, err)
	}
	return nil
}

// Away lists the absences in force now, by owner.
func (r *Router) Away(ctx context.Context) (map[string]Absence, error) {
	return r.away(ctx, r.clock())
}

// coverCopies adds, for every notification to an owner who is away, a copy
// for their cover, so reminders and news reach someone who is at work.
func (r *Router) coverCopies(ctx context.Context, ch *Change) error {
	if len(ch.Notifications) == 0 || (r.acct == nil && len(r.policyAbsences()) == 0) {
		return nil
	}
	off, err := r.away(ctx, r.clock())
	if err != nil {
		return err
	}
	if len(off) == 0 {
		return nil
	}
	has := map[string]bool{}
	for _, n := range ch.Notifications {
		has[string(n.Kind)+"|"+n.Recipient] = true
	}
	now := r.clock()
	for _, n := range ch.Notifications {
		cover := actingCover(off, n.Recipient, now, r.activeOwner)
		if cover == "" || cover == n.Recipient || has[string(n.Kind)+"|"+cover] {
			continue
		}
		cp := n
		cp.ID, cp.Recipient = n.ID+":cover:"+cover, cover
		ch.Notifications = append(ch.Notifications, cp)
		has[string(n.Kind)+"|"+cover] = true
	}
	return nil
}

// maxCoverHops bounds how far a cover who is away is followed to their own
// cover.
const maxCoverHops = 5

// actingCover is who covers for owner at now, by off (the absences read
// last): the owner's cover, or, when that colleague is away too (a cover is
// only checked when the absence is set) or no longer active on the roster,
// the first one along their covers who is at work. When nobody along the
// way is, it is the owner's own cover, who finds it on return. "" when owner
// is not away or names no cover.
func actingCover(off map[string]Absence, owner string, now time.Time, active func(string) bool) string {
	cover, _ := coverAtWork(off, owner, now, active)
	return cover
}

// coverAtWork is actingCover, and whether that colleague is at work: false
// when nobody along the covers is (all away, or no longer active, or the
// covers run in a circle), and the owner's own cover gets the copies
// meanwhile.
func coverAtWork(off map[string]Absence, owner string, now time.Time, active func(string) bool) (string, bool) {
	a, ok := off[owner]
	if !ok || a.Cover == "" || !a.At(now) {
		return "", false
	}
	seen := map[string]bool{owner: true}
	for cover, hops := a.Cover, 0; hops < maxCoverHops && !seen[cover]; hops++ {
		next, away := off[cover]
		away = away && next.At(now)
		if !away && active(cover) {
			return cover, true
		}
		seen[cover] = true
		if !away || next.Cover == "" {
			break // an inactive colleague, or one away without a cover
		}
		cover = next.Cover
	}
	return a.Cover, false
}

// activeOwner tells whether id is an active owner on the roster.
func (r *Router) activeOwner(id string) bool {
	o, ok := r.dir.Owner(id)
	return ok && o.Active
}

// commit is the one place changes go to the store: notifications gain their
// cover copies first.
func (r *Router) commit(ctx context.Context, ch Change) error {
	if err := r.coverCopies(ctx, &ch); err != nil {
		return err
	}
	return r.store.Commit(ctx, ch)
}
