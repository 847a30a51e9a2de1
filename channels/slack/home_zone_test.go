package slack_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/slack"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/router"
)

// What must hold: "promised today" in App Home is today in the owner's
// calendar, not on the server's (UTC) clock. In Auckland, at 10:00 (still
// yesterday in UTC) a promise due at 20:00 there falls due today for the
// owner; in Los Angeles, at 20:00 (already tomorrow in UTC) a promise due at
// 08:00 the next morning is not due today, though it is on the UTC date.
// The one due today is marked and on top; the other is not marked.
func TestAppHomePromisedTodayIsTheOwnersToday(t *testing.T) {
	for _, tc := range []struct {
		zone                      string
		viewedAt, todayAt, nextAt int // local hours: now, a promise today, one the next day
	}{
		{zone: "Pacific/Auckland", viewedAt: 10, todayAt: 20, nextAt: 9},
		{zone: "America/Los_Angeles", viewedAt: 20, todayAt: 22, nextAt: 8},
	} {
		t.Run(tc.zone, func(t *testing.T) {
			zone, err := time.LoadLocation(tc.zone)
			if err != nil {
				t.Skipf("no time zone data: %v", err)
			}
			later := time.Now().In(zone).AddDate(0, 0, 30)
			y, m, d := later.Date()
			viewed := time.Date(y, m, d, tc.viewedAt, 0, 0, 0, zone)
			if viewed.UTC().Day() == viewed.Day() {
				t.Fatalf("the test needs a moment whose UTC date differs from the owner's: %v", viewed)
			}
			f := newFixture(t, func(c *slack.Config) {
				c.HomeDebounce = 10 * time.Millisecond
				c.Clock = func() time.Time { return viewed.UTC() }
			})
			f.serve()
			idNext, owner := f.openComplaint("zone1")
			idToday := f.secondComplaintOf(owner, "zone2")
			// The owner's calendar is in the zone.
			roster, err := configs.LoadRoster("../../configs/owners.yaml")
			if err != nil {
				t.Fatal(err)
			}
			rules, err := configs.LoadRouting("../../configs/routing.yaml", roster)
			if err != nil {
				t.Fatal(err)
			}
			cal := &router.Calendar{Name: "office", Location: zone, Days: [7]bool{true, true, true, true, true, true, true}, End: 24 * time.Hour}
			if err := f.router.Reload(roster, rules, &router.Policy{OwnerCalendars: map[string]*router.Calendar{owner: cal}}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.router.Promise(f.ctx, idNext, owner, time.Date(y, m, d+1, tc.nextAt, 0, 0, 0, zone), "Call back", false); err != nil {
				t.Fatal(err)
			}
			if _, err := f.router.Promise(f.ctx, idToday, owner, time.Date(y, m, d, tc.todayAt, 0, 0, 0, zone), "Call back", false); err != nil {
				t.Fatal(err)
			}
			f.deliver()
			user := f.slackUserOf(owner)
			if code, body := f.send("/slack/events", homeOpened(user), "application/json", signingSecret, time.Now()); code != http.StatusOK {
				t.Fatalf("event answered %d %s", code, body)
			}
			testkit.WaitFor(t, "the App Home", func() bool { return len(f.ws.Published(user)) > 0 })
			homes := f.ws.Published(user)
			raw, _ := json.Marshal(homes[len(homes)-1].View)
			s := string(raw)
			if !strings.Contains(s, ":red_circle: *"+idToday+"*") {
				t.Errorf("%s, promised for %02d:00 today in the owner's zone, is not marked urgent: %s", idToday, tc.todayAt, s)
			}
			if strings.Contains(s, ":red_circle: *"+idNext+"*") {
				t.Errorf("%s, promised for %02d:00 tomorrow in the owner's zone, is marked urgent: %s", idNext, tc.nextAt, s)
			}
			if i, j := strings.Index(s, idToday+"*"), strings.Index(s, idNext+"*"); i < 0 || j < 0 || i > j {
				t.Errorf("want %s (promised today) above %s: %s", idToday, idNext, s)
			}
		})
	}
}
