package queue_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// TestNewComplaintIDIsDrawnInTheCommit: a new complaint's id is drawn by the
// commit script, and the provisional id the router planned with appears
// nowhere afterwards: not in a key, not in the complaint, its timeline, the
// indexes or the outbox (notification and acknowledgement); the id is the
// next of the counter and comes back in the outcome.
func TestNewComplaintIDIsDrawnInTheCommit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	respond, _ := router.ParseSpan("4h")
	roster, err := router.NewRoster([]router.Team{{ID: "support"}}, []router.Owner{{ID: "ann", Name: "Ann", Email: "ann@example.com", Teams: []string{"support"}, Capacity: 10, Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(router.Config{Store: e.store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}, ReopenWindow: time.Hour,
		Reachability: reachByEmail{}, Policy: &router.Policy{Targets: []router.Target{{Name: "all", FirstResponse: respond}}, ReminderAt: 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		m := router.Message{ID: fmt.Sprintf("M-%d", i), Channel: router.ChannelWebhook, SourceID: fmt.Sprint(i), ThreadKeys: []string{fmt.Sprintf("webhook:order-%d", i)},
			Customer: router.Customer{Email: fmt.Sprintf("c%d@example.com", i)}, Subject: "Order", Body: "Broken on arrival.", ReceivedAt: time.Now()}
		out, err := r.Route(ctx, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out.ComplaintID)
		// Redelivered: nothing new, and the outcome names the complaint.
		again, err := r.Route(ctx, m, nil)
		if err != nil || again.Kind != router.OutcomeDuplicate || again.ComplaintID != out.ComplaintID {
			t.Fatalf("redelivery of %s: %+v, %v; want a duplicate on %s", m.ID, again, err, out.ComplaintID)
		}
	}
	if strings.Join(ids, ",") != "C-1001,C-1002,C-1003" {
		t.Fatalf("ids = %v, want C-1001..C-1003", ids)
	}
	prov := e.store.ProvisionalID()
	keys, err := e.rdb.Keys(ctx, e.keys.Pattern()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, prov) {
			t.Errorf("key %s carries the provisional id", k)
		}
		dump, err := e.rdb.Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(dump, prov) {
			t.Errorf("key %s holds the provisional id", k)
		}
	}
	for _, id := range ids {
		c, err := e.store.Complaint(ctx, id)
		if err != nil || c.ID != id || len(c.Timers) == 0 {
			t.Fatalf("complaint %s: %+v, %v", id, c, err)
		}
	}
	outbox, err := e.rdb.XRange(ctx, e.keys.Outbox(), "-", "+").Result()
	if err != nil || len(outbox) != 6 {
		t.Fatalf("outbox: %d entries, %v; want a notification and an acknowledgement each", len(outbox), err)
	}
	for i, x := range outbox {
		if data := x.Values["data"].(string); !strings.Contains(data, ids[i/2]) {
			t.Errorf("outbox entry %d does not name %s: %.200s", i, ids[i/2], data)
		}
	}
}
