package router

import (
	"context"
	"time"
)

// Store is the persistence the router needs. Reads may be stale; Commit is the
// only write and applies a whole Change atomically or not at all.
type Store interface {
	// Complaint returns ErrNotFound when there is no such complaint.
	Complaint(ctx context.Context, id string) (Complaint, error)
	Timeline(ctx context.Context, id string) ([]Entry, error)
	Complaints(ctx context.Context, f Filter) ([]Complaint, error)
	// ThreadComplaints maps each known thread key to its complaint id.
	ThreadComplaints(ctx context.Context, keys []string) (map[string]string, error)
	// MessageComplaint tells which complaint a routed message landed on.
	MessageComplaint(ctx context.Context, messageID string) (complaintID string, found bool, err error)
	// LatestComplaintOf returns ErrNotFound when the customer has none.
	LatestComplaintOf(ctx context.Context, customerKey string) (Complaint, error)
	OwnerLoads(ctx context.Context, ownerIDs []string) (map[string]OwnerLoad, error)
	// NextComplaintID reserves a new, never reused complaint id.
	NextComplaintID(ctx context.Context) (string, error)
	// Commit applies the change atomically. It returns ErrConflict when a guard
	// failed and ErrDuplicate when the change's message was already applied; in
	// both cases nothing was written except, for ErrDuplicate, the receipt's
	// acknowledgement.
	Commit(ctx context.Context, c Change) error
}

// ThreadClaim points a thread key at the changed complaint, provided the key
// still points where the router saw it (Expect; "" for nowhere).
type ThreadClaim struct {
	Key    string
	Expect string
}

// CapacityGuard refuses the change if Owner already carries Limit or more open
// complaints, so concurrent routers cannot overfill an owner.
type CapacityGuard struct {
	Owner string
	Limit int
}

// Change is one atomic step in a complaint's life: the complaint's new state
// and everything that must happen with it or not at all.
type Change struct {
	// Before is the state the change was computed from (nil for a new
	// complaint); the store refuses the change if the complaint moved on.
	Before *Complaint
	After  Complaint
	// MessageID makes the change apply at most once per inbound message.
	MessageID string
	// OnceKey makes a change that is not caused by an inbound message apply at
	// most once (a delivery report, a redelivered chat event).
	OnceKey       string
	ThreadKeys    []ThreadClaim
	Capacity      *CapacityGuard
	Entries       []Entry
	Notifications []Notification
	// CustomerMessages are queued for the customer with the change.
	CustomerMessages []CustomerMessage
	// AssignedAt, when set, records the time After.Owner received this
	// complaint (the least-loaded tie-breaker).
	AssignedAt time.Time
	// Mentions are timeline entries for other complaints that this change
	// names (a message that referred to a complaint it could not join):
	// appended to their timelines, which they do not otherwise change.
	Mentions []Mention
	// Related are changes to further complaints that must happen in the same
	// atomic step, each guarded like the main one (a merge closes one
	// complaint into another). They carry no message id or once key.
	Related []Change
}

// Mention is a timeline entry for another complaint.
type Mention struct {
	ComplaintID string
	Entry       Entry
}
