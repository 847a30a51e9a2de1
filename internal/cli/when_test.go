package cli

import (
	"testing"
	"time"
)

func TestParseWhen(t *testing.T) {
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	now := time.Date(2026, 12, 30, 10, 15, 0, 0, ams)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-11-26T14:00:00+01:00", time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)},
		{"2026-11-26 14:00", time.Date(2026, 11, 26, 14, 0, 0, 0, ams)},
		{"+2d 14:00", time.Date(2027, 1, 1, 14, 0, 0, 0, ams)}, // across the year end
		{"+0d 17:30", time.Date(2026, 12, 30, 17, 30, 0, 0, ams)},
		{"today 17:00", time.Date(2026, 12, 30, 17, 0, 0, 0, ams)},
		{"tomorrow 09:30", time.Date(2026, 12, 31, 9, 30, 0, 0, ams)},
		{"+48h", now.Add(48 * time.Hour)},
		{"+2d", now.Add(48 * time.Hour)},
		{"+90m", now.Add(90 * time.Minute)},
	}
	for _, tc := range tests {
		got, err := parseWhen(tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "someday", "+2x 14:00", "+2d 25:00", "+d 14:00", "+-2d 14:00", "tomorrow", "next week", "+0h", "2026-13-01 10:00"} {
		if got, err := parseWhen(bad, now); err == nil {
			t.Errorf("parseWhen(%q) = %v, want an error", bad, got)
		}
	}
}

func TestPromiseTime(t *testing.T) {
	now := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	if got, err := promiseTime("", "48h", now); err != nil || !got.Equal(now.Add(48*time.Hour)) {
		t.Errorf("--in 48h: %v %v", got, err)
	}
	if got, err := promiseTime("", "2d", now); err != nil || !got.Equal(now.Add(48*time.Hour)) {
		t.Errorf("--in 2d: %v %v", got, err)
	}
	for _, c := range [][2]string{{"", ""}, {"+2d 14:00", "48h"}, {"", "-1h"}, {"", "soon"}, {"soon", ""}} {
		if _, err := promiseTime(c[0], c[1], now); err == nil {
			t.Errorf("promiseTime(%q, %q): want an error", c[0], c[1])
		}
	}
}

func TestLocalURL(t *testing.T) {
	for addr, want := range map[string]string{
		":8080": "http://127.0.0.1:8080", "0.0.0.0:9000": "http://127.0.0.1:9000", "[::]:9000": "http://127.0.0.1:9000",
		"127.0.0.1:8081": "http://127.0.0.1:8081", "[::1]:8082": "http://[::1]:8082", "": "http://127.0.0.1:8080",
	} {
		if got := LocalURL(addr); got != want {
			t.Errorf("LocalURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
