package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// usageError is a flag value the command cannot use: exit code 2, like any
// other parse error, rather than 1 for a failed request.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// promiseTime is the time a promise is due, from --by or --in (exactly one).
func promiseTime(by, in string, now time.Time) (time.Time, error) {
	t, err := promiseTimeOf(by, in, now)
	if err != nil {
		return t, usageError{err}
	}
	return t, nil
}

func promiseTimeOf(by, in string, now time.Time) (time.Time, error) {
	switch {
	case by != "" && in != "":
		return time.Time{}, fmt.Errorf("give --by or --in, not both")
	case in != "":
		d, err := parseSpan(in)
		if err != nil || d <= 0 {
			return time.Time{}, fmt.Errorf("--in %q: want a positive duration such as 48h, 90m or 2d", in)
		}
		return now.Add(d), nil
	case by != "":
		t, err := parseWhen(by, now)
		if err != nil {
			return time.Time{}, fmt.Errorf("--by %q: %w", by, err)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--by or --in is required: when will the customer hear back?")
}

// parseWhen reads a point in time as people write it on the command line,
// in the zone of now:
//
//	2026-11-26T14:00:00+01:00   RFC 3339
//	2026-11-26 14:00            a local date and time
//	+2d 14:00                   in two days (calendar days) at 14:00
//	+2d, +36h, +90m             that long from now
//	today 17:00, tomorrow 09:30
//
// Relative forms let examples (the README's) stay valid whenever they run.
func parseWhen(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	loc := now.Location()
	if t, err := time.ParseInLocation("2006-01-02 15:04", v, loc); err == nil {
		return t, nil
	}
	day, clock, hasClock := strings.Cut(v, " ")
	clock = strings.TrimSpace(clock)
	var days int
	switch {
	case day == "today":
	case day == "tomorrow":
		days = 1
	case strings.HasPrefix(day, "+") && hasClock:
		n, err := strconv.Atoi(strings.TrimSuffix(day[1:], "d"))
		if err != nil || !strings.HasSuffix(day, "d") || n < 0 {
			return time.Time{}, errWhen
		}
		days = n
	case strings.HasPrefix(day, "+") && !hasClock:
		d, err := parseSpan(day[1:])
		if err != nil || d <= 0 {
			return time.Time{}, errWhen
		}
		return now.Add(d), nil
	default:
		return time.Time{}, errWhen
	}
	if !hasClock {
		return time.Time{}, errWhen
	}
	hm, err := time.Parse("15:04", clock)
	if err != nil {
		return time.Time{}, errWhen
	}
	y, m, d := now.Date()
	return time.Date(y, m, d+days, hm.Hour(), hm.Minute(), 0, 0, loc), nil
}

var errWhen = errors.New(`want RFC 3339 (2026-11-26T14:00:00+01:00), "2026-11-26 14:00", "+2d 14:00", "tomorrow 09:30" or "+48h"`)

// parseSpan is a Go duration (90m, 36h) or whole days (2d).
func parseSpan(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}
