package router

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Channel names the medium a message came by; replies go back the same way.
type Channel string

// The customer channels forgetmenot knows.
const (
	ChannelWebhook Channel = "webhook"
	ChannelEmail   Channel = "email"
	ChannelForum   Channel = "forum"
	ChannelChat    Channel = "chat"
)

// KnownChannels lists every channel a routing rule may name.
var KnownChannels = []Channel{ChannelWebhook, ChannelEmail, ChannelForum, ChannelChat}

// Customer is who wrote. Customers never register: what we know is what the
// channel told us, so every field may be empty.
type Customer struct {
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// Key identifies the customer across complaints: the e-mail address when known
// (so the same person is recognised whatever channel they use), otherwise the
// channel's own customer id. Empty for an anonymous customer.
func (c Customer) Key(ch Channel) string {
	if e := strings.ToLower(strings.TrimSpace(c.Email)); e != "" {
		return "email:" + e
	}
	if c.ID != "" {
		return string(ch) + ":" + c.ID
	}
	return ""
}

// Label is a human description of the customer for logs and notifications.
func (c Customer) Label() string {
	switch {
	case c.Name != "" && c.Email != "":
		return c.Name + " <" + c.Email + ">"
	case c.Name != "":
		return c.Name
	case c.Email != "":
		return c.Email
	case c.ID != "":
		return "customer " + c.ID
	}
	return "anonymous customer"
}

// Message is one inbound customer message, as a channel hands it over.
type Message struct {
	// ID is assigned by the queue on ingest and is stable across redeliveries.
	ID string `json:"id"`
	// Channel and SourceID together are the ingest idempotency key.
	Channel  Channel `json:"channel"`
	SourceID string  `json:"source_id"`
	// Fingerprint, set by a channel whose source ids are chosen by the
	// sender (the webhook), digests the message's content: a later message
	// with the same source id but another fingerprint is refused
	// (ErrSourceReused) instead of being answered as a duplicate. Empty: the
	// source id alone decides. Not stored.
	Fingerprint string   `json:"-"`
	Customer    Customer `json:"customer"`
	Subject     string   `json:"subject,omitempty"`
	Body        string   `json:"body"`
	// Language is an ISO 639-1 code when the channel knows it; the router
	// detects it from the text otherwise.
	Language string `json:"language,omitempty"`
	// ThreadKeys are channel-scoped conversation identifiers ("webhook:order-77",
	// an e-mail Message-ID, a forum topic): a message sharing one with an earlier
	// message lands on the same complaint.
	ThreadKeys []string `json:"thread_keys,omitempty"`
	// ComplaintID is an explicit reference to an existing complaint.
	ComplaintID string `json:"complaint_id,omitempty"`
	// DefaultTeam is the channel's team for mail that no routing rule claims
	// (for example the team of the mailbox it arrived in).
	DefaultTeam string `json:"default_team,omitempty"`
	// Metadata is what the sender supplied or the channel read from the
	// message for staff to see (an order number, mail headers). The router
	// gives none of it meaning: facts it acts on travel in the typed fields
	// below, which only channel code sets.
	Metadata map[string]string `json:"metadata,omitempty"`
	// ReplyTo, set by a channel, is where the customer asked answers to go
	// (an e-mail's Reply-To). The complaint a message opens counts it as its
	// customer's, like the sender: replies go there even when no
	// acknowledgement did (held back for a web form's relay).
	ReplyTo string `json:"reply_to,omitempty"`
	// NoAutoReply, set by a channel, says why no automatic reply may be sent
	// to this message (an autoresponder, a mailing list, a bounce).
	NoAutoReply string `json:"no_auto_reply,omitempty"`
	// Unreachable, set by a channel, says why the customer cannot be written
	// to from this message at all (an e-mail without a usable sender
	// address): the router queues nothing for them and says so to the owner.
	Unreachable string `json:"unreachable,omitempty"`
	// DeliveryReport, set by a channel, marks the message as a report that
	// something we sent did not arrive (an e-mail bounce).
	DeliveryReport *DeliveryReport `json:"delivery_report,omitempty"`
	// Notes say what the channel changed while taking the message in (a name
	// cut to length, control characters removed), for staff.
	Notes      []string  `json:"notes,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// DeliveryReport is a report that something we sent did not arrive.
type DeliveryReport struct {
	// For is the thread key of what we sent (its e-mail Message-ID), which
	// leads to the complaint.
	For string `json:"for"`
	// Status says what failed, in the reporting system's words.
	Status string `json:"status,omitempty"`
}

// Status is where a complaint is in its lifecycle.
type Status string

// Complaint statuses. There is no "unassigned": a complaint has an owner from
// the moment it exists.
const (
	StatusOpen   Status = "open"
	StatusClosed Status = "closed"
)

// Complaint is one customer problem with one named owner.
type Complaint struct {
	// Version increases with every change; the store refuses a change computed
	// from an older version (optimistic locking). It is encoded first, so a
	// store can check it from the head of a stored complaint without decoding
	// the rest.
	Version     int64    `json:"version"`
	ID          string   `json:"id"`
	Status      Status   `json:"status"`
	Owner       string   `json:"owner"`
	Team        string   `json:"team"`
	Channel     Channel  `json:"channel"`
	Subject     string   `json:"subject,omitempty"`
	Language    string   `json:"language,omitempty"`
	Customer    Customer `json:"customer"`
	CustomerKey string   `json:"customer_key,omitempty"`
	// Identities are further proofs of who the customer is, beyond what
	// Customer says: addresses we wrote to for this complaint (a Reply-To),
	// and identities staff joined to it by a merge. See provenSender.
	Identities []string `json:"identities,omitempty"`
	// Unreachable says why the customer cannot be written to (from the
	// customer's latest message, see Message.Unreachable); empty when they
	// can. Replies are refused at once rather than failing in delivery.
	Unreachable string `json:"unreachable,omitempty"`
	// MergedInto names the complaint this one was merged into by staff.
	MergedInto string `json:"merged_into,omitempty"`
	// RoutingReason explains the original assignment: rule → team → owner.
	RoutingReason string    `json:"routing_reason"`
	FollowUpOf    string    `json:"follow_up_of,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	LastMessageAt time.Time `json:"last_message_at"`
	ClosedAt      time.Time `json:"closed_at,omitzero"`
	Resolution    string    `json:"resolution,omitempty"`
	Category      string    `json:"category,omitempty"`
	Prevention    string    `json:"prevention,omitempty"` // what would prevent the next one, said at close
	Messages      int       `json:"messages"`
	Reopens       int       `json:"reopens"`
	// AcknowledgedAt is when the owner first took the complaint in hand.
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	// FirstResponseAt is when staff first answered the customer.
	FirstResponseAt time.Time `json:"first_response_at,omitzero"`
	// RespondBy and ResolveBy are the complaint's deadlines for a first
	// response and for resolution (set by the accountability targets).
	RespondBy time.Time `json:"respond_by,omitzero"`
	ResolveBy time.Time `json:"resolve_by,omitzero"`
	// PromisedBy is the follow-up the owner promised, if one is pending.
	PromisedBy  time.Time `json:"promised_by,omitzero"`
	PromiseNote string    `json:"promise_note,omitempty"`
	// Priority comes from the routing rule that picked the team; targets may
	// depend on it.
	Priority string `json:"priority,omitempty"`
	// WaitingSince is set while the complaint waits on the customer (staff
	// answered last and promised nothing): the resolution clock is paused.
	WaitingSince time.Time `json:"waiting_since,omitzero"`
	// Timers are the pending reminders and breaches; the store keeps its due
	// index in step with them in the same atomic commit.
	Timers []Timer `json:"timers,omitempty"`
	// Breaches lists every deadline missed, by kind (response, resolution,
	// promise), oldest first. A breach never changes the owner.
	Breaches []string `json:"breaches,omitempty"`
	// Promises counts follow-ups promised; kept ones were followed by a reply
	// or the close in time, broken ones lapsed.
	Promises       int `json:"promises,omitempty"`
	PromisesKept   int `json:"promises_kept,omitempty"`
	PromisesBroken int `json:"promises_broken,omitempty"`
	// CSAT is the customer's satisfaction answer (1-5) after the close.
	CSAT   int       `json:"csat,omitempty"`
	CSATAt time.Time `json:"csat_at,omitzero"`
	// CSATChanges counts how often the customer changed their answer.
	CSATChanges int `json:"csat_changes,omitempty"`
}

// EventType names a change in a complaint's life.
type EventType string

// Event types recorded on a complaint's timeline.
const (
	EventOpened             EventType = "opened"
	EventAssigned           EventType = "assigned"
	EventReopened           EventType = "reopened"
	EventReassigned         EventType = "reassigned"
	EventClosed             EventType = "closed"
	EventNotificationFailed EventType = "notification_failed"
	// EventNotificationRerouted records that a notification reached its
	// recipient by a fallback route (Details "route": slack_plain,
	// lead_channel, email) after the usual one was refused.
	EventNotificationRerouted EventType = "notification_rerouted"
	EventAcknowledged         EventType = "acknowledged"
	EventReplied              EventType = "replied"
	EventPromised             EventType = "promised"
	EventNote                 EventType = "note"
	// EventSent records that something said to the customer left through its
	// channel (or why it was deliberately not sent, in Reason).
	EventSent EventType = "sent"
	// EventDeliveryFailed records that something said to the customer could
	// not be delivered.
	EventDeliveryFailed EventType = "delivery_failed"
	// EventReminder records a reminder sent before a deadline or promise
	// lapses, or a nudge about a complaint long waiting on the customer.
	EventReminder EventType = "reminder"
	// EventBreached records a missed deadline (the lead is alerted; the owner
	// stays).
	EventBreached EventType = "breached"
	// EventPromiseKept and EventPromiseBroken settle a promised follow-up.
	EventPromiseKept   EventType = "promise_kept"
	EventPromiseBroken EventType = "promise_broken"
	// EventWaiting and EventResumed mark the clock pausing while waiting on
	// the customer, and resuming when they write.
	EventWaiting EventType = "waiting_on_customer"
	EventResumed EventType = "resumed"
	// EventCSAT records the customer's satisfaction answer.
	EventCSAT EventType = "csat"
	// EventMentioned records that a message which named this complaint could
	// not join it, because its sender was not proven to be the customer; the
	// message opened the complaint in Details["complaint"] instead.
	EventMentioned EventType = "mentioned"
	// EventMerged records that staff merged one complaint into another: on
	// the surviving complaint Details["from"] names the merged one, on the
	// merged one Details["into"] names the survivor.
	EventMerged EventType = "merged"
	// EventErased records that the complaint's customer data was erased
	// (pseudonymised); Details name the erasure and the pseudonym.
	EventErased EventType = "erased"
)

// Event is one audited change: who did what, when and why.
type Event struct {
	Type          EventType `json:"type"`
	Actor         string    `json:"actor"`
	Owner         string    `json:"owner,omitempty"`
	PreviousOwner string    `json:"previous_owner,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	// Text is what staff wrote: a reply to the customer, an internal note, a
	// promise.
	Text    string            `json:"text,omitempty"`
	Details map[string]string `json:"details,omitempty"`
}

// Entry is one line of a complaint's timeline: a customer message or an event.
type Entry struct {
	At      time.Time `json:"at"`
	Message *Message  `json:"message,omitempty"`
	Event   *Event    `json:"event,omitempty"`
}

// NotificationKind says why staff are being told something.
type NotificationKind string

// Notification kinds.
const (
	NotifyAssigned     NotificationKind = "assigned"
	NotifyMessage      NotificationKind = "message"
	NotifyReopened     NotificationKind = "reopened"
	NotifyReassigned   NotificationKind = "reassigned"
	NotifyClosed       NotificationKind = "closed"
	NotifyAcknowledged NotificationKind = "acknowledged"
	NotifyReplied      NotificationKind = "replied"
	NotifyPromised     NotificationKind = "promised"
	// NotifyReminder warns the owner (and a cover) before a deadline or a
	// promise lapses; NotifyEscalation alerts the team lead at the breach.
	NotifyReminder   NotificationKind = "reminder"
	NotifyEscalation NotificationKind = "escalation"
	// NotifyDeliveryFailed tells the owner that the customer did not get
	// something said to them.
	NotifyDeliveryFailed NotificationKind = "delivery_failed"
	// NotifyComplaintRate alerts the lead that complaints per order (or
	// contact) crossed the configured threshold; it has no complaint.
	NotifyComplaintRate NotificationKind = "complaint_rate"
	// NotifyMerged tells owners that staff merged one complaint into another.
	NotifyMerged NotificationKind = "merged"
	// NotifyDigest is the weekly summary for the leads (Digest is set; it
	// has no complaint).
	NotifyDigest NotificationKind = "digest"
	// NotifyErased tells owners that the complaint's customer was erased on
	// request or by the retention period (issue 16): the complaint now holds
	// a pseudonym, and what was posted about it is redacted.
	NotifyErased NotificationKind = "erased"
)

// Notification is queued in the same atomic step as the change it reports and
// delivered to staff by a Notifier, with retries.
type Notification struct {
	// ID is unique per change and recipient and stable across redeliveries, so a
	// notifier can update rather than repeat.
	ID        string           `json:"id"`
	Kind      NotificationKind `json:"kind"`
	Recipient string           `json:"recipient"`
	At        time.Time        `json:"at"`
	Complaint Complaint        `json:"complaint"`
	Event     *Event           `json:"event,omitempty"`
	Message   *Message         `json:"message,omitempty"`
	Digest    *Digest          `json:"digest,omitempty"`
}

// Owner is a member of staff who can own complaints.
type Owner struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Email       string `json:"email"`
	SlackUserID string `json:"slack_user_id,omitempty"`
	// DiscourseUsername is the owner's forum account: their posts in a
	// complaint topic are recorded as their replies.
	DiscourseUsername string   `json:"discourse_username,omitempty"`
	Teams             []string `json:"teams"`
	Languages         []string `json:"languages,omitempty"`
	// Capacity is the number of open complaints the owner is expected to carry.
	Capacity int  `json:"capacity"`
	Active   bool `json:"active"`
}

// Speaks reports whether the owner handles the language; an owner without a
// language list handles any.
func (o Owner) Speaks(lang string) bool {
	return lang == "" || len(o.Languages) == 0 || slices.Contains(o.Languages, lang)
}

// InTeam reports whether the owner belongs to the team.
func (o Owner) InTeam(team string) bool { return slices.Contains(o.Teams, team) }

// Team groups owners; routing rules pick a team, the router picks one owner in it.
type Team struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Lead is the owner who receives escalations for the team (optional).
	Lead string `json:"lead,omitempty"`
}

// OwnerLoad is an owner's current open complaints and when they last received
// a new one (the tie-breaker between equally loaded owners).
type OwnerLoad struct {
	Open         int       `json:"open"`
	LastAssigned time.Time `json:"last_assigned,omitzero"`
}

// Filter selects complaints for listing. Empty fields do not filter.
type Filter struct {
	Status Status
	Owner  string
	// Customer is an e-mail address or a customer key such as "webhook:42".
	Customer string
	Limit    int
}

// Outgoing is one entry of the outbox: work to deliver after a change has been
// committed. Exactly one field is set.
type Outgoing struct {
	Notification *Notification    `json:"notification,omitempty"`
	Customer     *CustomerMessage `json:"customer,omitempty"`
}

// CanonicalComplaintID writes a complaint reference the way the router stores
// it: people type "c-1001" as often as "C-1001", and a customer's reference in
// a form or a subject is no different. Anything else is returned as it is
// (trimmed), to be refused or not found by whoever looks it up.
func CanonicalComplaintID(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 2 && (v[0] == 'c' || v[0] == 'C') && v[1] == '-' {
		if _, err := strconv.ParseUint(v[2:], 10, 64); err == nil {
			return "C" + v[1:]
		}
	}
	return v
}
