// Package console is the notifier used until a staff channel (Slack) is
// configured: it writes every notification to the structured log, so an
// assignment is never silent.
package console

import (
	"context"
	"log/slog"

	"github.com/forgetmenot/forgetmenot/router"
)

// Notifier logs notifications.
type Notifier struct {
	log *slog.Logger
	dir router.Directory
}

// New builds a console notifier; dir resolves owner ids to names.
func New(log *slog.Logger, dir router.Directory) *Notifier {
	return &Notifier{log: log, dir: dir}
}

// Notify writes n to the log. It cannot fail. The INFO line says what
// happened to which complaint and who owns it; what the customer wrote and
// who they are is personal data, kept out of INFO logs (which are shipped
// and kept widely) and written at DEBUG only.
func (n *Notifier) Notify(ctx context.Context, note router.Notification) error {
	c := note.Complaint
	owner := c.Owner
	if owner == "" { // about no one complaint (the complaint-rate alert)
		owner = note.Recipient
	}
	attrs := []any{
		"notification", note.ID,
		"complaint", c.ID,
		"owner", owner,
		"channel", c.Channel,
		"status", c.Status,
	}
	if o, ok := n.dir.Owner(owner); ok {
		attrs = append(attrs, "owner_name", o.Name)
	}
	if note.Recipient != owner {
		// Someone other than the owner is told: the lead, a cover.
		attrs = append(attrs, "to", note.Recipient)
	}
	if note.Event != nil && note.Event.Reason != "" {
		attrs = append(attrs, "reason", note.Event.Reason)
	}
	if c.Unreachable != "" {
		attrs = append(attrs, "customer_unreachable", c.Unreachable)
	}
	n.log.InfoContext(ctx, titleOf(note), attrs...)
	if !n.log.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	detail := []any{"notification", note.ID, "complaint", c.ID, "customer", c.Customer.Label(), "subject", c.Subject}
	if note.Message != nil {
		detail = append(detail, "text", excerpt(note.Message.Body, 200))
	} else if note.Event != nil && note.Event.Text != "" {
		detail = append(detail, "text", excerpt(note.Event.Text, 200))
	}
	n.log.DebugContext(ctx, titleOf(note)+" (what the customer wrote)", detail...)
	return nil
}

// titleOf is the log line's message: the kind of notification, or for the
// owner's notice of a missed deadline (a reminder by kind), that it was
// missed.
func titleOf(note router.Notification) string {
	if note.Kind == router.NotifyReminder && note.Event != nil &&
		(note.Event.Type == router.EventBreached || note.Event.Type == router.EventPromiseBroken) {
		return "DEADLINE MISSED: you stay the owner, the team lead is told"
	}
	return title(note.Kind)
}

func title(k router.NotificationKind) string {
	switch k {
	case router.NotifyAssigned:
		return "complaint assigned"
	case router.NotifyMessage:
		return "customer wrote again"
	case router.NotifyReopened:
		return "complaint reopened"
	case router.NotifyReassigned:
		return "complaint reassigned"
	case router.NotifyClosed:
		return "complaint closed"
	case router.NotifyAcknowledged:
		return "complaint acknowledged"
	case router.NotifyReplied:
		return "reply queued for the customer"
	case router.NotifyPromised:
		return "follow-up promised"
	case router.NotifyDeliveryFailed:
		return "CUSTOMER NOT REACHED: delivery failed"
	case router.NotifyReminder:
		return "REMINDER: a deadline or promise is coming up"
	case router.NotifyEscalation:
		return "ESCALATION: a deadline was missed"
	case router.NotifyComplaintRate:
		return "ALERT: complaint rate threshold reached"
	case router.NotifyMerged:
		return "complaints merged"
	}
	return "complaint notification: " + string(k)
}

func excerpt(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
