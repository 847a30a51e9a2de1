package privacy

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// Export is everything forgetmenot stores about one customer (GDPR art. 15).
type Export struct {
	// Customer is the key asked for; Identities every identity found.
	Customer    string    `json:"customer"`
	GeneratedAt time.Time `json:"generated_at"`
	Identities  []string  `json:"identities"`
	Names       []string  `json:"names"`
	Addresses   []string  `json:"addresses"`
	// ChatSessions, ForumUsers and WebhookIDs are the channel identities.
	ChatSessions []string            `json:"chat_sessions"`
	ForumUsers   []ForumUser         `json:"forum_users"`
	WebhookIDs   []string            `json:"webhook_ids"`
	Complaints   []ExportedComplaint `json:"complaints"`
	// Pending are messages received but not yet on a complaint.
	Pending []router.Message `json:"pending"`
	// DeadLetters are failed work about the customer (a message that could
	// not be routed, a reply that could not be sent), with its error.
	DeadLetters []queue.DeadLetter `json:"dead_letters"`
}

// ForumUser is a Discourse account the customer wrote from.
type ForumUser struct {
	ID       string `json:"id"`
	Username string `json:"username,omitempty"`
}

// ExportedComplaint is one complaint with its whole timeline, and what was
// delivered to the customer and their satisfaction answers picked out.
type ExportedComplaint struct {
	Complaint  router.Complaint `json:"complaint"`
	Timeline   []router.Entry   `json:"timeline"`
	Deliveries []Delivery       `json:"deliveries"`
	CSAT       []CSATAnswer     `json:"csat"`
}

// Delivery is something said to the customer, and whether it arrived.
type Delivery struct {
	At      time.Time         `json:"at"`
	Kind    router.EventType  `json:"kind"` // sent or delivery_failed
	Reason  string            `json:"reason,omitempty"`
	Text    string            `json:"text,omitempty"`
	Details map[string]string `json:"details,omitempty"`
}

// CSATAnswer is one satisfaction answer.
type CSATAnswer struct {
	At      time.Time         `json:"at"`
	Details map[string]string `json:"details,omitempty"`
}

// Export gathers everything stored about the customer, through every
// identity they used.
func (s *Service) Export(ctx context.Context, customerKey string) (Export, error) {
	key, err := CustomerKey(customerKey)
	if err != nil {
		return Export{}, err
	}
	cu, err := s.find(ctx, []string{key})
	if err != nil {
		return Export{}, err
	}
	ex := Export{Customer: key, GeneratedAt: s.clock().UTC(), Identities: cu.identities,
		Names: []string{}, Addresses: []string{}, ChatSessions: []string{}, ForumUsers: []ForumUser{}, WebhookIDs: []string{},
		Complaints: []ExportedComplaint{}, Pending: cu.pending}
	if ex.Pending == nil {
		ex.Pending = []router.Message{}
	}
	add := func(list *[]string, v string) {
		if v = strings.TrimSpace(v); v != "" && !slices.Contains(*list, v) {
			*list = append(*list, v)
		}
	}
	forum := map[string]string{}
	addMessage := func(m router.Message) {
		add(&ex.Names, m.Customer.Name)
		add(&ex.Addresses, m.Customer.Email)
		if rt := m.Metadata["reply_to"]; rt != "" {
			add(&ex.Addresses, rt)
		}
		if m.Channel == router.ChannelForum && m.Customer.ID != "" {
			if u := m.Metadata["forum_username"]; u != "" || forum[m.Customer.ID] == "" {
				forum[m.Customer.ID] = u
			}
		}
	}
	for _, c := range cu.complaints {
		add(&ex.Names, c.Customer.Name)
		add(&ex.Addresses, c.Customer.Email)
		tl := withoutMentionSenders(cu.timelines[c.ID])
		ec := ExportedComplaint{Complaint: c, Timeline: tl, Deliveries: []Delivery{}, CSAT: []CSATAnswer{}}
		if ec.Timeline == nil {
			ec.Timeline = []router.Entry{}
		}
		for _, e := range tl {
			if e.Message != nil {
				addMessage(*e.Message)
			}
			if ev := e.Event; ev != nil {
				switch ev.Type {
				case router.EventSent, router.EventDeliveryFailed:
					ec.Deliveries = append(ec.Deliveries, Delivery{At: e.At, Kind: ev.Type, Reason: ev.Reason, Text: ev.Text, Details: ev.Details})
				case router.EventCSAT:
					ec.CSAT = append(ec.CSAT, CSATAnswer{At: e.At, Details: ev.Details})
				}
			}
		}
		ex.Complaints = append(ex.Complaints, ec)
	}
	for _, m := range cu.pending {
		addMessage(m)
	}
	ids := make([]string, 0, len(cu.complaints))
	for _, c := range cu.complaints {
		ids = append(ids, c.ID)
	}
	dl, err := s.store.DeadLettersAbout(ctx, tokensOf(cu.identities, cu.complaints, cu.timelines, cu.pending).personal(ids))
	if err != nil {
		return Export{}, fmt.Errorf("reading dead letters: %w", err)
	}
	ex.DeadLetters = dl
	if ex.DeadLetters == nil {
		ex.DeadLetters = []queue.DeadLetter{}
	}
	for _, id := range cu.identities {
		ch, v, _ := strings.Cut(id, ":")
		switch router.Channel(ch) {
		case router.ChannelEmail:
			add(&ex.Addresses, v)
		case router.ChannelChat:
			add(&ex.ChatSessions, v)
		case router.ChannelWebhook:
			add(&ex.WebhookIDs, v)
		case router.ChannelForum:
			if _, ok := forum[v]; !ok {
				forum[v] = ""
			}
		}
	}
	for id, u := range forum {
		ex.ForumUsers = append(ex.ForumUsers, ForumUser{ID: id, Username: u})
	}
	sort.Slice(ex.ForumUsers, func(i, j int) bool { return ex.ForumUsers[i].ID < ex.ForumUsers[j].ID })
	return ex, nil
}

// withoutMentionSenders is tl with its "mentioned" lines worded as now
// (router.MentionReason): lines written before named the other complaint's
// sender, someone else, whose data is not this customer's to have.
func withoutMentionSenders(tl []router.Entry) []router.Entry {
	out, cloned := tl, false
	for i, e := range tl {
		if ev := e.Event; ev != nil && ev.Type == router.EventMentioned {
			if !cloned {
				out, cloned = slices.Clone(tl), true // the caller's timeline stays as read
			}
			neutral := *ev
			neutral.Reason = router.MentionReason(ev.Details)
			out[i].Event = &neutral
		}
	}
	return out
}

// WriteText writes the export as a readable document.
func (ex Export) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("Data stored about %s (exported %s)\n\n", ex.Customer, ex.GeneratedAt.Format(time.RFC3339))
	p("Identities:     %s\n", orNone(ex.Identities))
	p("Names:          %s\n", orNone(ex.Names))
	p("Addresses:      %s\n", orNone(ex.Addresses))
	p("Chat sessions:  %s\n", orNone(ex.ChatSessions))
	var fu []string
	for _, u := range ex.ForumUsers {
		s := "forum user " + u.ID
		if u.Username != "" {
			s += " (" + u.Username + ")"
		}
		fu = append(fu, s)
	}
	p("Forum users:    %s\n", orNone(fu))
	p("Webhook ids:    %s\n", orNone(ex.WebhookIDs))
	p("\n%d complaint(s)\n", len(ex.Complaints))
	for _, ec := range ex.Complaints {
		c := ec.Complaint
		p("\n== %s · %s · %s · owner %s · opened %s\n", c.ID, c.Status, c.Channel, c.Owner, c.CreatedAt.Format(time.RFC3339))
		if c.Subject != "" {
			p("Subject: %s\n", c.Subject)
		}
		if c.Status == router.StatusClosed {
			p("Closed %s: %s\n", c.ClosedAt.Format(time.RFC3339), c.Resolution)
		}
		if c.CSAT > 0 {
			p("Satisfaction answer: %d of 5\n", c.CSAT)
		}
		for _, e := range ec.Timeline {
			at := e.At.Format("2006-01-02 15:04")
			switch {
			case e.Message != nil:
				m := e.Message
				p("%s  message via %s from %s\n", at, m.Channel, m.Customer.Label())
				if m.Subject != "" {
					p("    Subject: %s\n", m.Subject)
				}
				for _, line := range strings.Split(m.Body, "\n") {
					p("    %s\n", line)
				}
				keys := make([]string, 0, len(m.Metadata))
				for k := range m.Metadata {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					p("    [%s: %s]\n", k, m.Metadata[k])
				}
			case e.Event != nil:
				ev := e.Event
				p("%s  %s by %s", at, ev.Type, ev.Actor)
				if ev.Reason != "" {
					p(": %s", ev.Reason)
				}
				p("\n")
				if ev.Text != "" {
					for _, line := range strings.Split(ev.Text, "\n") {
						p("    %s\n", line)
					}
				}
			}
		}
		p("Deliveries: %d, satisfaction answers: %d\n", len(ec.Deliveries), len(ec.CSAT))
	}
	if len(ex.DeadLetters) > 0 {
		p("\n%d dead letter(s) (failed work about this customer)\n", len(ex.DeadLetters))
		for _, d := range ex.DeadLetters {
			p("%s  %s: %s\n    %s\n", d.FailedAt.Format("2006-01-02 15:04"), d.Stream, d.Error, d.Data)
		}
	}
	if len(ex.Pending) > 0 {
		p("\n%d message(s) received, not yet on a complaint\n", len(ex.Pending))
		for _, m := range ex.Pending {
			p("%s  via %s from %s\n    %s\n", m.ReceivedAt.Format("2006-01-02 15:04"), m.Channel, m.Customer.Label(), m.Body)
		}
	}
	return ew.err
}

func orNone(v []string) string {
	if len(v) == 0 {
		return "none"
	}
	return strings.Join(v, ", ")
}

type errWriter struct {
	w   io.Writer
	err error
}

// printf writes with every non-printable character of a string argument
// escaped (line breaks too: a text's lines are printed one by one), so what
// a customer wrote cannot forge lines or drive a terminal.
func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = printable(s)
		}
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}

func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsPrint(r) {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	return b.String()
}
