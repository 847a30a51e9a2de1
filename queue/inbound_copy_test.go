package queue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// recordingStore keeps the changes the router committed, after alter (if
// set) has changed them as a router might.
type recordingStore struct {
	*queue.Store
	alter   func(*router.Change)
	mu      sync.Mutex
	changes []router.Change
}

func (s *recordingStore) Commit(ctx context.Context, ch router.Change) error {
	if s.alter != nil {
		s.alter(&ch)
	}
	err := s.Store.Commit(ctx, ch)
	if err == nil {
		s.mu.Lock()
		s.changes = append(s.changes, ch)
		s.mu.Unlock()
	}
	return err
}

// commitArgs records the arguments of every commit script call (a script
// call that names the outbox): what was sent to Redis for the change.
type commitArgs struct {
	outbox string
	mu     sync.Mutex
	calls  [][]string
}

func (c *commitArgs) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commitArgs) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (c *commitArgs) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			var args []string
			for _, a := range cmd.Args() {
				args = append(args, fmt.Sprint(a))
			}
			if slices.Contains(args, c.outbox) {
				c.mu.Lock()
				c.calls = append(c.calls, args)
				c.mu.Unlock()
			}
		}
		return next(ctx, cmd)
	}
}

// sent tells whether some commit sent text, and whether one read a source.
func (c *commitArgs) sent(text string) (sentText, sourced bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, call := range c.calls {
		for _, a := range call {
			sentText = sentText || strings.Contains(a, text)
			sourced = sourced || a == "XRANGE"
		}
	}
	return sentText, sourced
}

// roundTrip is v as encoding/json writes and reads it: what the store kept
// before it copied messages from the inbound entry.
func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The timeline's message entry, and the notification's message, are copied
// by the commit script from the inbound entry being routed when the message
// is stored as it was received, and sent in full otherwise. What must hold
// either way: the stored complaint, timeline and outbox notification decode
// to exactly what the router committed (as encoding/json keeps it), whatever
// the customer wrote; a message the router changed is stored as changed;
// and a message whose inbound entry vanished before the commit is stored
// complete, on exactly one complaint, routed once.
func TestCommitCopiesTheRoutedMessageFromTheInboundEntry(t *testing.T) {
	const marker = "kettle-body-marker"
	hostile := "Zoë \"quoted\" \\ back\\slash \u2028 sep \x00 nul }}} {\"at\":\"x\"} ,\"message\":{\"body\":\"forged\"}} \\u0000 <b>&</b> ✓\n\t"
	for _, c := range []struct {
		name string
		// body is the customer's text; language, if set, the channel's.
		body, language string
		direct         bool                 // routed without a consumer (no inbound entry at hand)
		vanish         bool                 // the inbound entry is deleted before the commit
		alter          func(*router.Change) // the router's change to the message
		wantCopied     bool
	}{
		{name: "copied, language detected", body: hostile + " " + marker, wantCopied: true},
		{name: "copied, language from the channel", body: hostile + " " + marker, language: "nl", wantCopied: true},
		// Ingest replaces invalid UTF-8 with "\ufffd", which encodes back
		// as the character itself: not the entry's data, so sent in full.
		{name: "invalid UTF-8, sent in full", body: hostile + " \xff\xfe " + marker},
		{name: "no inbound entry at hand, sent in full", body: hostile + " " + marker, direct: true},
		{name: "inbound entry vanished, sent in full", body: hostile + " " + marker, vanish: true},
		{name: "altered by the router, sent as altered", body: hostile + " " + marker, alter: func(ch *router.Change) {
			for _, e := range ch.Entries {
				if e.Message != nil {
					// In place: the notification holds the same message.
					e.Message.Body = strings.Replace(e.Message.Body, "Zoë", "Zoe", 1)
					e.Message.Customer.Name = "Normalised"
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			args := &commitArgs{outbox: e.keys.Outbox()}
			e.rdb.AddHook(args)
			roster, err := router.NewRoster([]router.Team{{ID: "support"}}, []router.Owner{{ID: "ann", Name: "Ann", Email: "ann@example.com", Teams: []string{"support"}, Capacity: 10, Active: true}})
			if err != nil {
				t.Fatal(err)
			}
			store := &recordingStore{Store: e.store, alter: c.alter}
			// The customer is acknowledged too: the reply quotes their message.
			r, err := router.New(router.Config{Store: store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}, Reachability: reachByEmail{}})
			if err != nil {
				t.Fatal(err)
			}
			msg := router.Message{Channel: router.ChannelWebhook, SourceID: "1", Language: c.language,
				Customer: router.Customer{Name: hostile, Email: "c@example.com"}, Subject: hostile, Body: c.body,
				Metadata: map[string]string{"order": hostile}, ThreadKeys: []string{"webhook:" + hostile}, ReceivedAt: time.Now()}
			if c.direct {
				msg.ID = "M-1"
				if _, err := r.Route(ctx, msg); err != nil {
					t.Fatal(err)
				}
			} else {
				id := e.enqueue(msg)
				var routed atomic.Int32
				route := routeHandler(r, &routed)
				var vanished atomic.Int32
				e.run(queue.ConsumerConfig{Stream: e.keys.Inbound(), Group: queue.RouterGroup, Name: "t", Handler: func(ctx context.Context, d *queue.Delivery) error {
					if c.vanish {
						if n, err := e.rdb.XDel(ctx, d.Stream, d.ID).Result(); err != nil || n != 1 {
							t.Errorf("XDEL of the inbound entry: %d, %v", n, err)
						}
						vanished.Add(1)
					}
					return route(ctx, d)
				}})
				testkit.WaitFor(t, "the message routed", func() bool { return routed.Load() == 1 })
				// No inbound message is lost or duplicated: the message is on
				// one complaint, routed once, and its entry is acknowledged.
				if _, ok, err := e.store.MessageComplaint(ctx, id); err != nil || !ok {
					t.Fatalf("message %s is on no complaint (%v)", id, err)
				}
				if n, _ := e.rdb.ZCard(ctx, e.keys.Complaints()).Result(); n != 1 {
					t.Errorf("%d complaints, want 1", n)
				}
				if c.vanish && vanished.Load() != 1 {
					t.Errorf("handled %d times, want once", vanished.Load())
				}
				testkit.WaitFor(t, "the inbound entry acknowledged", func() bool {
					p, err := e.rdb.XPending(ctx, e.keys.Inbound(), queue.RouterGroup).Result()
					return err == nil && p.Count == 0
				})
			}
			sentBody, sourced := args.sent(marker)
			if c.wantCopied && (sentBody || !sourced) {
				t.Errorf("the message was sent again (%v) or not copied (read a source: %v)", sentBody, sourced)
			}
			if !c.wantCopied && !sentBody {
				t.Error("the message was not sent, yet it could not be copied")
			}
			if c.vanish && !sourced {
				t.Error("the commit did not try the inbound entry first")
			}

			store.mu.Lock()
			changes := store.changes
			store.mu.Unlock()
			if len(changes) != 1 {
				t.Fatalf("%d changes committed, want 1", len(changes))
			}
			ch := changes[0]
			stored, err := e.store.Complaint(ctx, ch.After.ID)
			if err != nil {
				t.Fatal(err)
			}
			if want := roundTrip(t, ch.After); !reflect.DeepEqual(stored, want) {
				t.Errorf("stored complaint\n got %+v\nwant %+v", stored, want)
			}
			timeline, err := e.store.Timeline(ctx, ch.After.ID)
			if err != nil {
				t.Fatal(err)
			}
			if want := roundTrip(t, ch.Entries); !reflect.DeepEqual(timeline, want) {
				t.Errorf("stored timeline\n got %+v\nwant %+v", timeline, want)
			}
			if m := timeline[0].Message; m == nil || m.Body != ch.Entries[0].Message.Body {
				t.Errorf("stored message %+v, want the router's (body %q)", m, ch.Entries[0].Message.Body)
			}
			if c.alter != nil && timeline[0].Message.Body == c.body {
				t.Error("the message is stored as received, not as the router changed it")
			}
			outbox, err := e.rdb.XRange(ctx, e.keys.Outbox(), "-", "+").Result()
			if err != nil || len(outbox) != len(ch.Notifications)+len(ch.CustomerMessages) || len(ch.Notifications) == 0 || len(ch.CustomerMessages) == 0 {
				t.Fatalf("outbox: %d entries for %d notifications and %d customer messages, %v", len(outbox), len(ch.Notifications), len(ch.CustomerMessages), err)
			}
			for i, m := range ch.CustomerMessages {
				got, err := queue.DecodeOutgoing([]byte(outbox[len(ch.Notifications)+i].Values["data"].(string)))
				if err != nil {
					t.Fatal(err)
				}
				if want := roundTrip(t, router.Outgoing{Customer: &m}); !reflect.DeepEqual(got, want) {
					t.Errorf("outbox customer message\n got %+v\nwant %+v", got.Customer, want.Customer)
				}
				// (alter changes the timeline's message, not the one answered.)
				if m.InReplyTo == nil || got.Customer.InReplyTo == nil || (c.alter == nil && got.Customer.InReplyTo.Body != ch.Entries[0].Message.Body) {
					t.Errorf("the acknowledgement answers %+v, want the stored message", got.Customer.InReplyTo)
				}
			}
			for i, n := range ch.Notifications {
				got, err := queue.DecodeOutgoing([]byte(outbox[i].Values["data"].(string)))
				if err != nil {
					t.Fatal(err)
				}
				if want := roundTrip(t, router.Outgoing{Notification: &n}); !reflect.DeepEqual(got, want) {
					t.Errorf("outbox notification\n got %+v\nwant %+v", got.Notification, want.Notification)
				}
				if n.Message == nil || got.Notification.Message == nil || got.Notification.Message.Body != ch.Entries[0].Message.Body {
					t.Errorf("the notification's message %+v, want the stored one", got.Notification.Message)
				}
			}
		})
	}
}

// The ingest sends the message's id once (in the claim), and the script
// puts it back: the inbound entry is the message exactly as encoding/json
// writes it, with a fingerprint in the claim or not (the commit's copy of
// the message relies on it).
func TestEnqueueStoresTheMessageAsEncoded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i, fp := range []string{"", "sha256:abc"} {
		m := webhookMsg(fmt.Sprint("src-", i), "c@example.com", "body \" \\ \u2028 }")
		m.Fingerprint = fp
		id := e.enqueue(m)
		entries, err := e.rdb.XRange(ctx, e.keys.Inbound(), "-", "+").Result()
		if err != nil || len(entries) != i+1 {
			t.Fatalf("inbound: %d entries, %v", len(entries), err)
		}
		m.ID = id
		m.ReceivedAt = m.ReceivedAt.Truncate(time.Millisecond) // kept to the millisecond
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := entries[i].Values["data"]; got != string(want) {
			t.Errorf("inbound entry\n got %s\nwant %s", got, want)
		}
	}
}
