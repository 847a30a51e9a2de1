package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Seen receipts and the unseen fallback. A channel that delivers live (the
// web chat) knows the words reached the visitor's browser, not that the
// visitor read them. It reports a Sent with Unseen set; the router then arms
// a durable timer on the complaint, in the same commit as the "sent" line.
// When the customer's screen shows the line, RecordSeen puts "seen" on the
// timeline and cancels the timer. When the timer fires first (on whichever
// replica finds it, once), the message is queued again for the fallback
// channel (e-mail) and the timeline says it was not seen.

// Events of the seen receipts.
const (
	// EventSeen records that the customer saw something said to them.
	EventSeen EventType = "seen"
	// EventUnseen records that something delivered live stayed unseen and
	// is sent again by another channel.
	EventUnseen EventType = "unseen"
)

// TimerUnseen fires when a message delivered live was not seen in time; the
// timer's Ref names the message (SaidRef) and Via the fallback channel.
const TimerUnseen TimerKind = "unseen_fallback"

// UnseenFallback asks the router to send a message again through Via unless
// the customer is seen to read it within After.
type UnseenFallback struct {
	After time.Duration `json:"after"`
	Via   Channel       `json:"via"`
}

// SaidRef names what was said to a customer on a complaint by its kind and
// moment: a CustomerMessage and the timeline entry of the change that said
// it share the moment, so live lines and history agree on it.
func SaidRef(kind CustomerMessageKind, at time.Time) string {
	return string(kind) + "@" + at.UTC().Format(time.RFC3339Nano)
}

// ParseSaidRef reads a SaidRef.
func ParseSaidRef(ref string) (CustomerMessageKind, time.Time, bool) {
	kind, at, ok := strings.Cut(ref, "@")
	if !ok {
		return "", time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return "", time.Time{}, false
	}
	switch k := CustomerMessageKind(kind); k {
	case ToCustomerReply, ToCustomerPromise, ToCustomerAcknowledgement, ToCustomerCSAT:
		return k, t, true
	}
	return "", time.Time{}, false
}

// watchUnseen arms the unseen timer for a message just recorded as sent.
func watchUnseen(c *Complaint, m CustomerMessage, sent Sent, now time.Time) {
	u := sent.Unseen
	if u == nil || u.After <= 0 || u.Via == "" || (m.Kind != ToCustomerReply && m.Kind != ToCustomerPromise) {
		return
	}
	t := newTimer(TimerUnseen, now.Add(u.After))
	t.Ref, t.Via = SaidRef(m.Kind, m.At), u.Via
	c.Timers = append(slices.Clone(c.Timers), t)
}

// keepUnseen is what survives a close of a complaint's timers: the unseen
// fallbacks, because a reply sent just before the close must still reach
// the customer.
func keepUnseen(ts []Timer) []Timer {
	var out []Timer
	for _, t := range ts {
		if t.Kind == TimerUnseen {
			out = append(out, t)
		}
	}
	return out
}

// RecordSeen records that the customer saw what was said to them (ref, a
// SaidRef) on channel via, and cancels its unseen fallback. Recording it
// again records nothing. The caller vouches that ref was shown to this
// complaint's customer (the chat only passes lines it rendered for the
// session).
func (r *Router) RecordSeen(ctx context.Context, complaintID, ref string, via Channel) error {
	kind, at, ok := ParseSaidRef(ref)
	if !ok {
		return invalid("ref", "%q does not name something said to the customer", ref)
	}
	_, err := r.update(ctx, complaintID, func(c Complaint, now time.Time) (Change, error) {
		after := c
		after.UpdatedAt = now
		after.Timers = slices.DeleteFunc(slices.Clone(c.Timers), func(t Timer) bool { return t.Kind == TimerUnseen && t.Ref == ref })
		if len(after.Timers) == 0 {
			after.Timers = nil
		}
		ev := Event{Type: EventSeen, Actor: "customer", Owner: c.Owner,
			Reason:  fmt.Sprintf("the customer saw the %s in %s", kind, via),
			Details: map[string]string{"kind": string(kind), "said_at": at.UTC().Format(time.RFC3339Nano), "via": string(via)}}
		ch := newChange(&c, after)
		ch.OnceKey = "seen:" + complaintID + ":" + ref
		ch.Entries = []Entry{{At: now, Event: &ev}}
		return ch, nil
	})
	return err
}

// fireUnseen carries out an unseen fallback: the message is queued again for
// the fallback channel and the timeline says it was not seen, in one commit
// that also removes the timer (so it fires once across replicas).
func (r *Router) fireUnseen(ctx context.Context, complaintID string, t Timer) (FireResult, error) {
	var res FireResult
	_, err := r.updateWithTimeline(ctx, complaintID, func(c Complaint, tl []Entry, now time.Time) (Change, error) {
		res = FireResult{}
		i := slices.IndexFunc(c.Timers, func(x Timer) bool { return x.Kind == t.Kind && x.Due.UnixMilli() == t.Due.UnixMilli() })
		if i < 0 {
			res = FireResult{Stale: true, Version: c.Version}
			return Change{}, errUnchanged
		}
		timer := c.Timers[i]
		after := c
		after.Timers = slices.Delete(slices.Clone(c.Timers), i, i+1)
		if len(after.Timers) == 0 {
			after.Timers = nil
		}
		after.UpdatedAt = now
		ch := newChange(&c, after)
		res.Fired = true
		kind, at, ok := ParseSaidRef(timer.Ref)
		said := saidEvent(tl, kind, at)
		ev := Event{Type: EventUnseen, Actor: ActorRouter, Owner: c.Owner,
			Details: map[string]string{"kind": string(kind), "said_at": at.UTC().Format(time.RFC3339Nano), "via": string(timer.Via)}}
		switch {
		case !ok || said == nil:
			ev.Reason = fmt.Sprintf("something said to the customer (%s) was not seen, and it is no longer on the timeline to send again", timer.Ref)
		case c.Customer.Email == "" && timer.Via == ChannelEmail:
			ev.Reason = fmt.Sprintf("the %s was not seen within %s, and there is no e-mail address to send it to", kind, roundDuration(now.Sub(at)))
		default:
			ev.Reason = fmt.Sprintf("the %s was not seen within %s; it is sent again via %s", kind, roundDuration(now.Sub(at)), timer.Via)
			if timer.Via == ChannelEmail {
				ev.Reason = fmt.Sprintf("the %s was not seen within %s; it is e-mailed to %s", kind, roundDuration(now.Sub(at)), c.Customer.Email)
			}
			m := r.customerMessage(kind, after, tl, said.Actor, said.Text, at)
			m.ID = after.ID + ":v" + fmt.Sprint(after.Version) + ":unseen-" + string(kind)
			m.Fallback = timer.Via
			if by, err := time.Parse(time.RFC3339, said.Details["by"]); err == nil && kind == ToCustomerPromise {
				m.Complaint.PromisedBy = by // the moment promised then, whatever is pending now
			}
			ch.CustomerMessages = []CustomerMessage{m}
		}
		ch.Entries = []Entry{{At: now, Event: &ev}}
		return ch, nil
	})
	if errors.Is(err, ErrNotFound) {
		return FireResult{Stale: true, Version: -1}, nil
	}
	return res, err
}

// saidMoment is now, or the first millisecond after it at which nothing of
// kind was said on the timeline: the clock has millisecond resolution, and
// two replies in one millisecond must not share a SaidRef (a receipt for
// one would cancel the other's fallback, and the fallback would send the
// first one's text).
func saidMoment(tl []Entry, kind CustomerMessageKind, now time.Time) time.Time {
	for saidEvent(tl, kind, now) != nil {
		now = now.Add(time.Millisecond)
	}
	return now
}

// saidEvent finds the timeline event that said kind to the customer at at.
func saidEvent(tl []Entry, kind CustomerMessageKind, at time.Time) *Event {
	for _, e := range tl {
		if e.Event == nil || !e.At.Equal(at) {
			continue
		}
		switch {
		case kind == ToCustomerReply && e.Event.Type == EventReplied,
			kind == ToCustomerPromise && e.Event.Type == EventPromised && e.Event.Details["via"] != "":
			return e.Event
		}
	}
	return nil
}
