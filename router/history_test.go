package router_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// plainStore hides the store's count query, as a store without one would.
type plainStore struct{ router.Store }

// What must hold: a customer's history counts every earlier complaint (not
// the capped list), the newest first, without the complaint itself — with a
// count query where the store has one, and by listing where it has not.
func TestCustomerHistoryCountsEveryEarlierComplaint(t *testing.T) {
	d := newDesk(t)
	ctx := context.Background()
	out := d.route(d.msg("mila@example.com", "My parcel is late"))
	c, _ := d.complaint(out.ComplaintID)
	at := c.CreatedAt.Add(-300 * 24 * time.Hour)
	for i := range 120 {
		old := router.Complaint{ID: fmt.Sprintf("C-8%03d", i), Status: router.StatusClosed, Owner: "anna", Team: "support", Channel: router.ChannelWebhook,
			Customer: c.Customer, CustomerKey: c.CustomerKey, CreatedAt: at.Add(time.Duration(i) * time.Hour), ClosedAt: at.Add(time.Duration(i)*time.Hour + time.Minute)}
		if err := d.store.Commit(ctx, router.Change{After: old, OnceKey: "seed:" + old.ID}); err != nil {
			t.Fatal(err)
		}
	}
	plain, err := router.New(router.Config{Store: plainStore{d.store}, Directory: d.router.Directory(), Rules: &router.Rules{DefaultTeam: "support"}, ReopenWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*router.Router{"count query": d.router, "listing": plain} {
		h, err := r.CustomerHistory(ctx, c, 5)
		if err != nil {
			t.Fatal(err)
		}
		if h.Total != 120 || len(h.Recent) != 5 || h.Recent[0].ID != "C-8119" {
			t.Errorf("%s: %d of %d, newest %v; want 5 of 120, newest C-8119", name, len(h.Recent), h.Total, h.Recent)
		}
		for _, o := range h.Recent {
			if o.ID == c.ID {
				t.Errorf("%s: the complaint is in its own history", name)
			}
		}
	}
	if h, err := d.router.CustomerHistory(ctx, router.Complaint{ID: "C-x"}, 5); err != nil || h.Total != 0 {
		t.Errorf("no customer key: %+v %v, want an empty history", h, err)
	}
}

// What must hold: the route by which a refused notification reached its
// owner is on the timeline once, however often it is recorded.
func TestNotificationRouteRecordedOnce(t *testing.T) {
	d := newDesk(t)
	out := d.route(d.msg("mila@example.com", "Hello"))
	queued := len(d.outbox())
	for range 2 {
		if err := d.router.RecordNotificationRoute(context.Background(), out.ComplaintID, "n-1", "email", "invalid_blocks"); err != nil {
			t.Fatal(err)
		}
	}
	_, tl := d.complaint(out.ComplaintID)
	var got []router.Event
	for _, e := range tl {
		if e.Event != nil && e.Event.Type == router.EventNotificationRerouted {
			got = append(got, *e.Event)
		}
	}
	if len(got) != 1 || got[0].Details["route"] != "email" || got[0].Details["notification"] != "n-1" {
		t.Errorf("rerouted events %+v, want one by email", got)
	}
	if n := len(d.outbox()); n != queued {
		t.Errorf("recording the route queued %d notifications: it must not loop", n-queued)
	}
}
