package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on free text that staff enter; they keep timelines and Slack
// messages readable and stop accidental pastes of whole documents.
const (
	maxResolutionLen = 4000
	maxReasonLen     = 2000
	maxCategoryLen   = 100
	maxPreventionLen = 2000
)

// The same limits in bytes of UTF-8 (a Japanese character takes three), for
// forms that must refuse text before they close rather than lose it when
// the router refuses it afterwards.
const (
	MaxResolutionBytes = maxResolutionLen
	MaxReasonBytes     = maxReasonLen // reassign and merge reasons, promise notes
	MaxPreventionBytes = maxPreventionLen
	MaxReplyBytes      = maxReplyLen
)

// Closing is what staff say when they close a complaint: how it was resolved
// (internal), its root cause from the configured categories, and optionally
// what would prevent the next complaint like it (read back in the report).
type Closing struct {
	Resolution string
	Category   string
	Prevention string
	// Quiet closes without writing to the customer (no satisfaction
	// question) and may leave the category empty: an erasure on request
	// closes this way.
	Quiet bool
}

// Close closes an open complaint with its resolution and category.
func (r *Router) Close(ctx context.Context, id, actor, resolution, category string) (Complaint, error) {
	return r.CloseWith(ctx, id, actor, Closing{Resolution: resolution, Category: category})
}

// Categories are the configured root causes a close chooses from (empty:
// free text).
func (r *Router) Categories() []string { return slices.Clone(r.categories) }

// category checks a close's category against the configured list and
// returns it as configured.
func (r *Router) category(c string) (string, error) {
	if len(r.categories) == 0 {
		return c, nil
	}
	allowed := strings.Join(r.categories, ", ")
	if c == "" {
		return "", invalid("category", "is required: choose the root cause from %s", allowed)
	}
	for _, k := range r.categories {
		if strings.EqualFold(k, c) {
			return k, nil
		}
	}
	return "", invalid("category", "%q is not a configured category; choose one of %s", c, allowed)
}

// CloseWith closes an open complaint. The owner stays on record; a customer
// message within the reopen window brings it back to them.
func (r *Router) CloseWith(ctx context.Context, id, actor string, closing Closing) (Complaint, error) {
	resolution, category := strings.TrimSpace(closing.Resolution), strings.TrimSpace(closing.Category)
	prevention := strings.TrimSpace(closing.Prevention)
	switch {
	case resolution == "":
		return Complaint{}, invalid("resolution", "is required: say how the complaint was resolved")
	case len(resolution) > maxResolutionLen:
		return Complaint{}, invalid("resolution", "is longer than %d bytes", maxResolutionLen)
	case len(category) > maxCategoryLen:
		return Complaint{}, invalid("category", "is longer than %d bytes", maxCategoryLen)
	case len(prevention) > maxPreventionLen:
		return Complaint{}, invalid("prevention", "is longer than %d bytes", maxPreventionLen)
	}
	// An erasure on request closes without staff having judged the cause:
	// it may leave the category empty rather than invent one.
	if !(closing.Quiet && category == "") {
		checked, err := r.category(category)
		if err != nil {
			return Complaint{}, err
		}
		category = checked
	}
	actor, err := r.actor(actor)
	if err != nil {
		return Complaint{}, err
	}
	return r.updateWithTimeline(ctx, id, func(c Complaint, tl []Entry, now time.Time) (Change, error) {
		if c.Status != StatusOpen {
			return Change{}, fmt.Errorf("complaint %s is already closed: %w", id, ErrInvalidState)
		}
		after := c
		after.Status, after.ClosedAt, after.UpdatedAt = StatusClosed, now, now
		after.Resolution, after.Category, after.Prevention = resolution, category, prevention
		// Closing settles the clocks: a pending promise is kept by the close,
		// every timer is cancelled in the same commit (but a reply's unseen
		// fallback: the customer must still get it).
		kept := r.keepPromise(&after, now, actor)
		after.Timers, after.WaitingSince = keepUnseen(c.Timers), time.Time{}
		ev := Event{Type: EventClosed, Actor: actor, Owner: c.Owner, Reason: resolution}
		if category != "" || prevention != "" {
			ev.Details = map[string]string{}
			if category != "" {
				ev.Details["category"] = category
			}
			if prevention != "" {
				ev.Details["prevention"] = prevention
			}
		}
		ch := newChange(&c, after)
		if kept != nil {
			ch.Entries = append(ch.Entries, Entry{At: now, Event: kept})
		}
		ch.Entries = append(ch.Entries, Entry{At: now, Event: &ev})
		ch.Notifications = []Notification{notification(NotifyClosed, ch.After, c.Owner, now, &ev, nil)}
		if !closing.Quiet {
			ch.CustomerMessages = r.csatQuestion(ch.After, tl, now)
		}
		return ch, nil
	})
}

// Reassign hands an open complaint to another owner. It is the only way an
// owner changes, so it requires a reason and is recorded with who did it.
func (r *Router) Reassign(ctx context.Context, id, actor, to, reason string) (Complaint, error) {
	to, reason = strings.TrimSpace(to), strings.TrimSpace(reason)
	switch {
	case to == "":
		return Complaint{}, invalid("owner", "is required: name the new owner")
	case reason == "":
		return Complaint{}, invalid("reason", "is required: say why the owner changes")
	case len(reason) > maxReasonLen:
		return Complaint{}, invalid("reason", "is longer than %d bytes", maxReasonLen)
	}
	owner, ok := r.dir.Owner(to)
	if !ok {
		return Complaint{}, invalid("owner", "unknown owner %q", to)
	}
	if !owner.Active {
		return Complaint{}, invalid("owner", "%s is not active", to)
	}
	actor, err := r.actor(actor)
	if err != nil {
		return Complaint{}, err
	}
	return r.update(ctx, id, func(c Complaint, now time.Time) (Change, error) {
		if c.Status != StatusOpen {
			return Change{}, fmt.Errorf("complaint %s is closed; only open complaints can be reassigned: %w", id, ErrInvalidState)
		}
		if c.Owner == to {
			return Change{}, fmt.Errorf("complaint %s is already owned by %s: %w", id, to, ErrInvalidState)
		}
		loads, err := r.store.OwnerLoads(ctx, []string{to})
		if err != nil {
			return Change{}, fmt.Errorf("reading the load of %s: %w", to, err)
		}
		after := c
		after.Owner, after.UpdatedAt = to, now
		ev := Event{Type: EventReassigned, Actor: actor, Owner: to, PreviousOwner: c.Owner, Reason: reason, Details: map[string]string{}}
		if !owner.InTeam(c.Team) {
			after.Team = owner.Teams[0]
			ev.Details["team"] = after.Team
		}
		if loads[to].Open >= owner.Capacity {
			ev.Details["over_capacity"] = "true"
		}
		ch := newChange(&c, after)
		ch.AssignedAt = now
		ch.Entries = []Entry{{At: now, Event: &ev}}
		ch.Notifications = []Notification{
			notification(NotifyReassigned, ch.After, to, now, &ev, nil),
			notification(NotifyReassigned, ch.After, c.Owner, now, &ev, nil),
		}
		return ch, nil
	})
}

// RecordDeliveryFailure puts on the timeline that something could not be
// delivered (a notification, a reply), so the failure is visible where staff
// look. It sends no notification of its own, so it cannot loop.
func (r *Router) RecordDeliveryFailure(ctx context.Context, complaintID, what string, cause error) error {
	_, err := r.update(ctx, complaintID, func(c Complaint, now time.Time) (Change, error) {
		after := c
		after.UpdatedAt = now
		ev := Event{Type: EventNotificationFailed, Actor: ActorRouter, Owner: c.Owner, Reason: what + ": " + cause.Error()}
		ch := newChange(&c, after)
		ch.Entries = []Entry{{At: now, Event: &ev}}
		return ch, nil
	})
	return err
}

// RecordNotificationRoute puts on the timeline that notification
// notificationID reached its recipient by a fallback route (what was
// refused, and how it got through instead), once per notification. Like
// RecordDeliveryFailure it sends no notification, so it cannot loop.
func (r *Router) RecordNotificationRoute(ctx context.Context, complaintID, notificationID, route, cause string) error {
	_, err := r.update(ctx, complaintID, func(c Complaint, now time.Time) (Change, error) {
		after := c
		after.UpdatedAt = now
		ev := Event{Type: EventNotificationRerouted, Actor: ActorRouter, Owner: c.Owner,
			Reason:  clipReason("reached by " + route + " after the usual route failed: " + cause),
			Details: map[string]string{"route": route, "notification": notificationID}}
		ch := newChange(&c, after)
		ch.OnceKey = "rerouted:" + notificationID
		ch.Entries = []Entry{{At: now, Event: &ev}}
		return ch, nil
	})
	return err
}

func clipReason(s string) string {
	if len(s) <= maxReasonLen {
		return s
	}
	for i := maxReasonLen; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return ""
}

// update runs one lifecycle step as a guarded change, recomputing it from fresh
// state when a concurrent change got there first.
func (r *Router) update(ctx context.Context, id string, step func(Complaint, time.Time) (Change, error)) (Complaint, error) {
	for attempt := 1; ; attempt++ {
		c, err := r.store.Complaint(ctx, id)
		if err != nil {
			return Complaint{}, loadErr(id, err)
		}
		ch, err := step(c, r.clock())
		if errors.Is(err, errUnchanged) {
			return c, nil
		}
		if err != nil {
			return Complaint{}, err
		}
		err = r.commit(ctx, ch)
		switch {
		case err == nil:
			for _, e := range ch.Entries {
				if e.Event != nil {
					r.onEvent(e.Event.Type)
				}
			}
			return ch.After, nil
		case errors.Is(err, ErrDuplicate):
			// The change carried a once key that was applied before: done.
			return c, nil
		case errors.Is(err, ErrConflict) && attempt < maxCommitAttempts:
			if err := pause(ctx, attempt); err != nil {
				return Complaint{}, err
			}
		default:
			return Complaint{}, complaintErr(err, id, "updating complaint "+id, "updating complaint")
		}
	}
}

// actor checks who is acting on a complaint, so the timeline never records a
// name that is no one: an owner id from the roster, or a system actor — a
// name with a source prefix ("cli:alice", "slack:U024BE7LH"), "api" or "cli".
// Empty means "api".
func (r *Router) actor(actor string) (string, error) {
	actor = actorOrDefault(actor)
	if _, ok := r.dir.Owner(actor); ok || actor == "api" || actor == "cli" || actor == ActorRouter || strings.Contains(actor, ":") {
		return actor, nil
	}
	ids := make([]string, 0, 8)
	for _, o := range r.dir.Owners() {
		ids = append(ids, o.ID)
	}
	return "", invalid("actor", "unknown owner %q (known: %s); act as an owner id, or leave it empty", actor, strings.Join(ids, ", "))
}

func actorOrDefault(actor string) string {
	if a := strings.TrimSpace(actor); a != "" {
		return a
	}
	return "api"
}

// OwnerStatus is an owner with their current load, and their absence if
// they are away now.
type OwnerStatus struct {
	Owner
	OwnerLoad
	Away *Absence `json:"away,omitempty"`
	// CoveredBy is who covers for the owner now: Away's cover, or, when that
	// colleague is away too or no longer on the roster, the one along their
	// covers who is at work (notifications and the right to act go there).
	// "" when the owner is not away now or names no cover.
	CoveredBy string `json:"covered_by,omitempty"`
	// NobodyCovers is true when the owner is away and no colleague along
	// their covers is at work (all away, no longer active, or covering each
	// other): their notifications reach no one present until someone
	// returns or the absences change.
	NobodyCovers bool `json:"nobody_covers,omitempty"`
	// Planned are the owner's absences that begin later, soonest first.
	Planned []Absence `json:"planned,omitempty"`
}

// Owners lists every owner on the roster with their open load.
func (r *Router) Owners(ctx context.Context) ([]OwnerStatus, error) {
	owners := r.dir.Owners()
	ids := make([]string, len(owners))
	for i, o := range owners {
		ids[i] = o.ID
	}
	loads, err := r.store.OwnerLoads(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("reading owner loads: %w", err)
	}
	now := r.clock()
	stored, err := r.recordedAbsences(ctx)
	if err != nil {
		return nil, err
	}
	roster := r.policyAbsences()
	off := effectiveAbsences(roster, stored, now)
	out := make([]OwnerStatus, len(owners))
	for i, o := range owners {
		out[i] = OwnerStatus{Owner: o, OwnerLoad: loads[o.ID], Planned: plannedAbsences(o.ID, roster, stored, now)}
		if a, ok := off[o.ID]; ok {
			out[i].Away = &a
			var atWork bool
			out[i].CoveredBy, atWork = coverAtWork(off, o.ID, now, r.activeOwner)
			out[i].NobodyCovers = a.Cover != "" && !atWork
		}
	}
	return out, nil
}

// Complaint returns one complaint with its whole timeline.
func (r *Router) Complaint(ctx context.Context, id string) (Complaint, []Entry, error) {
	c, err := r.store.Complaint(ctx, id)
	if err != nil {
		return Complaint{}, nil, loadErr(id, err)
	}
	tl, err := r.store.Timeline(ctx, id)
	if err != nil {
		return Complaint{}, nil, timelineErr(id, err)
	}
	return c, tl, nil
}

// Complaints lists complaints, newest first.
func (r *Router) Complaints(ctx context.Context, f Filter) ([]Complaint, error) {
	switch f.Status {
	case "", StatusOpen, StatusClosed:
	default:
		return nil, invalid("status", "must be open or closed, not %q", f.Status)
	}
	if f.Owner != "" {
		if _, ok := r.dir.Owner(f.Owner); !ok {
			return nil, invalid("owner", "unknown owner %q", f.Owner)
		}
	}
	switch {
	case f.Limit <= 0:
		f.Limit = 100
	case f.Limit > 1000:
		f.Limit = 1000
	}
	return r.store.Complaints(ctx, f)
}

// MessageComplaint tells where a message was routed, if it was.
func (r *Router) MessageComplaint(ctx context.Context, messageID string) (Complaint, bool, error) {
	id, found, err := r.store.MessageComplaint(ctx, messageID)
	if err != nil || !found {
		return Complaint{}, false, err
	}
	c, err := r.store.Complaint(ctx, id)
	return c, err == nil, err
}
