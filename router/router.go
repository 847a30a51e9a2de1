package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/ctxtime"
)

// ActorRouter is the actor recorded for decisions the router takes itself.
const ActorRouter = "router"

// maxCommitAttempts bounds how often a change is recomputed after losing a
// race to a concurrent change of the same complaint.
const maxCommitAttempts = 10

// Config wires a Router.
type Config struct {
	Store     Store
	Directory Directory
	Rules     *Rules
	// ReopenWindow: a message on a complaint closed less than this long ago
	// reopens it with the same owner; later ones open a follow-up complaint.
	ReopenWindow time.Duration
	// Reachability says how customers can be written to; without it, replies
	// are refused and acknowledgements are not queued.
	Reachability Reachability
	// Policy sets deadlines, calendars, reminders and planned absences; nil
	// sets no deadlines. Timers, absences and reports need a Store that is
	// also an AccountabilityStore.
	Policy *Policy
	// CSAT, when set, asks customers after the close how satisfied they are.
	CSAT *CSAT
	// OnEvent, when set, is told the type of every event a lifecycle step
	// (Close, Reassign, Acknowledge, …) committed, whoever asked for it (API,
	// Slack, …): for metrics. Routing reports through its Outcome instead.
	// It is called after the commit and must not block.
	OnEvent func(EventType)
	// Categories are the root causes a close must choose from (compared
	// without regard to case, stored as configured); empty: any category,
	// or none.
	Categories []string
	// Digest, when set, sends the weekly digest (see CheckDigest).
	Digest *DigestSchedule
	Clock  func() time.Time
	Logger *slog.Logger
}

// Router threads and assigns inbound messages and carries out the complaint
// lifecycle. It is safe for concurrent use, also across processes sharing one
// Store: every change is guarded and retried on conflict.
type Router struct {
	store Store
	// dir and rules read the settings in force (live), which Reload swaps.
	dir          Directory
	rules        liveRules
	live         liveSettings
	reopenWindow time.Duration
	reachability Reachability
	acct         AccountabilityStore
	csat         *CSAT
	snapshot     atomic.Pointer[awaySnapshot]
	onEvent      func(EventType)
	categories   []string
	digest       *DigestSchedule
	digestDone   digestDone
	clock        func() time.Time
	log          *slog.Logger
}

// New checks the configuration and builds a Router.
func New(cfg Config) (*Router, error) {
	if cfg.Store == nil || cfg.Directory == nil || cfg.Rules == nil {
		return nil, errors.New("router: store, directory and rules are required")
	}
	if err := cfg.Rules.Validate(cfg.Directory); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if cfg.ReopenWindow < 0 {
		return nil, errors.New("router: reopen window must not be negative")
	}
	r := &Router{store: cfg.Store, reopenWindow: cfg.ReopenWindow, reachability: cfg.Reachability,
		csat: cfg.CSAT, onEvent: cfg.OnEvent, clock: cfg.Clock, log: cfg.Logger, digest: cfg.Digest}
	for _, c := range cfg.Categories {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(r.categories, c) {
			if len(c) > maxCategoryLen {
				return nil, fmt.Errorf("router: category %q is longer than %d bytes", c, maxCategoryLen)
			}
			r.categories = append(r.categories, c)
		}
	}
	r.dir, r.rules = liveDirectory{&r.live}, liveRules{&r.live}
	if err := r.Reload(cfg.Directory, cfg.Rules, cfg.Policy); err != nil {
		return nil, err
	}
	r.acct, _ = cfg.Store.(AccountabilityStore)
	if err := cfg.CSAT.validate(); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	// Times are kept in UTC to the millisecond, like every index of them (a
	// store keeps them compact that way).
	clock := r.clock
	if clock == nil {
		clock = time.Now
	}
	r.clock = func() time.Time { return clock().UTC().Truncate(time.Millisecond) }
	if r.onEvent == nil {
		r.onEvent = func(EventType) {}
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r, nil
}

// OutcomeKind says what routing did with a message.
type OutcomeKind string

// Routing outcomes.
const (
	OutcomeOpened    OutcomeKind = "opened"
	OutcomeAttached  OutcomeKind = "attached"
	OutcomeReopened  OutcomeKind = "reopened"
	OutcomeDuplicate OutcomeKind = "duplicate"
	// OutcomeDeliveryReport: the message reported that something we sent
	// did not arrive, and was recorded on that complaint.
	OutcomeDeliveryReport OutcomeKind = "delivery_report"
)

// Outcome reports where a message landed.
type Outcome struct {
	Kind         OutcomeKind
	ComplaintID  string
	Owner        string
	OverCapacity bool
}

// Route puts msg on exactly one complaint: the one it continues, or a new one
// with an owner. A redelivered message changes nothing: the change is
// applied once per message id, and the queue acknowledges it with its batch.
func (r *Router) Route(ctx context.Context, msg Message) (Outcome, error) {
	if err := checkRoutable(msg); err != nil {
		return Outcome{}, Permanent(fmt.Errorf("message %q cannot be routed: %w", msg.ID, err))
	}
	// A redelivered message is found by the commit's once-guard (and only
	// acknowledged): no separate look-up first.
	var reserved string // a new complaint keeps its id across conflict retries
	if msg.Language == "" {
		msg.Language = DetectLanguage(msg.Subject + "\n" + msg.Body)
	}
	for attempt := 1; ; attempt++ {
		// Read what routing needs afresh on every attempt (a conflict
		// means it changed); the commit's cover copies use it too.
		ctx, err := r.prefetch(ctx, msg)
		if err != nil {
			return Outcome{}, fmt.Errorf("routing message %s: reading what routing needs: %w", msg.ID, err)
		}
		p, err := r.planRoute(ctx, msg, &reserved)
		if err != nil {
			return Outcome{}, fmt.Errorf("routing message %s: %w", msg.ID, err)
		}
		p.change.MessageID = msg.ID
		err = r.commit(ctx, p.change)
		switch {
		case err == nil:
			return p.outcome, nil
		case errors.Is(err, ErrDuplicate):
			out := Outcome{Kind: OutcomeDuplicate}
			if a := (*AppliedError)(nil); errors.As(err, &a) {
				out.ComplaintID = a.ComplaintID
			}
			return out, nil
		case errors.Is(err, ErrConflict) && attempt < maxCommitAttempts:
			if errors.Is(err, ErrIDTaken) {
				reserved = "" // plan again under a fresh id
			}
			if err := pause(ctx, attempt); err != nil {
				return Outcome{}, err
			}
		default:
			return Outcome{}, fmt.Errorf("routing message %s: %w", msg.ID, err)
		}
	}
}

func checkRoutable(msg Message) error {
	switch {
	case msg.ID == "":
		return invalid("id", "is empty")
	case msg.Channel == "":
		return invalid("channel", "is empty")
	case strings.TrimSpace(msg.Body) == "":
		return invalid("body", "is empty")
	}
	return nil
}

type routePlan struct {
	change  Change
	outcome Outcome
}

func (r *Router) planRoute(ctx context.Context, msg Message, reserved *string) (routePlan, error) {
	now := r.clock()
	if msg.Language == "" {
		msg.Language = DetectLanguage(msg.Subject + "\n" + msg.Body)
	}
	if rep := msg.DeliveryReport; rep != nil && rep.For != "" {
		c, found, err := r.complaintByThreadKey(ctx, rep.For)
		if err != nil {
			return routePlan{}, err
		}
		if found {
			return r.planDeliveryReport(msg, now, c), nil
		}
		// Not about anything we sent: an ordinary message (a stray bounce).
	}
	th, err := r.thread(ctx, msg)
	if err != nil {
		return routePlan{}, err
	}
	switch c := th.complaint; {
	case c == nil:
		return r.planNew(ctx, msg, now, th, nil, reserved)
	case c.Status == StatusOpen:
		return r.planAttach(msg, now, th), nil
	case now.Sub(c.ClosedAt) <= r.reopenWindow:
		return r.planReopen(ctx, msg, now, th)
	default:
		return r.planNew(ctx, msg, now, th, c, reserved)
	}
}

// threading is what the router found about the conversation a message
// continues.
type threading struct {
	complaint *Complaint
	via       string
	// mapped holds the complaint each of the message's thread keys (and their
	// customer-scoped variants) pointed to when looked up.
	mapped map[string]string
	// notes record references that were not followed, and why.
	notes []string
	// unknown holds complaint ids that keys pointed to but that do not exist.
	unknown map[string]bool
	// mentioned are the complaints the message referred to but could not
	// join, because its sender is not proven to be their customer; each
	// gets a line saying which complaint the message opened instead.
	mentioned []string
	// notMentioned are such complaints whose timelines have
	// MaxMentionLines of these lines already: they get no more.
	notMentioned []string
}

// MaxMentionLines caps the "mentioned" lines messages of other senders add
// to one complaint's timeline (with a store that counts them); the
// complaints those messages open still name it.
const MaxMentionLines = 20

// MentionCounter is a store that counts the "mentioned" lines commits add
// to each complaint's timeline.
type MentionCounter interface {
	MentionLines(ctx context.Context, complaintID string) (int, error)
}

// scopedThreadKey is the variant of a thread key claimed when the plain key
// belongs to another customer's complaint, so the second customer's
// conversation still threads.
func scopedThreadKey(key, customerKey string) string { return key + "|" + customerKey }

// ScopedThreadKey is scopedThreadKey for the store's migrations, which move
// a customer's scoped keys when their customer key changes.
func ScopedThreadKey(key, customerKey string) string { return scopedThreadKey(key, customerKey) }

// maxMergeHops bounds how far a reference follows complaints merged into
// others (a merged complaint's survivor may itself have been merged).
const maxMergeHops = 8

func (r *Router) thread(ctx context.Context, msg Message) (threading, error) {
	var th threading
	customerKey := msg.Customer.Key(msg.Channel)
	pre := prefetched(ctx)
	if pre != nil {
		th.mapped = pre.Threads
	} else if lookup := threadLookup(msg); len(lookup) > 0 {
		m, err := r.store.ThreadComplaints(ctx, lookup)
		if err != nil {
			return th, fmt.Errorf("looking up thread keys: %w", err)
		}
		th.mapped = m
	}
	follow := func(id, via string) (bool, error) {
		c, ok, err := pre.complaint(id)
		if !ok {
			c, err = r.store.Complaint(ctx, id)
		}
		// A reference to a merged complaint continues on the one it was
		// merged into.
		for hops := 0; err == nil && c.MergedInto != "" && hops < maxMergeHops; hops++ {
			c, err = r.store.Complaint(ctx, c.MergedInto)
		}
		if errors.Is(err, ErrNotFound) {
			th.notes = append(th.notes, fmt.Sprintf("%s refers to unknown complaint %s", via, id))
			if th.unknown == nil {
				th.unknown = map[string]bool{}
			}
			th.unknown[id] = true
			return false, nil
		}
		if err != nil {
			return false, loadErr(id, err)
		}
		if !provenSender(c, msg) {
			if !slices.Contains(th.mentioned, c.ID) && !slices.Contains(th.notMentioned, c.ID) {
				th.notes = append(th.notes, fmt.Sprintf("mentions %s (by %s), sender not verified as its customer", c.ID, via))
				// A flood of strangers' messages naming one complaint must
				// not bury its timeline (read only on this path: a proven
				// sender never comes here).
				full := false
				if mc, ok := r.store.(MentionCounter); ok {
					n, err := mc.MentionLines(ctx, c.ID)
					if err != nil {
						return false, fmt.Errorf("reading the mention lines of %s: %w", c.ID, err)
					}
					full = n >= MaxMentionLines
				}
				if full {
					th.notMentioned = append(th.notMentioned, c.ID)
				} else {
					th.mentioned = append(th.mentioned, c.ID)
				}
			}
			return false, nil
		}
		th.complaint, th.via = &c, via
		return true, nil
	}
	if msg.ComplaintID != "" {
		if ok, err := follow(CanonicalComplaintID(msg.ComplaintID), "complaint_id"); ok || err != nil {
			return th, err
		}
	}
	for _, k := range msg.ThreadKeys {
		keys := []string{k}
		if customerKey != "" {
			keys = []string{scopedThreadKey(k, customerKey), k}
		}
		for _, key := range keys {
			if id := th.mapped[key]; id != "" {
				if ok, err := follow(id, "thread key "+k); ok || err != nil {
					return th, err
				}
			}
		}
	}
	return th, nil
}

// mentions are the lines for the complaints a message named but could not
// join, saying which complaint it opened instead, so their owners can merge
// by hand if it is the same customer after all. They name that complaint,
// not its sender: a stranger's name and address on this customer's
// complaint would be in this customer's data export, and out of reach of
// the stranger's erasure.
func (th threading) mentions(msg Message, opened string, now time.Time) []Mention {
	out := make([]Mention, 0, len(th.mentioned))
	for _, id := range th.mentioned {
		details := map[string]string{"complaint": opened, "message": msg.ID, "channel": string(msg.Channel)}
		ev := Event{Type: EventMentioned, Actor: ActorRouter, Reason: MentionReason(details), Details: details}
		out = append(out, Mention{ComplaintID: id, Entry: Entry{At: now, Event: &ev}})
	}
	return out
}

// DetailMentions is the detail of a complaint's "opened" event that lists
// the complaints its first message mentioned (comma-separated ids).
const DetailMentions = "mentions"

// MentionReason is what a "mentioned" line says, from its details: which
// complaint mentions this one, and by which channel, without a word about
// who sent it (see threading.mentions). Lines written before said who; an
// export and an erasure put this in their place.
func MentionReason(details map[string]string) string {
	why := details["complaint"] + " mentions this complaint; its sender is not verified as this complaint's customer"
	if ch := details["channel"]; ch != "" {
		why += " (via " + ch + ")"
	}
	return why
}

// claims points the message's thread keys at complaintID where they are free,
// dangling or belong to the previous complaint of this conversation; a key
// owned by another customer's complaint is claimed in its customer-scoped form.
func (th threading) claims(msg Message, complaintID string) []ThreadClaim {
	var out []ThreadClaim
	customerKey := msg.Customer.Key(msg.Channel)
	for _, k := range msg.ThreadKeys {
		current := th.mapped[k]
		switch {
		case current == complaintID:
		case current == "" || (th.complaint != nil && current == th.complaint.ID) || th.unknown[current]:
			out = append(out, ThreadClaim{Key: k, Expect: current})
		case customerKey != "":
			scoped := scopedThreadKey(k, customerKey)
			if cur := th.mapped[scoped]; cur != complaintID {
				out = append(out, ThreadClaim{Key: scoped, Expect: cur})
			}
		}
	}
	return out
}

// complaintByThreadKey finds the complaint a thread key points at.
func (r *Router) complaintByThreadKey(ctx context.Context, key string) (Complaint, bool, error) {
	m, err := r.store.ThreadComplaints(ctx, []string{key})
	if err != nil {
		return Complaint{}, false, fmt.Errorf("looking up thread key %s: %w", key, err)
	}
	id := m[key]
	if id == "" {
		return Complaint{}, false, nil
	}
	c, err := r.store.Complaint(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Complaint{}, false, nil
	}
	if err != nil {
		return Complaint{}, false, loadErr(id, err)
	}
	return c, true, nil
}

// planDeliveryReport records a report that something we sent to the
// customer did not arrive (an e-mail bounce) on its complaint and tells the
// owner, who must reach the customer another way. It is not the customer
// writing: the complaint is neither reopened nor are its clocks touched.
func (r *Router) planDeliveryReport(msg Message, now time.Time, c Complaint) routePlan {
	after := c
	after.Messages++
	after.UpdatedAt = now
	ev := Event{Type: EventDeliveryFailed, Actor: ActorRouter, Owner: c.Owner,
		Reason:  "the customer did not get our message: " + msg.DeliveryReport.Status,
		Details: map[string]string{"report_for": msg.DeliveryReport.For, "report": msg.ID}}
	ch := newChange(&c, after)
	ch.Entries = []Entry{{At: now, Message: &msg}, {At: now, Event: &ev}}
	ch.Notifications = []Notification{notification(NotifyDeliveryFailed, ch.After, c.Owner, now, &ev, &msg)}
	return routePlan{change: ch, outcome: Outcome{Kind: OutcomeDeliveryReport, ComplaintID: c.ID, Owner: c.Owner}}
}

func (r *Router) planAttach(msg Message, now time.Time, th threading) routePlan {
	before := *th.complaint
	after := before
	after.Messages++
	after.LastMessageAt = msg.ReceivedAt
	after.UpdatedAt = now
	after.Customer = completeCustomer(after.Customer, after.Channel, msg.Customer, msg.Channel)
	// The latest message decides whether the customer can be written to: a
	// mail that can be answered makes an unreachable complaint reachable.
	after.Unreachable = msg.Unreachable
	resumed := r.customerWrote(&after, now)
	ch := newChange(&before, after)
	ch.ThreadKeys = th.claims(msg, after.ID)
	ch.Entries = []Entry{{At: now, Message: &msg}}
	if resumed != nil {
		ch.Entries = append(ch.Entries, Entry{At: now, Event: resumed})
	}
	ch.Notifications = []Notification{notification(NotifyMessage, ch.After, after.Owner, now, nil, &msg)}
	return routePlan{change: ch, outcome: Outcome{Kind: OutcomeAttached, ComplaintID: after.ID, Owner: after.Owner}}
}

func (r *Router) planReopen(ctx context.Context, msg Message, now time.Time, th threading) (routePlan, error) {
	before := *th.complaint
	after := before
	after.Status = StatusOpen
	after.ClosedAt = time.Time{}
	after.Resolution, after.Category = "", ""
	// The satisfaction answer was about an outcome the customer now says
	// did not hold: it leaves the report, and the next close asks again
	// (with a fresh budget of changes).
	after.CSAT, after.CSATChanges = 0, 0
	after.Reopens++
	after.Messages++
	after.LastMessageAt = msg.ReceivedAt
	after.UpdatedAt = now
	after.Customer = completeCustomer(after.Customer, after.Channel, msg.Customer, msg.Channel)
	after.Unreachable = msg.Unreachable
	reopened := Event{
		Type:   EventReopened,
		Actor:  ActorRouter,
		Owner:  before.Owner,
		Reason: fmt.Sprintf("the customer wrote again %s after closing (within the %s reopen window, via %s)", roundDuration(now.Sub(before.ClosedAt)), roundDuration(r.reopenWindow), th.via),
	}
	entries := []Entry{{At: now, Message: &msg}, {At: now, Event: &reopened}}
	var capacity *CapacityGuard
	var assignedAt time.Time
	if _, onRoster := r.dir.Owner(before.Owner); !onRoster {
		// The owner left: a complaint never waits without an owner, so this is
		// the one case where the router itself assigns anew, and says why.
		a, err := r.assign(ctx, before.Team, msg)
		if err != nil {
			return routePlan{}, err
		}
		after.Owner, after.Team = a.owner.ID, a.team
		reopened.Owner = a.owner.ID
		entries = append(entries, Entry{At: now, Event: &Event{
			Type: EventAssigned, Actor: ActorRouter, Owner: a.owner.ID, PreviousOwner: before.Owner,
			Reason:  fmt.Sprintf("previous owner %s is no longer on the roster → team %s → %s", before.Owner, a.team, a.reason),
			Details: a.details(),
		}})
		capacity, assignedAt = a.guard(), now
	}
	// Reopened means not resolved: the clocks start again.
	// A reply still waiting to be seen in chat keeps its e-mail fallback.
	after.Timers = slices.DeleteFunc(slices.Clone(after.Timers), func(t Timer) bool { return t.Kind != TimerUnseen })
	if len(after.Timers) == 0 {
		after.Timers = nil
	}
	after.WaitingSince, after.RespondBy, after.ResolveBy = time.Time{}, time.Time{}, time.Time{}
	r.armNew(&after, now)
	ch := newChange(&before, after)
	ch.ThreadKeys = th.claims(msg, after.ID)
	ch.Entries = entries
	ch.Capacity = capacity
	ch.AssignedAt = assignedAt
	ch.Notifications = []Notification{notification(NotifyReopened, ch.After, after.Owner, now, &reopened, &msg)}
	return routePlan{change: ch, outcome: Outcome{Kind: OutcomeReopened, ComplaintID: after.ID, Owner: after.Owner}}, nil
}

// planNew opens a complaint; previous is the closed complaint this one follows
// up, if any.
func (r *Router) planNew(ctx context.Context, msg Message, now time.Time, th threading, previous *Complaint, reserved *string) (routePlan, error) {
	m := r.rules.match(msg, msg.Language)
	a, err := r.assign(ctx, m.team, msg)
	if err != nil {
		return routePlan{}, err
	}
	if *reserved == "" {
		id, err := r.store.NextComplaintID(ctx)
		if err != nil {
			return routePlan{}, fmt.Errorf("reserving a complaint id: %w", err)
		}
		*reserved = id
	}
	reason := m.reason + " → team " + a.team + " → " + a.reason
	c := Complaint{
		ID: *reserved, Status: StatusOpen, Owner: a.owner.ID, Team: a.team,
		Channel: msg.Channel, Subject: msg.Subject, Language: msg.Language,
		Customer: msg.Customer, CustomerKey: msg.Customer.Key(msg.Channel),
		RoutingReason: reason, CreatedAt: now, UpdatedAt: now, LastMessageAt: msg.ReceivedAt, Messages: 1,
		Priority: m.priority, Unreachable: msg.Unreachable,
	}
	if msg.ReplyTo != "" {
		c.addIdentity(EmailIdentity(msg.ReplyTo))
	}
	r.armNew(&c, now)
	openedWhy := "new conversation"
	if previous != nil {
		c.FollowUpOf = previous.ID
		openedWhy = fmt.Sprintf("follow-up of %s, closed %s ago (beyond the %s reopen window)", previous.ID, roundDuration(now.Sub(previous.ClosedAt)), roundDuration(r.reopenWindow))
	}
	if len(th.notes) > 0 {
		openedWhy += "; " + strings.Join(th.notes, "; ")
	}
	opened := Event{Type: EventOpened, Actor: ActorRouter, Reason: openedWhy, Details: map[string]string{"channel": string(msg.Channel)}}
	if len(th.mentioned) > 0 {
		// Where this complaint left "mentioned" lines: its erasure finds
		// them there.
		opened.Details[DetailMentions] = strings.Join(th.mentioned, ",")
	}
	assigned := Event{Type: EventAssigned, Actor: ActorRouter, Owner: a.owner.ID, Reason: reason, Details: a.details()}
	if c.Unreachable != "" {
		// The owner learns with the assignment that only another way (a
		// phone number in the mail, the order system) reaches this customer.
		assigned.Details["customer_unreachable"] = c.Unreachable
	}
	ch := newChange(nil, c)
	ch.ThreadKeys = th.claims(msg, c.ID)
	ch.Capacity = a.guard()
	ch.AssignedAt = now
	ch.Entries = []Entry{{At: now, Message: &msg}, {At: now, Event: &opened}, {At: now, Event: &assigned}}
	ch.Notifications = []Notification{notification(NotifyAssigned, ch.After, c.Owner, now, &assigned, &msg)}
	ch.Entries, ch.CustomerMessages = r.acknowledge(ch.After, msg, ch.Entries, now)
	ch.Mentions = th.mentions(msg, c.ID, now)
	return routePlan{change: ch, outcome: Outcome{Kind: OutcomeOpened, ComplaintID: c.ID, Owner: c.Owner, OverCapacity: a.overCapacity}}, nil
}

// newChange starts a change from before (nil for a new complaint) to after,
// stamping the version the store will check.
func newChange(before *Complaint, after Complaint) Change {
	after.Version = 1
	if before != nil {
		after.Version = before.Version + 1
	}
	return Change{Before: before, After: after}
}

func notification(kind NotificationKind, c Complaint, recipient string, at time.Time, ev *Event, msg *Message) Notification {
	return Notification{
		ID:   c.ID + ":v" + strconv.FormatInt(c.Version, 10) + ":" + string(kind) + ":" + recipient,
		Kind: kind, Recipient: recipient, At: at, Complaint: c, Event: ev, Message: msg,
	}
}

func roundDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	default:
		return d.Round(time.Second).String()
	}
}

// pause backs off briefly, with jitter, before recomputing a conflicted change.
func pause(ctx context.Context, attempt int) error {
	return ctxtime.Sleep(ctx, time.Duration(attempt*attempt)*time.Millisecond+rand.N(2*time.Millisecond))
}

// acknowledge queues the confirmation that tells a new complaint's customer
// who owns it (attention first), unless the customer cannot be written to or
// the channel marked the message as one that must not get automatic replies;
// a held-back acknowledgement is recorded with its reason.
func (r *Router) acknowledge(c Complaint, msg Message, entries []Entry, now time.Time) ([]Entry, []CustomerMessage) {
	if c.Unreachable != "" {
		ev := Event{Type: EventSent, Actor: ActorRouter, Owner: c.Owner,
			Reason:  "acknowledgement not sent: the customer cannot be written to: " + c.Unreachable,
			Details: map[string]string{"kind": string(ToCustomerAcknowledgement)}}
		return append(entries, Entry{At: now, Event: &ev}), nil
	}
	if r.reachability == nil {
		return entries, nil
	}
	if _, err := r.reachability.Reach(c); err != nil {
		return entries, nil
	}
	if why := msg.NoAutoReply; why != "" {
		ev := Event{Type: EventSent, Actor: ActorRouter, Owner: c.Owner, Reason: "acknowledgement not sent: " + why,
			Details: map[string]string{"kind": string(ToCustomerAcknowledgement)}}
		return append(entries, Entry{At: now, Event: &ev}), nil
	}
	return entries, []CustomerMessage{r.customerMessage(ToCustomerAcknowledgement, c, []Entry{{Message: &msg}}, ActorRouter, "", now)}
}
