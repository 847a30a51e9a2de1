package queue_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// TestStoreErrorsCarryTheirComplaint: an error of the store whose words
// name the complaint says so as a fact (router.ComplaintError), so the
// router's error about it names the complaint once, on Redis as it runs.
func TestStoreErrorsCarryTheirComplaint(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.testRouter(2)
	out, err := r.Route(ctx, router.Message{ID: "M-1", Channel: router.ChannelWebhook, SourceID: "1",
		Customer: router.Customer{Email: "a@example.com"}, Body: "The lid is cracked.", ReceivedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	id := out.ComplaintID

	// A change computed from an older version.
	c, err := e.store.Complaint(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	stale := c
	stale.Version--
	after := c
	after.Version++
	err = e.store.Commit(ctx, router.Change{Before: &stale, After: after})
	var named *router.ComplaintError
	if !errors.Is(err, router.ErrConflict) || !errors.As(err, &named) || named.ID != id {
		t.Fatalf("a stale change: %v; want a conflict that says it is about %s", err, id)
	}

	// A timeline entry that does not decode.
	if err := e.rdb.RPush(ctx, e.keys.Timeline(id), "not json").Err(); err != nil {
		t.Fatal(err)
	}
	_, _, err = r.Complaint(ctx, id)
	if err == nil {
		t.Fatal("a broken timeline entry was read without an error")
	}
	if n := strings.Count(err.Error(), id); n != 1 {
		t.Errorf("%q names %s %d times, want once", err, id, n)
	}
}
