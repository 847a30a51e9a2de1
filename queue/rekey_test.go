package queue_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// What must hold: rekeying a forum customer from their username to their
// user id moves exactly their complaints (customer key, customer id, the
// customer index, scoped thread keys), keeps the old key proven, leaves
// other customers alone, is idempotent, and their next message under the
// user id continues their complaints.
func TestRekeyCustomerMovesTheCustomersComplaints(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.testRouter(2)
	n := 0
	route := func(customer router.Customer, topic string) router.Outcome {
		t.Helper()
		n++
		msg := router.Message{ID: "m" + string(rune('a'+n)), Channel: router.ChannelForum, SourceID: "post:" + string(rune('a'+n)),
			Customer: customer, Body: "Broken", ThreadKeys: []string{"forum:topic:" + topic}, ReceivedAt: time.Now()}
		out, err := r.Route(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	marloes, pieter := router.Customer{ID: "marloes", Name: "Marloes"}, router.Customer{ID: "pieter", Name: "Pieter"}
	own := route(marloes, "1").ComplaintID
	theirs := route(pieter, "2").ComplaintID
	// Marloes posts in Pieter's topic: her own complaint, on the scoped key.
	inTheirs := route(marloes, "2").ComplaintID
	if inTheirs == theirs || inTheirs == own {
		t.Fatalf("Marloes's post in Pieter's topic landed on %s", inTheirs)
	}
	pieterBefore, _ := e.store.Complaint(ctx, theirs)

	moved, err := e.store.RekeyCustomer(ctx, router.ChannelForum, "marloes", "233")
	if err != nil || moved != 2 {
		t.Fatalf("rekey: %d, %v; want her 2 complaints moved", moved, err)
	}
	for _, id := range []string{own, inTheirs} {
		c, _ := e.store.Complaint(ctx, id)
		if c.CustomerKey != "forum:233" || c.Customer.ID != "233" || !slices.Contains(c.Identities, "forum:marloes") {
			t.Errorf("%s after the rekey: key %q, id %q, identities %v", id, c.CustomerKey, c.Customer.ID, c.Identities)
		}
	}
	if _, total, _ := e.store.CustomerComplaints(ctx, "forum:233", 10); total != 2 {
		t.Errorf("%d complaints under forum:233, want 2", total)
	}
	if _, total, _ := e.store.CustomerComplaints(ctx, "forum:marloes", 10); total != 0 {
		t.Errorf("%d complaints still under forum:marloes", total)
	}
	if m, _ := e.store.ThreadComplaints(ctx, []string{router.ScopedThreadKey("forum:topic:2", "forum:233")}); len(m) != 1 {
		t.Errorf("the scoped thread key did not move: %v", m)
	}
	if c, _ := e.store.Complaint(ctx, theirs); c.Version != pieterBefore.Version || c.CustomerKey != "forum:pieter" {
		t.Errorf("Pieter's complaint changed: %+v", c)
	}
	if moved, err := e.store.RekeyCustomer(ctx, router.ChannelForum, "marloes", "233"); err != nil || moved != 0 {
		t.Errorf("second rekey: %d, %v; want nothing left to move", moved, err)
	}
	// Her next posts, under her user id, continue her complaints.
	marloesNow := router.Customer{ID: "233", Name: "Marloes"}
	if got := route(marloesNow, "1").ComplaintID; got != own {
		t.Errorf("her next post in her topic opened %s, want %s", got, own)
	}
	if got := route(marloesNow, "2").ComplaintID; got != inTheirs {
		t.Errorf("her next post in Pieter's topic landed on %s, want %s", got, inTheirs)
	}
	// Pieter's id is not hers: rekeying another id moves nothing of hers.
	if moved, _ := e.store.RekeyCustomer(ctx, router.ChannelForum, "pieter", "77"); moved != 1 {
		t.Errorf("rekeying Pieter moved %d, want his 1", moved)
	}
	if c, _ := e.store.Complaint(ctx, own); c.CustomerKey != "forum:233" {
		t.Errorf("rekeying Pieter touched Marloes's complaint: %q", c.CustomerKey)
	}
}

// What must hold: the candidates of a rekey are the channel's customer
// indexes that hold complaints, each once, with its oldest complaint's
// creation time; other channels' customers are not among them. A one-time
// migration's completion is recorded and read back.
func TestRekeyCandidatesAreTheChannelsCustomersAndMigrationsAreRecorded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.testRouter(2)
	at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i, c := range []struct {
		ch       router.Channel
		customer router.Customer
	}{
		{router.ChannelForum, router.Customer{ID: "marloes"}}, {router.ChannelForum, router.Customer{ID: "marloes"}},
		{router.ChannelForum, router.Customer{ID: "233"}}, {router.ChannelChat, router.Customer{ID: "sess-1"}},
	} {
		msg := router.Message{ID: "m" + string(rune('a'+i)), Channel: c.ch, SourceID: "s" + string(rune('a'+i)), Customer: c.customer,
			Body: "Broken", ThreadKeys: []string{"t:" + string(rune('a'+i))}, ReceivedAt: at.Add(time.Duration(i) * time.Minute)}
		if _, err := r.Route(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	list, err := e.store.ChannelCustomers(ctx, router.ChannelForum)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(list, func(a, b queue.ChannelCustomer) int { return strings.Compare(a.ID, b.ID) })
	if len(list) != 2 || list[0].ID != "233" || list[1].ID != "marloes" {
		t.Fatalf("forum customers %v, want 233 and marloes", list)
	}
	first, _, _ := e.store.CustomerComplaints(ctx, "forum:marloes", 10)
	if len(first) == 0 {
		t.Fatal("no complaints of marloes")
	}
	oldest := first[len(first)-1].CreatedAt
	for _, c := range first {
		if c.CreatedAt.Before(oldest) {
			oldest = c.CreatedAt
		}
	}
	if !list[1].First.Equal(oldest.Truncate(time.Millisecond)) {
		t.Errorf("oldest complaint of marloes at %v, want %v", list[1].First, oldest)
	}
	if _, err := e.store.ChannelCustomers(ctx, "fo*"); err == nil {
		t.Error("a channel with glob characters must be refused")
	}

	if _, done, err := e.store.MigrationDone(ctx, "forum-user-ids"); err != nil || done {
		t.Fatalf("before: done %v, %v", done, err)
	}
	if err := e.store.MarkMigrationDone(ctx, "forum-user-ids", at); err != nil {
		t.Fatal(err)
	}
	if when, done, err := e.store.MigrationDone(ctx, "forum-user-ids"); err != nil || !done || !when.Equal(at) {
		t.Errorf("after: %v %v %v, want done at %v", when, done, err, at)
	}
}
