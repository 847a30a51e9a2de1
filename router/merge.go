package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Merge joins complaint from into complaint into, when staff have
// established that both are the same customer's (a colleague who answered
// from another address, a chat visitor who later wrote an e-mail). It is
// the hand-made counterpart of the rule that a message joins a complaint
// only from a proven sender, so it is explicit and audited: the reason and
// the actor are recorded on both timelines.
//
// In one atomic step: into gains copies of from's customer messages, the
// identities of from's customer (their later messages, by any reference to
// either complaint, join into) and from's pending promise if it has none; from
// is closed as merged, its timers cancelled, and a message that refers to it
// from now on continues on into. into's owner stays the owner; both owners
// are told. into must be open, unless both are closed (joining history).
func (r *Router) Merge(ctx context.Context, fromID, intoID, actor, reason string) (Complaint, error) {
	fromID, intoID, reason = strings.TrimSpace(fromID), strings.TrimSpace(intoID), strings.TrimSpace(reason)
	switch {
	case intoID == "":
		return Complaint{}, invalid("into", "is required: name the complaint to merge into")
	case strings.EqualFold(fromID, intoID):
		return Complaint{}, invalid("into", "a complaint cannot be merged into itself")
	case reason == "":
		return Complaint{}, invalid("reason", "is required: say why both complaints are the same customer's")
	case len(reason) > maxReasonLen:
		return Complaint{}, invalid("reason", "is longer than %d bytes", maxReasonLen)
	}
	actor, err := r.actor(actor)
	if err != nil {
		return Complaint{}, err
	}
	for attempt := 1; ; attempt++ {
		ch, err := r.planMerge(ctx, fromID, intoID, actor, reason)
		if err != nil {
			return Complaint{}, err
		}
		err = r.commit(ctx, ch)
		switch {
		case err == nil:
			r.onEvent(EventMerged)
			return ch.After, nil
		case errors.Is(err, ErrConflict) && attempt < maxCommitAttempts:
			if err := pause(ctx, attempt); err != nil {
				return Complaint{}, err
			}
		default:
			// The change is to the --into complaint, which the store's
			// error names ("committing change to C-2: …").
			return Complaint{}, complaintErr(err, intoID, "merging "+fromID+" into "+intoID, "merging "+fromID)
		}
	}
}

func (r *Router) planMerge(ctx context.Context, fromID, intoID, actor, reason string) (Change, error) {
	from, err := r.store.Complaint(ctx, fromID)
	if err != nil {
		return Change{}, loadErr(fromID, err)
	}
	into, err := r.store.Complaint(ctx, intoID)
	if err != nil {
		return Change{}, loadErr(intoID, err)
	}
	switch {
	case from.MergedInto != "":
		return Change{}, fmt.Errorf("complaint %s was already merged into %s: %w", from.ID, from.MergedInto, ErrInvalidState)
	case into.MergedInto != "":
		return Change{}, fmt.Errorf("complaint %s was merged into %s; merge into that one: %w", into.ID, into.MergedInto, ErrInvalidState)
	case into.Status != StatusOpen && from.Status == StatusOpen:
		return Change{}, fmt.Errorf("complaint %s is closed and %s is open; merge %s into %s instead, so the open one carries on: %w",
			into.ID, from.ID, into.ID, from.ID, ErrInvalidState)
	}
	timeline, err := r.store.Timeline(ctx, from.ID)
	if err != nil {
		return Change{}, timelineErr(from.ID, err)
	}
	now := r.clock()

	after := into
	after.UpdatedAt = now
	after.Customer = completeCustomer(after.Customer, after.Channel, from.Customer, from.Channel)
	for _, id := range from.allIdentities() {
		after.addIdentity(id)
	}
	var entries []Entry
	for _, e := range timeline {
		if e.Message != nil {
			entries = append(entries, e)
			after.Messages++
			if e.Message.ReceivedAt.After(after.LastMessageAt) {
				after.LastMessageAt = e.Message.ReceivedAt
			}
		}
	}
	merged := Event{Type: EventMerged, Actor: actor, Owner: into.Owner, PreviousOwner: from.Owner, Reason: reason,
		Details: map[string]string{"from": from.ID, "messages": fmt.Sprint(len(entries))}}
	var promiseNote *Event
	if !from.PromisedBy.IsZero() && from.PromisedBy.After(now) && into.Status == StatusOpen {
		if into.PromisedBy.IsZero() {
			// The customer was promised a follow-up: it stays promised.
			after.PromisedBy, after.PromiseNote = from.PromisedBy, from.PromiseNote
			after.Promises++
			r.setClock(&after, clockPromise, now, after.PromisedBy, now)
			merged.Details["promise"] = from.PromisedBy.Format(time.RFC3339)
		} else {
			promiseNote = &Event{Type: EventNote, Actor: ActorRouter, Owner: into.Owner,
				Text: fmt.Sprintf("%s had promised the customer a follow-up by %s (%q); this complaint's own promise stands.",
					from.ID, from.PromisedBy.Format(time.RFC3339), from.PromiseNote)}
		}
	}
	entries = append(entries, Entry{At: now, Event: &merged})
	if promiseNote != nil {
		entries = append(entries, Entry{At: now, Event: promiseNote})
	}

	gone := from
	gone.MergedInto, gone.UpdatedAt = into.ID, now
	goneEv := Event{Type: EventMerged, Actor: actor, Owner: from.Owner, Reason: reason, Details: map[string]string{"into": into.ID}}
	if from.Status == StatusOpen {
		gone.Status, gone.ClosedAt = StatusClosed, now
		gone.Resolution = "merged into " + into.ID
		// A promise moved with the messages; its clock stops here unsettled.
		gone.PromisedBy, gone.PromiseNote = time.Time{}, ""
		gone.Timers, gone.WaitingSince, gone.RespondBy = nil, time.Time{}, time.Time{}
	}
	related := newChange(&from, gone)
	related.Entries = []Entry{{At: now, Event: &goneEv}}

	ch := newChange(&into, after)
	ch.Entries = entries
	ch.Related = []Change{related}
	ch.Notifications = []Notification{notification(NotifyMerged, ch.After, into.Owner, now, &merged, nil)}
	if from.Owner != into.Owner {
		ch.Notifications = append(ch.Notifications, notification(NotifyMerged, related.After, from.Owner, now, &goneEv, nil))
	}
	return ch, nil
}
