package router_test

import (
	"context"
	"testing"

	"github.com/forgetmenot/forgetmenot/router"
)

// A complaint that breached its resolution deadline, was closed and is
// reopened gets a fresh resolution clock; waiting on the customer pauses it
// and their answer must start it again — a past breach must not leave the
// reopened complaint without a resolution timer.
func TestReopenedComplaintKeepsItsResolutionClockThroughAWait(t *testing.T) {
	d, _ := accountableDesk(t, cet(t, "2026-11-23 10:00"), nil)
	ctx := context.Background()
	id := d.route(d.msg("klant@voorbeeld.nl", "De app crasht.")).ComplaintID
	d.clock.now = cet(t, "2026-12-10 10:00") // long past every deadline
	fireEverywhere(t, d.router)
	if c, _ := d.complaint(id); len(c.Breaches) == 0 {
		t.Fatalf("setup: want a breached complaint, got %+v", c)
	}
	if _, err := d.router.Close(ctx, id, "anna", "Fixed in 3.1", ""); err != nil {
		t.Fatal(err)
	}
	d.clock.now = cet(t, "2026-12-11 10:00")
	again := d.msg("klant@voorbeeld.nl", "Het crasht weer.")
	again.ComplaintID = id
	d.route(again)
	d.clock.now = cet(t, "2026-12-11 11:00")
	if _, err := d.router.Reply(ctx, id, "anna", "Welke versie gebruikt u?"); err != nil {
		t.Fatal(err)
	}
	d.clock.now = cet(t, "2026-12-11 12:00")
	answer := d.msg("klant@voorbeeld.nl", "Versie 3.1.")
	answer.ComplaintID = id
	d.route(answer)

	c, _ := d.complaint(id)
	var breach bool
	for _, tm := range c.Timers {
		breach = breach || tm.Kind == router.TimerResolveBreach
	}
	if c.ResolveBy.IsZero() || !breach {
		t.Fatalf("after reopen, wait and answer: resolve by %v, timers %+v; want the resolution clock running", c.ResolveBy, c.Timers)
	}
}
