package router_test

import (
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// amsterdam is a Dutch office: Monday to Friday 9:00-17:00, with Christmas
// off.
func amsterdam(t *testing.T) *router.Calendar {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	c := &router.Calendar{Name: "nl", Location: loc, Start: 9 * time.Hour, End: 17 * time.Hour,
		Holidays: map[string]bool{"2026-12-25": true}}
	for _, d := range []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday} {
		c.Days[d] = true
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCalendarCountsOnlyWorkingTime(t *testing.T) {
	cal := amsterdam(t)
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, cal.Location)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		from string
		span string
		want string
	}{
		{"within one day", "2026-11-23 10:00", "4h", "2026-11-23 14:00"},
		{"over the evening", "2026-11-23 15:00", "4h", "2026-11-24 11:00"},
		{"over the weekend", "2026-11-27 16:00", "4h", "2026-11-30 12:00"},
		{"from a Saturday", "2026-11-28 11:00", "4h", "2026-11-30 13:00"},
		{"before opening", "2026-11-23 07:00", "30m", "2026-11-23 09:30"},
		{"over Christmas", "2026-12-24 16:00", "2h", "2026-12-28 10:00"},
		{"over the change to summer time", "2026-03-27 16:00", "2h", "2026-03-30 10:00"},
		{"exactly a day", "2026-11-23 09:00", "8h", "2026-11-23 17:00"},
		{"five working days", "2026-11-23 10:00", "5d", "2026-11-30 10:00"},
		{"working days from the evening", "2026-11-23 18:00", "1d", "2026-11-25 09:00"},
		{"working days over Christmas", "2026-12-24 11:00", "1d", "2026-12-28 11:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			span, err := router.ParseSpan(tc.span)
			if err != nil {
				t.Fatal(err)
			}
			got := span.From(cal, at(tc.from))
			if want := at(tc.want); !got.Equal(want) {
				t.Errorf("%s + %s = %s, want %s", tc.from, tc.span, got.In(cal.Location).Format(time.RFC3339), want.Format(time.RFC3339))
			}
			// What must hold: Between undoes Add for working-time spans.
			if span.Days == 0 {
				if back := cal.Between(at(tc.from), got); back != span.Hours {
					t.Errorf("Between(%s, %s) = %s, want %s", tc.from, tc.want, back, span.Hours)
				}
			}
		})
	}
	if !cal.Working(at("2026-11-23 09:00")) || cal.Working(at("2026-11-23 17:00")) || cal.Working(at("2026-12-25 10:00")) {
		t.Error("Working: 9:00 opens, 17:00 closes, Christmas is off")
	}
	var always *router.Calendar
	if got := always.Add(at("2026-11-28 11:00"), 4*time.Hour); !got.Equal(at("2026-11-28 15:00")) {
		t.Errorf("a nil calendar runs around the clock: %s", got)
	}
}

func TestParseSpanRefusesNonsense(t *testing.T) {
	for _, bad := range []string{"", "0h", "-2h", "1.5d", "0d", "tomorrow"} {
		if _, err := router.ParseSpan(bad); err == nil {
			t.Errorf("ParseSpan(%q) accepted", bad)
		}
	}
}
