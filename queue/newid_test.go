package queue_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// TestComplaintIDsComeFromReservedBlocks: a process hands out complaint ids
// from a block it reserved with one INCRBY (not one command per complaint):
// in order within the process, and never the same id twice across processes
// (a second store on the same Redis takes the next block). A redelivered
// message opens nothing and names its complaint.
func TestComplaintIDsComeFromReservedBlocks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	respond, _ := router.ParseSpan("4h")
	roster, err := router.NewRoster([]router.Team{{ID: "support"}}, []router.Owner{{ID: "ann", Name: "Ann", Email: "ann@example.com", Teams: []string{"support"}, Capacity: 10, Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	newRouter := func(store *queue.Store) *router.Router {
		r, err := router.New(router.Config{Store: store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}, ReopenWindow: time.Hour,
			Reachability: reachByEmail{}, Policy: &router.Policy{Targets: []router.Target{{Name: "all", FirstResponse: respond}}, ReminderAt: 0.5}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first, second := newRouter(e.store), newRouter(queue.NewStore(e.rdb, e.keys, 0))
	route := func(r *router.Router, i int) string {
		t.Helper()
		m := router.Message{ID: fmt.Sprintf("M-%d", i), Channel: router.ChannelWebhook, SourceID: fmt.Sprint(i), ThreadKeys: []string{fmt.Sprintf("webhook:order-%d", i)},
			Customer: router.Customer{Email: fmt.Sprintf("c%d@example.com", i)}, Subject: "Order", Body: "Broken on arrival.", ReceivedAt: time.Now()}
		out, err := r.Route(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		// Redelivered: nothing new, and the outcome names the complaint.
		again, err := r.Route(ctx, m)
		if err != nil || again.Kind != router.OutcomeDuplicate || again.ComplaintID != out.ComplaintID {
			t.Fatalf("redelivery of %s: %+v, %v; want a duplicate on %s", m.ID, again, err, out.ComplaintID)
		}
		return out.ComplaintID
	}
	var ids []string
	for i := range 3 {
		ids = append(ids, route(first, i))
	}
	ids = append(ids, route(second, 3), route(first, 4))
	if got := strings.Join(ids, ","); got != "C-1001,C-1002,C-1003,C-1021,C-1004" {
		t.Fatalf("ids = %s, want C-1001..C-1003 from the first block, C-1021 from the second process's block, then C-1004", got)
	}
	if seq, _ := e.rdb.Get(ctx, e.keys.ComplaintSeq()).Int(); seq != 40 {
		t.Errorf("the id counter is %d after two blocks, want 40 (one INCRBY per block)", seq)
	}
	for _, id := range ids {
		c, err := e.store.Complaint(ctx, id)
		if err != nil || c.ID != id || len(c.Timers) == 0 {
			t.Fatalf("complaint %s: %+v, %v", id, c, err)
		}
	}
	// Each outbox entry is a whole notification or acknowledgement, the
	// complaint in it as stored (the commit copies it, it is sent once).
	outbox, err := e.rdb.XRange(ctx, e.keys.Outbox(), "-", "+").Result()
	if err != nil || len(outbox) != 10 {
		t.Fatalf("outbox: %d entries, %v; want a notification and an acknowledgement each", len(outbox), err)
	}
	for i, x := range outbox {
		out, err := queue.DecodeOutgoing([]byte(x.Values["data"].(string)))
		if err != nil {
			t.Fatalf("outbox entry %d: %v", i, err)
		}
		switch {
		case out.Notification != nil:
			n := out.Notification
			stored, _ := e.store.Complaint(ctx, ids[i/2])
			if n.Complaint.ID != ids[i/2] || n.Kind != router.NotifyAssigned || n.Event == nil || n.Event.Type != router.EventAssigned ||
				n.Message == nil || n.Message.Body != "Broken on arrival." || !reflect.DeepEqual(n.Complaint, stored) {
				t.Errorf("outbox entry %d: %+v, want the assignment of %s with its event, message and the complaint as stored", i, n, ids[i/2])
			}
		case out.Customer != nil:
			if out.Customer.Complaint.ID != ids[i/2] {
				t.Errorf("outbox entry %d is for %s, want %s", i, out.Customer.Complaint.ID, ids[i/2])
			}
		default:
			t.Errorf("outbox entry %d carries nothing", i)
		}
	}
}

// The outbox entry of a new complaint is joined in the commit script from
// what the same step stores (sent once). Customer text that looks like the
// joints (`,"message":`, `}}`, NUL bytes) must come out exactly as it went
// in: what must hold is that the notification equals the complaint, event
// and message as stored. Routed by a consumer, the message is copied from
// the inbound entry as well: the same must hold.
func TestOutboxEntryRepeatsCustomerTextExactly(t *testing.T) {
	t.Run("routed directly", func(t *testing.T) { checkOutboxRepeatsExactly(t, false) })
	t.Run("routed from the inbound stream", func(t *testing.T) { checkOutboxRepeatsExactly(t, true) })
}

func checkOutboxRepeatsExactly(t *testing.T, consumer bool) {
	e := newEnv(t)
	ctx := context.Background()
	roster, err := router.NewRoster([]router.Team{{ID: "support"}}, []router.Owner{{ID: "ann", Name: "Ann", Email: "ann@example.com", Teams: []string{"support"}, Capacity: 10, Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(router.Config{Store: e.store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}})
	if err != nil {
		t.Fatal(err)
	}
	hostile := "x\x00y\",\"message\":{\"body\":\"forged\"}}}} \\u0000 ,\"event\":{} \x00"
	m := router.Message{ID: "M-1", Channel: router.ChannelWebhook, SourceID: "1",
		Customer: router.Customer{Name: hostile, Email: "c@example.com"}, Subject: hostile, Body: hostile + " body", ReceivedAt: time.Now()}
	var complaintID string
	if consumer {
		id := e.enqueue(m)
		var routed atomic.Int32
		e.run(queue.ConsumerConfig{Stream: e.keys.Inbound(), Group: queue.RouterGroup, Name: "t", Handler: routeHandler(r, &routed)})
		testkit.WaitFor(t, "the message routed", func() bool { return routed.Load() == 1 })
		cid, ok, err := e.store.MessageComplaint(ctx, id)
		if err != nil || !ok {
			t.Fatalf("message %s on no complaint: %v", id, err)
		}
		complaintID = cid
	} else {
		out, err := r.Route(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		complaintID = out.ComplaintID
	}
	stored, err := e.store.Complaint(ctx, complaintID)
	if err != nil {
		t.Fatal(err)
	}
	timeline, err := e.store.Timeline(ctx, complaintID)
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := e.rdb.XRange(ctx, e.keys.Outbox(), "-", "+").Result()
	if err != nil || len(outbox) != 1 {
		t.Fatalf("outbox: %d entries, %v", len(outbox), err)
	}
	got, err := queue.DecodeOutgoing([]byte(outbox[0].Values["data"].(string)))
	if err != nil || got.Notification == nil {
		t.Fatalf("outbox entry: %+v, %v", got, err)
	}
	n := got.Notification
	if !reflect.DeepEqual(n.Complaint, stored) {
		t.Errorf("notification complaint %+v\nstored %+v", n.Complaint, stored)
	}
	if n.Message == nil || n.Message.Body != hostile+" body" || n.Message.Subject != hostile || !reflect.DeepEqual(*n.Message, *timeline[0].Message) {
		t.Errorf("notification message %+v, want the message as stored", n.Message)
	}
	if n.Event == nil || !reflect.DeepEqual(*n.Event, *timeline[len(timeline)-1].Event) {
		t.Errorf("notification event %+v, want the assignment as stored", n.Event)
	}
}
