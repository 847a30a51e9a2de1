package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CustomerMessageKind says why we write to the customer.
type CustomerMessageKind string

// What forgetmenot says to customers.
const (
	// ToCustomerAcknowledgement confirms a new complaint and names its owner.
	ToCustomerAcknowledgement CustomerMessageKind = "acknowledgement"
	// ToCustomerReply is what staff wrote to the customer.
	ToCustomerReply CustomerMessageKind = "reply"
	// ToCustomerPromise tells the customer when they will hear back.
	ToCustomerPromise CustomerMessageKind = "promise"
	// ToCustomerCSAT asks, after the close, how satisfied the customer is;
	// Body holds the question with one signed link per answer.
	ToCustomerCSAT CustomerMessageKind = "csat"
)

// CustomerMessage is queued in the outbox in the same atomic step as the
// change that says it, and delivered through the complaint's channel.
type CustomerMessage struct {
	// ID is unique per change and kind and stable across redeliveries, so a
	// channel can derive idempotent identifiers (an e-mail Message-ID) from it.
	ID        string              `json:"id"`
	Kind      CustomerMessageKind `json:"kind"`
	At        time.Time           `json:"at"`
	Complaint Complaint           `json:"complaint"`
	// OwnerName is the complaint owner's display name ("Anna").
	OwnerName string `json:"owner_name"`
	// Author is the owner id (or API actor) who wrote; AuthorName is how the
	// text is signed: "Anna", or "Bas for Anna" when a colleague answers.
	Author     string `json:"author,omitempty"`
	AuthorName string `json:"author_name,omitempty"`
	// CoverName is the colleague's display name when one answers for the
	// owner (AuthorName words that in English; a channel that writes in the
	// customer's language words it from the two names).
	CoverName string `json:"cover_name,omitempty"`
	// Body is the text for the customer; empty for an acknowledgement, which
	// the channel words from its templates.
	Body string `json:"body,omitempty"`
	// InReplyTo is the customer's latest message on the complaint: where the
	// answer belongs in their conversation (e-mail Message-ID, forum topic,
	// chat session).
	InReplyTo *Message `json:"in_reply_to,omitempty"`
	// References are the thread keys of every customer message on the
	// complaint, oldest first.
	References []string `json:"references,omitempty"`
	// Fallback, when set, says the message was delivered live before but
	// not seen there in time: the complaint's channel sends it through this
	// channel instead (the chat through e-mail).
	Fallback Channel `json:"fallback,omitempty"`
}

// Sent is what a channel reports after delivering a CustomerMessage.
type Sent struct {
	// Via names the channel that carried it ("email", "forum").
	Via string `json:"via"`
	// Ref is the channel's identifier of what was sent (a Message-ID, a post
	// id), recorded on the timeline.
	Ref string `json:"ref,omitempty"`
	// ThreadKeys are keys under which the customer's answer will arrive; they
	// are pointed at the complaint so that answer threads back.
	ThreadKeys []string `json:"thread_keys,omitempty"`
	// Skipped, when set, says why the message was deliberately not sent (an
	// autoresponder loop guard, a rate limit); it is recorded, not retried.
	Skipped string `json:"skipped,omitempty"`
	// Address is the e-mail address the message went to. Having written to
	// it for this complaint proves it is the customer's (an acknowledgement
	// sent to a Reply-To address): mail from it may join the complaint.
	Address string `json:"address,omitempty"`
	// Unseen, when set by a channel that delivered live but cannot know the
	// customer read it (the web chat), sends the message again by another
	// channel unless RecordSeen confirms it was seen in time.
	Unseen *UnseenFallback `json:"unseen,omitempty"`
}

// Reachability tells whether a complaint's customer can be written to, and
// how; the router asks it before accepting a reply so staff learn at once
// that nothing would arrive. It lives outside the router because only the
// wiring knows which channels are configured.
type Reachability interface {
	Reach(c Complaint) (via Channel, err error)
}

// Limits on what staff write to customers and to each other.
const (
	maxReplyLen = 32 << 10
	maxNoteLen  = 8 << 10
)

// Reply records staff's answer on the timeline and queues it for the customer
// in the same atomic step. The actor is an owner id when known (the text is
// then signed "Bas for Anna" if a colleague answers), or an API actor, who
// speaks for the owner.
func (r *Router) Reply(ctx context.Context, id, actor, body string) (Complaint, error) {
	body = strings.TrimSpace(body)
	switch {
	case body == "":
		return Complaint{}, invalid("body", "is required: write the answer for the customer")
	case len(body) > maxReplyLen:
		return Complaint{}, invalid("body", "is longer than %d bytes", maxReplyLen)
	}
	actor, err := r.actor(actor)
	if err != nil {
		return Complaint{}, err
	}
	return r.updateWithTimeline(ctx, id, func(c Complaint, tl []Entry, now time.Time) (Change, error) {
		if c.Status != StatusOpen {
			return Change{}, fmt.Errorf("complaint %s is closed; reopen it by the customer writing, or open a new one: %w", id, ErrInvalidState)
		}
		via, err := r.reach(c)
		if err != nil {
			return Change{}, err
		}
		now = saidMoment(tl, ToCustomerReply, now)
		after := c
		after.UpdatedAt = now
		if after.FirstResponseAt.IsZero() {
			after.FirstResponseAt = now
		}
		// The answer settles the response clock and a pending promise; the
		// complaint now waits on the customer.
		settled := r.staffAnswered(&after, now, actor, true)
		ev := Event{Type: EventReplied, Actor: actor, Owner: c.Owner, Text: body, Details: map[string]string{"via": string(via)}}
		ch := newChange(&c, after)
		ch.Entries = []Entry{{At: now, Event: &ev}}
		for i := range settled {
			ch.Entries = append(ch.Entries, Entry{At: now, Event: &settled[i]})
		}
		ch.Notifications = []Notification{notification(NotifyReplied, ch.After, c.Owner, now, &ev, nil)}
		ch.CustomerMessages = []CustomerMessage{r.customerMessage(ToCustomerReply, ch.After, tl, actor, body, now)}
		return ch, nil
	})
}

// Acknowledge records that the owner has taken the complaint in hand. Doing
// it again changes nothing.
func (r *Router) Acknowledge(ctx context.Context, id, actor string) (Complaint, error) {
	actor, err := r.actor(actor)
	if err != nil {
		return Complaint{}, err
	}
	return r.update(ctx, id, func(c Complaint, now time.Time) (Change, error) {
		if c.Status != StatusOpen {
			return Change{}, fmt.Errorf("complaint %s is closed: %w", id, ErrInvalidState)
		}
		if !c.AcknowledgedAt.IsZero() {
			return Change{}, errUnchanged
		}
		after := c
		after.AcknowledgedAt, after.UpdatedAt = now, now
		ev := Event{Type: EventAcknowledged, Actor: actor, Owner: c.Owner}
		ch := newChange(&c, after)
		ch.Entries = []Entry{{At: now, Event: &ev}}
		ch.Notifications = []Notification{notification(NotifyAcknowledged, ch.After, c.Owner, now, &ev, nil)}
		return ch, nil
	})
}

// AddNote records an internal note that the customer never sees. A non-empty
// key makes it idempotent: the same key again (a redelivered chat event)
// records nothing.
func (r *Router) AddNote(ctx context.Context, id, actor, text, key string) (Complaint, error) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return Complaint{}, invalid("text", "is required")
	case len(text) > maxNoteLen:
		return Complaint{}, invalid("text", "is longer than %d bytes", maxNoteLen)
	}
	actor, err := r.actor(actor)
	if err != nil {
		return Complaint{}, err
	}
	return r.update(ctx, id, func(c Complaint, now time.Time) (Change, error) {
		after := c
		after.UpdatedAt = now
		ev := Event{Type: EventNote, Actor: actor, Owner: c.Owner, Text: text}
		ch := newChange(&c, after)
		ch.Entries = []Entry{{At: now, Event: &ev}}
		if key != "" {
			ch.OnceKey = "note:" + key
		}
		return ch, nil
	})
}

// promiseTold reports whether the promise of moment by was told to the
// customer (its promised event names the channel it went by).
func promiseTold(tl []Entry, by time.Time) bool {
	for i := len(tl) - 1; i >= 0; i-- {
		ev := tl[i].Event
		if ev == nil || ev.Type != EventPromised {
			continue
		}
		if at, err := time.Parse(time.RFC3339, ev.Details["by"]); err == nil && at.Equal(by) {
			return ev.Details["via"] != ""
		}
	}
	return false
}

// Promise records the owner's promise to follow up by a moment, and tells the
// customer when tellCustomer is set. A new promise replaces a pending one;
// one the customer was told of only by one they are told of too.
func (r *Router) Promise(ctx context.Context, id, actor string, by time.Time, note string, tellCustomer bool) (Complaint, error) {
	note = strings.TrimSpace(note)
	switch {
	case by.IsZero():
		return Complaint{}, invalid("by", "is required: say when the customer will hear back")
	case len(note) > maxReasonLen:
		return Complaint{}, invalid("note", "is longer than %d bytes", maxReasonLen)
	case tellCustomer && note == "":
		return Complaint{}, invalid("note", "is required to tell the customer: write what you promise them")
	}
	actor, err := r.actor(actor)
	if err != nil {
		return Complaint{}, err
	}
	return r.updateWithTimeline(ctx, id, func(c Complaint, tl []Entry, now time.Time) (Change, error) {
		if c.Status != StatusOpen {
			return Change{}, fmt.Errorf("complaint %s is closed: %w", id, ErrInvalidState)
		}
		untold := ""
		if !tellCustomer && !c.PromisedBy.IsZero() && promiseTold(tl, c.PromisedBy) {
			// The customer waits for that moment: a new one they are not
			// told of would break it without a word to them, unless they
			// cannot be told at all any more (a bounced address): then the
			// timeline says why.
			_, err := r.reach(c)
			if err == nil {
				return Change{}, invalid("tell_customer", "the customer was told to expect a follow-up by %s: tell them the new moment too, or keep that promise", c.PromisedBy.UTC().Format(time.RFC3339))
			}
			untold = "the customer was told " + c.PromisedBy.UTC().Format(time.RFC3339) + " but cannot be told the new moment: " + err.Error()
		}
		var via Channel
		if tellCustomer {
			v, err := r.reach(c)
			if err != nil {
				return Change{}, err
			}
			via = v
			now = saidMoment(tl, ToCustomerPromise, now)
		}
		if !by.After(now) {
			return Change{}, invalid("by", "%s is not in the future", by.Format(time.RFC3339))
		}
		after := c
		after.PromisedBy, after.PromiseNote, after.UpdatedAt = by.UTC(), note, now
		after.Promises++
		// A promise puts the ball in our court: a clock paused while waiting on
		// the customer runs again, and the promise gets its reminder and breach.
		resumed := r.resume(&after, now, "a follow-up was promised")
		r.setClock(&after, clockPromise, now, after.PromisedBy, now)
		if tellCustomer {
			// Telling the customer when they will hear back answers them.
			if after.FirstResponseAt.IsZero() {
				after.FirstResponseAt = now
			}
			after.RespondBy = time.Time{}
			after.dropClock(clockRespond)
		}
		ev := Event{Type: EventPromised, Actor: actor, Owner: c.Owner, Text: note,
			Details: map[string]string{"by": by.UTC().Format(time.RFC3339)}}
		if !c.PromisedBy.IsZero() {
			ev.Details["replaces"] = c.PromisedBy.Format(time.RFC3339)
		}
		if untold != "" {
			ev.Reason = untold
		}
		ch := newChange(&c, after)
		if resumed != nil {
			ch.Entries = append(ch.Entries, Entry{At: now, Event: resumed})
		}
		if tellCustomer {
			ev.Details["via"] = string(via)
			ch.CustomerMessages = []CustomerMessage{r.customerMessage(ToCustomerPromise, ch.After, tl, actor, note, now)}
		}
		ch.Entries = append(ch.Entries, Entry{At: now, Event: &ev})
		ch.Notifications = []Notification{notification(NotifyPromised, ch.After, c.Owner, now, &ev, nil)}
		return ch, nil
	})
}

// RecordSent records on the timeline that a customer message left (or was
// deliberately held back), and points the thread keys it created at the
// complaint so the customer's answer threads back. Recording the same
// message twice records it once.
func (r *Router) RecordSent(ctx context.Context, m CustomerMessage, sent Sent) error {
	_, err := r.update(ctx, m.Complaint.ID, func(c Complaint, now time.Time) (Change, error) {
		after := c
		after.UpdatedAt = now
		ev := Event{Type: EventSent, Actor: ActorRouter, Owner: c.Owner,
			Details: map[string]string{"kind": string(m.Kind), "message": m.ID, "via": sent.Via}}
		if sent.Ref != "" {
			ev.Details["ref"] = sent.Ref
		}
		if sent.Skipped != "" {
			ev.Reason = "not sent: " + sent.Skipped
		}
		if m.Kind == ToCustomerCSAT && !c.Erased() {
			// The question is on no other line of the timeline: a chat
			// visitor who had left sees it in their history from here, and
			// it is in their data export. said_at is the moment the chat
			// showed it live by, so the two are one line.
			ev.Text = m.Body
			ev.Details["said_at"] = m.At.UTC().Format(time.RFC3339Nano)
		}
		if c.Erased() {
			// Delivered while the customer was being erased: record that it
			// went, not where, and do not thread their answer back.
			sent.Address, sent.ThreadKeys = "", nil
		}
		if sent.Skipped == "" && sent.Address != "" {
			// Having written to this address for the complaint proves it is
			// its customer's: their answer from there joins the complaint.
			ev.Details["to"] = sent.Address
			after.addIdentity(EmailIdentity(sent.Address))
		}
		if !c.Erased() {
			watchUnseen(&after, m, sent, now)
		}
		ch := newChange(&c, after)
		ch.OnceKey = "sent:" + m.ID
		ch.Entries = []Entry{{At: now, Event: &ev}}
		if len(sent.ThreadKeys) > 0 {
			mapped, err := r.store.ThreadComplaints(ctx, sent.ThreadKeys)
			if err != nil {
				return Change{}, fmt.Errorf("looking up thread keys: %w", err)
			}
			for _, k := range sent.ThreadKeys {
				// A key another complaint already holds stays with it: threading
				// by the customer's reference must not move someone's thread.
				if cur := mapped[k]; cur == "" {
					ch.ThreadKeys = append(ch.ThreadKeys, ThreadClaim{Key: k})
				}
			}
		}
		return ch, nil
	})
	return err
}

// RecordUndeliverable records that the customer did not get a message and
// tells the owner, who must find another way to reach them.
func (r *Router) RecordUndeliverable(ctx context.Context, m CustomerMessage, cause error) error {
	_, err := r.update(ctx, m.Complaint.ID, func(c Complaint, now time.Time) (Change, error) {
		after := c
		after.UpdatedAt = now
		ev := Event{Type: EventDeliveryFailed, Actor: ActorRouter, Owner: c.Owner,
			Reason:  fmt.Sprintf("the customer did not get the %s: %v", m.Kind, cause),
			Details: map[string]string{"kind": string(m.Kind), "message": m.ID}}
		if m.Body != "" {
			ev.Text = m.Body
		}
		if c.Erased() {
			ev.Reason, ev.Text = "the customer did not get the "+string(m.Kind)+" (their data was erased meanwhile)", ""
		}
		ch := newChange(&c, after)
		ch.OnceKey = "undeliverable:" + m.ID
		ch.Entries = []Entry{{At: now, Event: &ev}}
		ch.Notifications = []Notification{notification(NotifyDeliveryFailed, ch.After, c.Owner, now, &ev, nil)}
		return ch, nil
	})
	return err
}

// MayAct reports whether the owner id may act on the complaint: its owner,
// the lead of its team, or the colleague covering while the owner is away.
// The cover is judged from the latest absences this router read (every
// change reads them); MayActNow reads them fresh.
func (r *Router) MayAct(c Complaint, ownerID string) bool {
	if ownerID == "" {
		return false
	}
	if ownerID == c.Owner {
		return true
	}
	if t, ok := r.dir.Team(c.Team); ok && t.Lead == ownerID {
		return true
	}
	snap := r.snapshot.Load()
	if snap == nil {
		return false
	}
	now := r.clock()
	a, ok := snap.off[c.Owner]
	if !ok || !a.At(now) {
		return false
	}
	// The owner's cover, or whoever covers for them while they are away
	// too (the one who gets the owner's notifications).
	return a.Cover == ownerID || actingCover(snap.off, c.Owner, now, r.activeOwner) == ownerID
}

// MayActNow is MayAct with the absences read from the store now.
func (r *Router) MayActNow(ctx context.Context, c Complaint, ownerID string) (bool, error) {
	if _, err := r.away(ctx, r.clock()); err != nil {
		return false, err
	}
	return r.MayAct(c, ownerID), nil
}

// Directory returns the roster the router assigns from.
func (r *Router) Directory() Directory { return r.dir }

// Reach says by which channel a reply would reach the complaint's customer,
// or why none can (a ValidationError of field "channel"): what a reply form
// tells staff before they write.
func (r *Router) Reach(c Complaint) (Channel, error) { return r.reach(c) }

// reach asks the wiring how the complaint's customer can be written to.
func (r *Router) reach(c Complaint) (Channel, error) {
	if c.Unreachable != "" {
		return "", invalid("channel", "the customer of %s cannot be written to: %s", c.ID, c.Unreachable)
	}
	if r.reachability == nil {
		return "", invalid("channel", "complaint %s came by %s, and no channel is configured that can write to the customer", c.ID, c.Channel)
	}
	via, err := r.reachability.Reach(c)
	if err != nil {
		return "", invalid("channel", "%v", err)
	}
	return via, nil
}

// customerMessage builds what is queued for the customer; tl is the
// complaint's timeline, which says where in their conversation it belongs.
func (r *Router) customerMessage(kind CustomerMessageKind, c Complaint, tl []Entry, actor, body string, now time.Time) CustomerMessage {
	m := CustomerMessage{
		ID:   c.ID + ":v" + strconv.FormatInt(c.Version, 10) + ":" + string(kind),
		Kind: kind, At: now, Complaint: c, Author: actor, Body: body,
	}
	m.OwnerName = r.ownerName(c.Owner)
	m.AuthorName = m.OwnerName
	if actor != c.Owner {
		if o, ok := r.dir.Owner(actor); ok {
			m.AuthorName, m.CoverName = o.Name+" for "+m.OwnerName, o.Name
		}
	}
	for _, e := range tl {
		if e.Message != nil {
			m.InReplyTo = e.Message
			m.References = append(m.References, e.Message.ThreadKeys...)
		}
	}
	return m
}

func (r *Router) ownerName(id string) string {
	if o, ok := r.dir.Owner(id); ok && o.Name != "" {
		return o.Name
	}
	return id
}

// errUnchanged ends an update that has nothing to change.
var errUnchanged = errors.New("nothing to change")

// updateWithTimeline is update for steps that need the complaint's timeline.
func (r *Router) updateWithTimeline(ctx context.Context, id string, step func(Complaint, []Entry, time.Time) (Change, error)) (Complaint, error) {
	return r.update(ctx, id, func(c Complaint, now time.Time) (Change, error) {
		tl, err := r.store.Timeline(ctx, id)
		if err != nil {
			return Change{}, timelineErr(id, err)
		}
		return step(c, tl, now)
	})
}
