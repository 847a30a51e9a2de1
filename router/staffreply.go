package router

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ExternalReply is an answer staff gave the customer outside forgetmenot,
// directly on the customer's medium (a post in the complaint's Discourse
// topic). It has already reached the customer: it is recorded, never sent.
type ExternalReply struct {
	// ThreadKey is the conversation it was said in ("forum:topic:4711"); it
	// leads to the complaint.
	ThreadKey string
	// CustomerKey, when the channel knows whom the answer addresses (the
	// author of the post it replies to), picks that customer's complaint in
	// a conversation several customers take part in; an answer to someone
	// else never settles another customer's clock.
	CustomerKey string
	// Key is unique per answer and stable across redeliveries
	// ("forum:post:90212"): recording the same answer twice records it once.
	Key string
	// Actor is the owner id when the author is on the roster, otherwise a
	// channel-scoped name ("forum:bob").
	Actor string
	// Text is what was said.
	Text string
	// Via is the channel it was said on; Ref the channel's id of it.
	Via Channel
	Ref string
}

// RecordStaffReply records an answer staff gave on the customer's own medium
// as a reply on the complaint's timeline: it settles what a reply settles
// (the first-response clock, a pending promise; the complaint then waits on
// the customer) and tells the owner, but queues nothing for delivery. It
// returns ErrNotFound when no complaint holds the thread key.
func (r *Router) RecordStaffReply(ctx context.Context, rep ExternalReply) (Complaint, error) {
	text := strings.TrimSpace(rep.Text)
	switch {
	case rep.ThreadKey == "":
		return Complaint{}, invalid("thread_key", "is required: say in which conversation staff answered")
	case rep.Key == "":
		return Complaint{}, invalid("key", "is required: it keeps a redelivered answer from being recorded twice")
	case text == "":
		return Complaint{}, invalid("text", "is empty")
	case len(text) > maxReplyLen:
		// Said already, so recorded whatever its length: clipped, not refused.
		text = strings.ToValidUTF8(text[:maxReplyLen-len("…")], "") + "…"
	}
	actor, err := r.actor(rep.Actor)
	if err != nil {
		return Complaint{}, err
	}
	c, found, err := r.answeredComplaint(ctx, rep)
	if err != nil {
		return Complaint{}, err
	}
	if !found {
		who := ""
		if rep.CustomerKey != "" {
			who = " for " + rep.CustomerKey
		}
		return Complaint{}, fmt.Errorf("no complaint%s is threaded on %s: %w", who, rep.ThreadKey, ErrNotFound)
	}
	return r.update(ctx, c.ID, func(c Complaint, now time.Time) (Change, error) {
		after := c
		after.UpdatedAt = now
		if after.FirstResponseAt.IsZero() {
			after.FirstResponseAt = now
		}
		// The answer settles what a reply from forgetmenot settles; on a
		// closed complaint there is nothing to settle, but the answer still
		// belongs on its timeline.
		var settled []Event
		if c.Status == StatusOpen {
			settled = r.staffAnswered(&after, now, actor, true)
		}
		ev := Event{Type: EventReplied, Actor: actor, Owner: c.Owner, Text: text,
			Reason:  "answered directly on " + string(rep.Via) + ", not through forgetmenot",
			Details: map[string]string{"via": string(rep.Via), "external": "true"}}
		if rep.Ref != "" {
			ev.Details["ref"] = rep.Ref
		}
		ch := newChange(&c, after)
		ch.OnceKey = "external-reply:" + rep.Key
		ch.Entries = []Entry{{At: now, Event: &ev}}
		for i := range settled {
			ch.Entries = append(ch.Entries, Entry{At: now, Event: &settled[i]})
		}
		ch.Notifications = []Notification{notification(NotifyReplied, ch.After, c.Owner, now, &ev, nil)}
		return ch, nil
	})
}

// answeredComplaint finds the complaint an external answer belongs to: the
// addressed customer's in the conversation when the channel names them,
// else the conversation's.
func (r *Router) answeredComplaint(ctx context.Context, rep ExternalReply) (Complaint, bool, error) {
	if rep.CustomerKey == "" {
		return r.complaintByThreadKey(ctx, rep.ThreadKey)
	}
	for _, key := range []string{scopedThreadKey(rep.ThreadKey, rep.CustomerKey), rep.ThreadKey} {
		c, found, err := r.complaintByThreadKey(ctx, key)
		if err != nil || (found && c.Proves(rep.CustomerKey)) {
			return c, found, err
		}
	}
	return Complaint{}, false, nil
}

// TimeZone is where times told to the complaint's customer are given: the
// zone of its owner's business calendar, or UTC when deadlines run around
// the clock.
func (r *Router) TimeZone(c Complaint) *time.Location { return r.OwnerTimeZone(c.Owner) }

// OwnerTimeZone is the zone of the owner's business calendar (their
// "today"), or UTC when their deadlines run around the clock.
func (r *Router) OwnerTimeZone(owner string) *time.Location {
	if cal := r.policy().CalendarOf(owner); cal != nil && cal.Location != nil {
		return cal.Location
	}
	return time.UTC
}
