package router_test

import (
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// What must hold: a period longer than the weekly series (two years) says
// how many of its first weeks the series leave out, instead of starting
// the tables silently later than the period.
func TestALongPeriodSaysWhichWeeksItsSeriesLeaveOut(t *testing.T) {
	since := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	until := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	rep := router.BuildReport(router.ReportInput{Since: since, Until: until, Now: until})
	if len(rep.Weeks) != 106 || rep.WeeksLeftOut == 0 || len(rep.Weeks)+rep.WeeksLeftOut < 2970 {
		t.Errorf("%d weeks shown, %d left out; want the last 106 and the count of the rest", len(rep.Weeks), rep.WeeksLeftOut)
	}
	short := router.BuildReport(router.ReportInput{Since: until.AddDate(0, 0, -28), Until: until, Now: until})
	if short.WeeksLeftOut != 0 {
		t.Errorf("a 28-day report leaves out %d weeks", short.WeeksLeftOut)
	}
}
