package router

import "time"

// Expectation is what a customer who writes now by a channel can expect to
// hear about an answer: the first-response target, and whether the team is at
// work or when it is back. The chat widget's greeting says it.
type Expectation struct {
	// FirstResponse is the first-response target of a new complaint by the
	// channel (zero: none configured).
	FirstResponse Span
	// Working reports whether it is working time now in the default
	// calendar (always, without calendars).
	Working bool
	// Back is the next start of working time when not Working.
	Back time.Time
}

// Expect tells what a customer writing now by ch can expect. Owners' own
// calendars are not known before one is assigned: the default calendar
// speaks for the team.
func (r *Router) Expect(ch Channel) Expectation {
	now := r.clock()
	cal := r.policy().DefaultCalendar
	e := Expectation{Working: cal.Working(now)}
	if t, ok := r.policy().target(Complaint{Channel: ch, Status: StatusOpen}); ok {
		e.FirstResponse = t.FirstResponse
	}
	if !e.Working {
		e.Back = cal.NextWorking(now)
	}
	return e
}

// NextWorking returns t when it is working time, else the next start of
// work.
func (c *Calendar) NextWorking(t time.Time) time.Time {
	if c == nil {
		return t
	}
	x := t.In(c.Location)
	for range maxCalendarDays {
		if c.workday(x) {
			start, end := c.hours(x)
			if x.Before(start) {
				return start.In(t.Location())
			}
			if x.Before(end) {
				return t
			}
		}
		x = nextMidnight(x, c.Location)
	}
	return t
}
