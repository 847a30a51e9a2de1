package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// expectations tune the invariant check to what a scenario did.
type expectations struct {
	// deadLettered are message ids that must be in the dead letters instead
	// of on a complaint (poison).
	deadLettered []string
	// maxDuplicateNotifications bounds repeated assignment notifications: a
	// replica that dies or is cut off between notifying and acknowledging
	// notifies again on redelivery (at-least-once delivery to a notifier that
	// cannot deduplicate, like the console log).
	maxDuplicateNotifications int
}

// checkInvariants waits until the replicas have worked off everything, then
// checks I1, I2 and I3 and returns a one-line summary.
func (h *harness) checkInvariants(acked map[string]string, exp expectations) string {
	t := h.t
	t.Helper()
	ctx := context.Background()
	dead := map[string]bool{}
	for _, id := range exp.deadLettered {
		dead[id] = true
	}
	// Several acknowledgements may name one message (a duplicate is answered
	// with the first one's id), so the ids waited for are distinct: the
	// routed ones come back as a map, one entry per id.
	ids := make([]string, 0, len(acked))
	for _, id := range acked {
		if !dead[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	keys := h.store.Keys()

	// Everything acknowledged gets routed, and the queues run empty.
	drained := func() bool {
		missing := 0
		for chunk := range slices.Chunk(ids, 500) {
			routed, err := h.store.MessagesRouted(ctx, chunk)
			if err != nil {
				return false
			}
			missing += len(chunk) - len(routed)
		}
		st, err := h.store.Stats(ctx)
		return err == nil && missing == 0 && st.Inbound.Waiting == 0 && st.Inbound.Delayed == 0 &&
			st.Outbox.Waiting == 0 && st.Outbox.Delayed == 0
	}
	const drainLimit = 60 * time.Second
	for deadline := time.Now().Add(drainLimit); !drained(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			h.logUndrained(acked)
			t.Fatalf("timed out after %s waiting for every acknowledged message to be routed and the queues to drain", drainLimit)
		}
	}

	// I1 (stored state): the store's own audit, and every acknowledged
	// message on exactly one complaint.
	rep, err := h.store.Audit(ctx)
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	for _, p := range rep.Problems {
		t.Errorf("audit: %s", p)
	}
	for source, id := range acked {
		if dead[id] {
			if _, on := rep.MessageComplaint[id]; on {
				t.Errorf("I1: poison message %s (%s) is on a complaint", id, source)
			}
			continue
		}
		if _, on := rep.MessageComplaint[id]; !on {
			t.Errorf("I1: message %s (%s) was acknowledged but is on no complaint", id, source)
		}
	}
	if len(exp.deadLettered) > 0 {
		dls, err := h.store.DeadLetters(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range exp.deadLettered {
			if !slices.ContainsFunc(dls, func(d queue.DeadLetter) bool { return strings.Contains(d.Data, id) }) {
				t.Errorf("I1: poison message %s is neither on a complaint nor in the dead letters", id)
			}
		}
	}
	// I1 (as the API tells it): a sample through GET /v1/messages/{id}.
	sampled := 0
	for _, id := range ids {
		if sampled >= 50 {
			break
		}
		sampled++
		var st api.MessageStatus
		code, err := h.apiGet("/v1/messages/"+id, &st)
		if err != nil || code != http.StatusOK || st.ComplaintID != rep.MessageComplaint[id] || st.Owner == "" {
			t.Errorf("I1: GET /v1/messages/%s = %d %+v (%v); the audit has it on %s", id, code, st, err, rep.MessageComplaint[id])
		}
	}

	// I2: one owner, changed only by audited reassignment; I3: every
	// assignment notified.
	cids, err := h.rdb.ZRange(ctx, keys.Complaints(), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	duplicates, reassigned := 0, 0
	for _, cid := range cids {
		c, err := h.store.Complaint(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		tl, err := h.store.Timeline(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		owner, assignments := "", 0
		for _, e := range tl {
			ev := e.Event
			if ev == nil {
				continue
			}
			switch ev.Type {
			case router.EventAssigned:
				assignments++
				if ev.PreviousOwner != owner {
					t.Errorf("I2: %s assigned to %s, but the event says the previous owner was %q, not %q", cid, ev.Owner, ev.PreviousOwner, owner)
				}
				if owner != "" && ev.Reason == "" {
					t.Errorf("I2: %s reassigned by the router from %s to %s without a reason", cid, owner, ev.Owner)
				}
				owner = ev.Owner
			case router.EventReassigned:
				reassigned++
				if ev.PreviousOwner != owner || ev.Reason == "" || ev.Actor == "" || ev.Owner == "" {
					t.Errorf("I2: %s has an unaudited reassignment %+v (owner before: %s)", cid, ev, owner)
				}
				owner = ev.Owner
			}
		}
		if assignments < 1 || (c.Reopens == 0 && assignments != 1) {
			t.Errorf("I2: %s has %d assignment events", cid, assignments)
		}
		if owner != c.Owner || c.Owner == "" {
			t.Errorf("I2: %s's owner is %q but its timeline ends with owner %q", cid, c.Owner, owner)
		}
		// The assignment notification of a new complaint is version 1's.
		first := ""
		for _, e := range tl {
			if e.Event != nil && e.Event.Type == router.EventAssigned {
				first = e.Event.Owner
				break
			}
		}
		n := h.notifiedCount(fmt.Sprintf("%s:v1:%s:%s", cid, router.NotifyAssigned, first))
		if n == 0 {
			t.Errorf("I3: the assignment of %s to %s was never notified", cid, first)
		}
		duplicates += max(n-1, 0)
	}
	if duplicates > exp.maxDuplicateNotifications {
		t.Errorf("I3: %d duplicate assignment notifications; at most %d expected from the faults injected", duplicates, exp.maxDuplicateNotifications)
	}
	return fmt.Sprintf("%d messages on %d complaints (%d open), %d reassignments, %d duplicate assignment notifications (allowed %d)",
		rep.Messages, rep.Complaints, rep.Open, reassigned, duplicates, exp.maxDuplicateNotifications)
}

// logUndrained tells what the drain wait still waits for: the acknowledged
// messages on no complaint, the queue depths, the dead letters and what is
// pending or delayed on each stream.
func (h *harness) logUndrained(acked map[string]string) {
	t := h.t
	t.Helper()
	ctx := context.Background()
	keys := h.store.Keys()
	for source, id := range acked {
		routed, err := h.store.MessagesRouted(ctx, []string{id})
		if err != nil {
			t.Logf("undrained: MessagesRouted(%s): %v", id, err)
			continue
		}
		if len(routed) == 0 {
			t.Logf("undrained: message %s (%q) was acknowledged but is not routed", id, source)
		}
	}
	st, err := h.store.Stats(ctx)
	t.Logf("undrained: stats %+v (%v)", st, err)
	if dls, err := h.store.DeadLetters(ctx, 20); err == nil {
		for _, d := range dls {
			t.Logf("undrained: dead letter %+v", d)
		}
	}
	for _, stream := range []string{keys.Inbound(), keys.Outbox()} {
		groups, err := h.rdb.XInfoGroups(ctx, stream).Result()
		t.Logf("undrained: %s groups %+v (%v)", stream, groups, err)
		for _, g := range groups {
			pending, err := h.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: g.Name, Start: "-", End: "+", Count: 20}).Result()
			t.Logf("undrained: %s pending in %s: %+v (%v)", stream, g.Name, pending, err)
		}
		consumers, _ := h.rdb.XInfoStreamFull(ctx, stream, 5).Result()
		if consumers != nil {
			t.Logf("undrained: %s length %d, last id %s, first entries %+v", stream, consumers.Length, consumers.LastGeneratedID, consumers.Entries)
		}
		delayed, err := h.rdb.ZRangeWithScores(ctx, keys.Delayed(stream), 0, 20).Result()
		t.Logf("undrained: %s delayed %+v (%v)", stream, delayed, err)
	}
}
