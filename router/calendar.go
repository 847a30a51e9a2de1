package router

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Calendar is a working week in a time zone: the days and hours in which
// deadlines run, and the holidays on which they do not. A nil *Calendar runs
// around the clock.
type Calendar struct {
	Name     string
	Location *time.Location
	// Days are the working weekdays.
	Days [7]bool
	// Start and End are the working hours, as offsets from midnight.
	Start, End time.Duration
	// Holidays are dates ("2006-01-02", in Location) without work.
	Holidays map[string]bool
}

// maxCalendarDays bounds the walk through a calendar; a year without one
// working day is a configuration error that validation already refuses.
const maxCalendarDays = 3 * 366

// Validate checks that the calendar has working time at all.
func (c *Calendar) Validate() error {
	if c == nil {
		return nil
	}
	if c.Location == nil {
		return errors.New("calendar has no time zone")
	}
	if c.Start < 0 || c.End > 24*time.Hour || c.End <= c.Start {
		return errors.New("working hours must start before they end, within one day")
	}
	for _, d := range c.Days {
		if d {
			return nil
		}
	}
	return errors.New("calendar has no working days")
}

// workday reports whether the date of t (in the calendar's zone) is worked.
func (c *Calendar) workday(t time.Time) bool {
	return c.Days[t.Weekday()] && !c.Holidays[t.Format(time.DateOnly)]
}

// hours returns the working hours of the day of t, in the calendar's zone.
func (c *Calendar) hours(t time.Time) (start, end time.Time) {
	y, m, d := t.Date()
	at := func(off time.Duration) time.Time {
		return time.Date(y, m, d, int(off/time.Hour), int(off%time.Hour/time.Minute), int(off%time.Minute/time.Second), 0, c.Location)
	}
	return at(c.Start), at(c.End)
}

func nextMidnight(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// Add returns the moment d of working time after from. A zero d returns from
// itself, even outside working hours.
func (c *Calendar) Add(from time.Time, d time.Duration) time.Time {
	if c == nil || d <= 0 {
		return from.Add(max(d, 0))
	}
	t := from.In(c.Location)
	for range maxCalendarDays {
		if c.workday(t) {
			start, end := c.hours(t)
			if t.Before(start) {
				t = start
			}
			if t.Before(end) {
				if left := end.Sub(t); d <= left {
					return t.Add(d).In(from.Location())
				} else {
					d -= left
				}
			}
		}
		t = nextMidnight(t, c.Location)
	}
	return from.Add(d) // unreachable for a validated calendar
}

// AddDays returns the moment n working days after from: the same working
// time of day on the n-th following working day (from outside working hours
// counts from the next start of work).
func (c *Calendar) AddDays(from time.Time, n int) time.Time {
	if c == nil || n <= 0 {
		return from.Add(time.Duration(max(n, 0)) * 24 * time.Hour)
	}
	t := from.In(c.Location)
	// Normalise to a working moment: the next start of work when outside.
	for range maxCalendarDays {
		if c.workday(t) {
			start, end := c.hours(t)
			if t.Before(start) {
				t = start
			}
			if t.Before(end) {
				break
			}
		}
		t = nextMidnight(t, c.Location)
	}
	start, _ := c.hours(t)
	offset := t.Sub(start)
	for range maxCalendarDays {
		t = nextMidnight(t, c.Location)
		if c.workday(t) {
			if n--; n == 0 {
				s, _ := c.hours(t)
				return s.Add(offset).In(from.Location())
			}
		}
	}
	return from.Add(time.Duration(n) * 24 * time.Hour)
}

// Between returns the working time from a to b (0 when b is not after a).
func (c *Calendar) Between(a, b time.Time) time.Duration {
	if !b.After(a) {
		return 0
	}
	if c == nil {
		return b.Sub(a)
	}
	var sum time.Duration
	t := a.In(c.Location)
	for range maxCalendarDays * 10 {
		if !t.Before(b) {
			break
		}
		if c.workday(t) {
			start, end := c.hours(t)
			lo, hi := later(start, t), earlier(end, b)
			if hi.After(lo) {
				sum += hi.Sub(lo)
			}
		}
		t = nextMidnight(t, c.Location)
	}
	return sum
}

// Working reports whether t falls within working time.
func (c *Calendar) Working(t time.Time) bool {
	if c == nil {
		return true
	}
	t = t.In(c.Location)
	if !c.workday(t) {
		return false
	}
	start, end := c.hours(t)
	return !t.Before(start) && t.Before(end)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Span is a target's length in working time: Hours of working time, or Days
// whole working days.
type Span struct {
	Hours time.Duration
	Days  int
}

// IsZero reports an unset span (no target).
func (s Span) IsZero() bool { return s.Hours == 0 && s.Days == 0 }

// From returns the deadline the span sets from a moment, in cal.
func (s Span) From(cal *Calendar, from time.Time) time.Time {
	if s.Days > 0 {
		return cal.AddDays(from, s.Days)
	}
	return cal.Add(from, s.Hours)
}

func (s Span) String() string {
	if s.Days > 0 {
		return strconv.Itoa(s.Days) + " business days"
	}
	return strings.TrimSuffix(strings.TrimSuffix(s.Hours.String(), "0s"), "0m") + " business time"
}

// ParseSpan reads "4h", "90m", "1h30m" (working time) or "5d" (working days).
func ParseSpan(v string) (Span, error) {
	v = strings.TrimSpace(v)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 {
			return Span{}, fmt.Errorf("%q: want a whole number of working days like 5d", v)
		}
		return Span{Days: n}, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return Span{}, fmt.Errorf("%q: want working hours like 4h or 90m, or working days like 5d", v)
	}
	return Span{Hours: d}, nil
}
