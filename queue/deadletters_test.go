package queue_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// A notification that failed for good is shown to the operator as the
// API shows complaints and events, not as the compact records the outbox
// entry carries; retrying it puts back the entry as it was.
func TestDeadNotificationIsShownReadableAndRetriedAsItWas(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.testRouter(2).Route(ctx, router.Message{ID: "M-1", Channel: router.ChannelWebhook, SourceID: "s1",
		Customer: router.Customer{Email: "jan@example.nl"}, Subject: "Kettle", Body: "It leaks."}); err != nil {
		t.Fatal(err)
	}
	outbox := e.rdb.XRange(ctx, e.keys.Outbox(), "-", "+").Val()
	if len(outbox) != 1 {
		t.Fatalf("outbox: %d entries", len(outbox))
	}
	stored := outbox[0].Values["data"].(string)
	if !strings.Contains(stored, `"complaint":{"v":1,`) {
		t.Fatalf("the outbox entry does not carry the stored record: %.120s", stored)
	}
	e.run(queue.ConsumerConfig{Stream: e.keys.Outbox(), Group: queue.DeliveryGroup, Name: "t", MaxAttempts: 1,
		Handler: func(context.Context, *queue.Delivery) error { return router.Permanent(errors.New("slack said no")) }})
	var dead []queue.DeadLetter
	testkit.WaitFor(t, "the notification to be dead-lettered", func() bool {
		dead, _ = e.store.DeadLetters(ctx, 10)
		return len(dead) == 1
	})
	d := dead[0]
	out, err := queue.DecodeOutgoing([]byte(d.Data))
	if err != nil || !strings.Contains(d.Data, `"status":"open"`) || !strings.Contains(d.Data, `"type":"assigned"`) ||
		out.Notification == nil || out.Notification.Complaint.Subject != "Kettle" {
		t.Errorf("dead letter shown as %s (%v), want the API's JSON of the notification", d.Data, err)
	}
	// What decodes to nothing to deliver (a key misspelt, null) is shown
	// as it is: that is why it failed.
	for _, odd := range []string{`{"notifcation":{"id":"n"}}`, `null`} {
		e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.keys.DeadLetters(), Values: []string{"stream", e.keys.Outbox(), "entry", "1-1", "error", "nothing to deliver", "attempts", "1", "data", odd}})
	}
	all, _ := e.store.DeadLetters(ctx, 10)
	for _, odd := range []string{`{"notifcation":{"id":"n"}}`, `null`} {
		found := false
		for _, x := range all {
			found = found || x.Data == odd
		}
		if !found {
			t.Errorf("a dead letter holding %s is not shown as it is: %+v", odd, all)
		}
	}

	// Stored as it was: a retry puts back the very entry.
	raw := e.rdb.XRange(ctx, e.keys.DeadLetters(), d.ID, d.ID).Val()
	if len(raw) != 1 || raw[0].Values["data"] != stored {
		t.Errorf("the dead letter holds %v, want the outbox entry as it was", raw)
	}
	if err := e.store.RetryDeadLetter(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the retried notification to fail again", func() bool {
		for _, x := range e.rdb.XRange(ctx, e.keys.DeadLetters(), "-", "+").Val() {
			if x.ID != d.ID && x.Values["data"] == stored {
				return true
			}
		}
		return false
	})
}
