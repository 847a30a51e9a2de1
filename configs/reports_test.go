package configs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
)

// What must hold: DIGEST reads a weekday and a time or "off" and names a
// bad value; CATEGORIES wins over SLACK_CATEGORIES, which still works.
func TestDigestScheduleAndCategories(t *testing.T) {
	for v, want := range map[string]struct {
		day time.Weekday
		at  time.Duration
		on  bool
	}{
		"monday 09:00": {time.Monday, 9 * time.Hour, true}, "Tue 8:30": {time.Tuesday, 8*time.Hour + 30*time.Minute, true},
		"off": {}, "": {},
	} {
		day, at, on, err := configs.Config{Digest: v}.DigestSchedule()
		if err != nil || day != want.day || at != want.at || on != want.on {
			t.Errorf("DIGEST=%q: %v %v %v %v", v, day, at, on, err)
		}
	}
	for _, bad := range []string{"monday", "mo 09:00", "someday 09:00", "monday 25:00"} {
		if _, _, _, err := (configs.Config{Digest: bad}).DigestSchedule(); err == nil || !strings.Contains(err.Error(), "monday 09:00") {
			t.Errorf("DIGEST=%q accepted or unclear: %v", bad, err)
		}
	}
	c := configs.Config{SlackCategories: []string{"delivery", " other "}}
	if got := c.CloseCategories(); strings.Join(got, "|") != "delivery|other" {
		t.Errorf("SLACK_CATEGORIES alone: %q", got)
	}
	t.Setenv("FORGETMENOT_CATEGORIES", "delivery,"+strings.Repeat("x", 76))
	if _, err := configs.FromEnv(); err == nil || !strings.Contains(err.Error(), "FORGETMENOT_CATEGORIES") {
		t.Errorf("a category too long for Slack's menu: %v", err)
	}
	t.Setenv("FORGETMENOT_CATEGORIES", "delivery")
	t.Setenv("FORGETMENOT_DIGEST", "someday")
	if _, err := configs.FromEnv(); err == nil || !strings.Contains(err.Error(), "FORGETMENOT_DIGEST") {
		t.Errorf("a bad DIGEST: %v", err)
	}
	c.Categories = []string{"billing"}
	if got := c.CloseCategories(); strings.Join(got, "|") != "billing" {
		t.Errorf("CATEGORIES should win: %q", got)
	}
}
