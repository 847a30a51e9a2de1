package queue_test

import (
	"context"
	"fmt"
	"testing"
)

// A merge copies the messages of the complaint merged away onto the one it
// went into: the audit takes those copies (through a chain of merges too)
// for what they are, not for a message routed twice, counts each message
// once, and keeps it on the complaint it was routed to.
func TestAuditTakesMergedCopiesForNoDuplicate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.testRouter(2)
	ids := e.routeWebhooks(r, 3, func(int) string { return "jan@example.com" })
	if ids[0] == ids[1] || ids[1] == ids[2] {
		t.Fatalf("the test needs three complaints, got %v", ids)
	}
	for _, m := range [][2]string{{ids[0], ids[1]}, {ids[1], ids[2]}} {
		into, err := e.store.Complaint(ctx, m[1])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Merge(ctx, m[0], m[1], into.Owner, "the same parcel"); err != nil {
			t.Fatalf("merging %s into %s: %v", m[0], m[1], err)
		}
	}
	rep, err := e.store.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || rep.Messages != 3 {
		t.Fatalf("audit after two merges: %d messages (want 3), problems %v", rep.Messages, rep.Problems)
	}
	for i, id := range ids {
		if got := rep.MessageComplaint[fmt.Sprintf("M-%02d", i)]; got != id {
			t.Errorf("message M-%02d belongs to %s, want %s, where it was routed", i, got, id)
		}
	}
}
