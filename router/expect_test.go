package router_test

import (
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

func TestExpectationFollowsTheBusinessCalendar(t *testing.T) {
	for _, tc := range []struct {
		now     string
		working bool
		back    string
	}{
		{"2026-11-23 10:00", true, ""},                  // Monday morning
		{"2026-11-23 18:30", false, "2026-11-24 09:00"}, // Monday evening
		{"2026-11-27 17:00", false, "2026-11-30 09:00"}, // Friday at closing: back Monday
		{"2026-12-24 20:00", false, "2026-12-28 09:00"}, // Christmas (a holiday) and the weekend
	} {
		d, _ := accountableDesk(t, cet(t, tc.now), nil)
		e := d.router.Expect(router.ChannelChat)
		if e.Working != tc.working || e.FirstResponse.Hours != 4*time.Hour {
			t.Errorf("%s: %+v, want working=%v and the 4h target", tc.now, e, tc.working)
		}
		if tc.back != "" && !e.Back.Equal(cet(t, tc.back)) {
			t.Errorf("%s: back %s, want %s", tc.now, e.Back, tc.back)
		}
	}
}
