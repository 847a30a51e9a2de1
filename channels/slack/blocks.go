package slack

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	slackgo "github.com/slack-go/slack"
)

// Action ids of the buttons on a complaint's top message; the button's value
// is the complaint id.
const (
	actAcknowledge = "fmn_acknowledge"
	actReply       = "fmn_reply"
	actPromise     = "fmn_promise"
	actClose       = "fmn_close"
	actReassign    = "fmn_reassign"
)

// Callback ids of the modals, and the block ids of their inputs (each input's
// action id is "v").
const (
	viewReply    = "fmn_reply"
	viewPromise  = "fmn_promise"
	viewClose    = "fmn_close"
	viewReassign = "fmn_reassign"

	blockReplyBody       = "reply_body"
	blockPromiseBy       = "promise_by"
	blockPromiseNote     = "promise_note"
	blockPromiseTell     = "promise_tell"
	blockCloseResolution = "close_resolution"
	blockCloseCategory   = "close_category"
	blockReassignOwner   = "reassign_owner"
	blockReassignReason  = "reassign_reason"
	inputAction          = "v"
)

// Lengths that keep messages readable (Slack's own limit is 3000 characters
// per text block).
const (
	topExcerpt    = 700
	threadExcerpt = 2500
	historyShown  = 5
)

// caseView is everything the top message of a complaint shows.
type caseView struct {
	Complaint router.Complaint
	// Headline says why this message exists ("New complaint for you").
	Headline string
	// First is the customer's first message; More counts the later ones.
	First *router.Message
	More  int
	// History are the customer's other complaints, newest first.
	History []router.Complaint
	// Buttons is set when the recipient may act on the complaint.
	Buttons bool
}

func mrkdwn(s string) *slackgo.TextBlockObject {
	return slackgo.NewTextBlockObject(slackgo.MarkdownType, s, false, false)
}

func plain(s string) *slackgo.TextBlockObject {
	return slackgo.NewTextBlockObject(slackgo.PlainTextType, s, false, false)
}

// escape makes text safe inside mrkdwn: Slack treats &, < and > as markup.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// excerpt shortens s to n runes at a word boundary where possible.
func excerpt(s string, n int) (string, bool) {
	s = strings.TrimSpace(s)
	r := []rune(s)
	if len(r) <= n {
		return s, false
	}
	cut := string(r[:n])
	if i := strings.LastIndexAny(cut, " \n\t"); i > n/2 {
		cut = cut[:i]
	}
	return strings.TrimSpace(cut) + "…", true
}

// quote renders customer or staff text as a mrkdwn block quote.
// appendQuote adds staff's text, quoted and trimmed for a thread, when there
// is any.
func appendQuote(lines []string, text string) []string {
	if text == "" {
		return lines
	}
	q, _ := quote(text, threadExcerpt)
	return append(lines, q)
}

func quote(s string, n int) (string, bool) {
	s, cut := excerpt(s, n)
	lines := strings.Split(escape(s), "\n")
	for i, l := range lines {
		lines[i] = "> " + l
	}
	return strings.Join(lines, "\n"), cut
}

// date renders a moment in each reader's own time zone (Slack's date
// formatting), with a UTC fallback for clients that cannot.
func date(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func day(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short}|%s>", t.Unix(), t.UTC().Format("2006-01-02"))
}

func channelLabel(ch router.Channel) string {
	switch ch {
	case router.ChannelEmail:
		return "e-mail"
	case "":
		return "unknown"
	}
	return string(ch)
}

// status describes where the complaint stands, for its top message.
func status(c router.Complaint, names func(string) string) string {
	if c.Status == router.StatusClosed {
		s := ":white_check_mark: Closed " + date(c.ClosedAt)
		if c.Category != "" {
			s += " · " + escape(c.Category)
		}
		return s
	}
	var parts []string
	if c.AcknowledgedAt.IsZero() {
		parts = append(parts, ":large_orange_circle: Open, not yet acknowledged")
	} else {
		parts = append(parts, ":large_blue_circle: Open, acknowledged "+date(c.AcknowledgedAt))
	}
	if !c.FirstResponseAt.IsZero() {
		parts = append(parts, "answered "+date(c.FirstResponseAt))
	}
	if c.Reopens > 0 {
		parts = append(parts, fmt.Sprintf("reopened %d×", c.Reopens))
	}
	return strings.Join(parts, " · ")
}

// caseBlocks renders a complaint's top message.
func caseBlocks(v caseView, names func(string) string) []slackgo.Block {
	c := v.Complaint
	title := c.ID
	if c.Subject != "" {
		title += " · " + c.Subject
	}
	title, _ = excerpt(title, 150)
	blocks := []slackgo.Block{slackgo.NewHeaderBlock(plain(title))}
	if v.Headline != "" {
		blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn(v.Headline), nil, nil))
	}
	fields := []*slackgo.TextBlockObject{
		mrkdwn("*Customer*\n" + escape(c.Customer.Label())),
		mrkdwn("*Channel*\n" + channelLabel(c.Channel)),
		mrkdwn("*Owner*\n" + escape(names(c.Owner)) + " (" + escape(c.Team) + ")"),
		mrkdwn("*Status*\n" + status(c, names)),
	}
	if c.Status == router.StatusOpen {
		if !c.RespondBy.IsZero() && c.FirstResponseAt.IsZero() {
			fields = append(fields, mrkdwn("*Respond by*\n"+date(c.RespondBy)))
		}
		if !c.ResolveBy.IsZero() {
			fields = append(fields, mrkdwn("*Resolve by*\n"+date(c.ResolveBy)))
		}
		if !c.PromisedBy.IsZero() {
			fields = append(fields, mrkdwn("*Follow-up promised*\n"+date(c.PromisedBy)))
		}
	}
	blocks = append(blocks, slackgo.NewSectionBlock(nil, fields, nil))
	if c.Status == router.StatusClosed && c.Resolution != "" {
		q, _ := quote(c.Resolution, topExcerpt)
		blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn("*Resolution*\n"+q), nil, nil))
	}
	if v.First != nil {
		q, cut := quote(v.First.Body, topExcerpt)
		text := "*The customer wrote* (" + date(v.First.ReceivedAt) + ")\n" + q
		var more []string
		if cut {
			more = append(more, "trimmed")
		}
		if v.More > 0 {
			more = append(more, fmt.Sprintf("%d later message(s) in the thread", v.More))
		}
		if len(more) > 0 {
			text += "\n_" + strings.Join(more, "; ") + " · everything: `/complaints " + c.ID + "` or `forgetmenot complaints show " + c.ID + "`_"
		}
		blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn(text), nil, nil))
	}
	blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn(historyText(v.History, names)), nil, nil))
	why := "*Why you:* " + escape(c.RoutingReason)
	if c.FollowUpOf != "" {
		why += " · follow-up of " + c.FollowUpOf
	}
	blocks = append(blocks, slackgo.NewContextBlock("", mrkdwn(why)))
	if v.Buttons && c.Status == router.StatusOpen {
		var buttons []slackgo.BlockElement
		if c.AcknowledgedAt.IsZero() {
			b := slackgo.NewButtonBlockElement(actAcknowledge, c.ID, plain("Acknowledge"))
			b.Style = slackgo.StylePrimary
			buttons = append(buttons, b)
		}
		buttons = append(buttons,
			slackgo.NewButtonBlockElement(actReply, c.ID, plain("Reply")),
			slackgo.NewButtonBlockElement(actPromise, c.ID, plain("Promise follow-up")),
			slackgo.NewButtonBlockElement(actClose, c.ID, plain("Close")),
			slackgo.NewButtonBlockElement(actReassign, c.ID, plain("Reassign")),
		)
		blocks = append(blocks, slackgo.NewActionBlock("actions", buttons...))
	}
	return blocks
}

// historyText lists the customer's earlier complaints with date, owner and
// outcome.
func historyText(history []router.Complaint, names func(string) string) string {
	if len(history) == 0 {
		return "*Customer history*\nNo earlier complaints."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*Customer history* (%d earlier)", len(history))
	for i, h := range history {
		if i == historyShown {
			fmt.Fprintf(&b, "\n… and %d more: `forgetmenot complaints list --customer %s`", len(history)-historyShown, h.CustomerKey)
			break
		}
		subject := h.Subject
		if subject == "" {
			subject = "(no subject)"
		}
		subject, _ = excerpt(subject, 60)
		outcome := "open"
		if h.Status == router.StatusClosed {
			outcome = "closed"
			if h.Category != "" {
				outcome += " (" + h.Category + ")"
			}
			if h.Resolution != "" {
				r, _ := excerpt(h.Resolution, 80)
				outcome += ": " + r
			}
		}
		fmt.Fprintf(&b, "\n• %s %s · %s · %s · %s", h.ID, day(h.CreatedAt), escape(subject), escape(names(h.Owner)), escape(outcome))
	}
	return b.String()
}

// caseText is the notification text of a top message (push notifications and
// clients that show no blocks).
func caseText(v caseView) string {
	c := v.Complaint
	s := c.ID + ": " + c.Customer.Label()
	if c.Subject != "" {
		s += " — " + c.Subject
	}
	return s
}

// headline says why a top message was posted to its recipient.
func headline(n router.Notification, names func(string) string) string {
	switch n.Kind {
	case router.NotifyAssigned:
		h := ":bell: *New complaint for you.* You own it until it is closed."
		if n.Event != nil && n.Event.Details["over_capacity"] == "true" {
			h += " Everyone in the team was at capacity, so it is over your usual load; your lead has been told."
		}
		return h
	case router.NotifyReassigned:
		if n.Event != nil && n.Event.Owner == n.Recipient {
			return fmt.Sprintf(":arrow_right: *Reassigned to you* by %s from %s: %s", escape(names(n.Event.Actor)), escape(names(n.Event.PreviousOwner)), escape(n.Event.Reason))
		}
	case router.NotifyEscalation:
		return ":rotating_light: *Escalated to you.*"
	}
	return ""
}

// eventBlocks renders a notification as a reply in the complaint's thread.
func eventBlocks(n router.Notification, names func(string) string) ([]slackgo.Block, string) {
	ev := n.Event
	if ev == nil {
		ev = &router.Event{}
	}
	actor := escape(names(ev.Actor))
	var lines []string
	var text string
	switch n.Kind {
	case router.NotifyMessage, router.NotifyReopened, router.NotifyAssigned:
		head := ":speech_balloon: *The customer wrote again*"
		text = n.Complaint.ID + ": the customer wrote again"
		switch n.Kind {
		case router.NotifyReopened:
			head = ":leftwards_arrow_with_hook: *Reopened: the customer wrote again*"
			text = n.Complaint.ID + " reopened: the customer wrote again"
		case router.NotifyAssigned:
			head = ":bell: *Assigned to you*"
			text = n.Complaint.ID + " assigned to you"
		}
		if n.Message != nil {
			head += " via " + channelLabel(n.Message.Channel) + ", " + date(n.Message.ReceivedAt)
		}
		lines = append(lines, head)
		if ev.Reason != "" && n.Kind == router.NotifyReopened {
			lines = append(lines, "_"+escape(ev.Reason)+"_")
		}
		if n.Message != nil {
			if n.Message.Subject != "" && n.Message.Subject != n.Complaint.Subject {
				lines = append(lines, "*Subject:* "+escape(n.Message.Subject))
			}
			q, cut := quote(n.Message.Body, threadExcerpt)
			lines = append(lines, q)
			if cut {
				lines = append(lines, "_trimmed · everything: `forgetmenot complaints show "+n.Complaint.ID+"`_")
			}
		}
	case router.NotifyReassigned:
		if ev.Owner == n.Recipient {
			lines = append(lines, fmt.Sprintf(":arrow_right: *Reassigned to you* by %s from %s", actor, escape(names(ev.PreviousOwner))))
		} else {
			lines = append(lines, fmt.Sprintf(":arrow_right: *Reassigned to %s* by %s. It is theirs now; you are no longer the owner.", escape(names(ev.Owner)), actor))
		}
		lines = append(lines, "*Reason:* "+escape(ev.Reason))
		if ev.Details["over_capacity"] == "true" {
			lines = append(lines, "_"+escape(names(ev.Owner))+" was already at capacity._")
		}
		text = n.Complaint.ID + " reassigned to " + names(ev.Owner)
	case router.NotifyClosed:
		line := ":white_check_mark: *Closed* by " + actor
		if c := ev.Details["category"]; c != "" {
			line += " · root cause: " + escape(c)
		}
		q, _ := quote(ev.Reason, threadExcerpt)
		lines = append(lines, line, q)
		text = n.Complaint.ID + " closed"
	case router.NotifyAcknowledged:
		lines = append(lines, ":eyes: *Acknowledged* by "+actor)
		text = n.Complaint.ID + " acknowledged"
	case router.NotifyReplied:
		line := ":outbox_tray: *Reply to the customer* by " + actor
		if via := ev.Details["via"]; via != "" {
			line += ", sent via " + channelLabel(router.Channel(via))
		}
		q, _ := quote(ev.Text, threadExcerpt)
		lines = append(lines, line, q)
		text = n.Complaint.ID + ": reply sent by " + names(ev.Actor)
	case router.NotifyPromised:
		line := ":spiral_calendar_pad: *Follow-up promised* by " + actor
		if by, err := time.Parse(time.RFC3339, ev.Details["by"]); err == nil {
			line += " for " + date(by)
		}
		if via := ev.Details["via"]; via != "" {
			line += " · the customer was told via " + channelLabel(router.Channel(via))
		} else {
			line += " · internal only"
		}
		lines = append(lines, line)
		lines = appendQuote(lines, ev.Text)
		text = n.Complaint.ID + ": follow-up promised"
	case router.NotifyReminder:
		lines = append(lines, ":alarm_clock: *Reminder*: "+escape(orDefault(ev.Reason, "a deadline of this complaint is near")))
		lines = appendQuote(lines, ev.Text)
		text = n.Complaint.ID + ": reminder"
	case router.NotifyEscalation:
		lines = append(lines, ":rotating_light: *Escalation*: "+escape(orDefault(ev.Reason, "a deadline of this complaint was missed")))
		lines = appendQuote(lines, ev.Text)
		text = n.Complaint.ID + ": escalation"
	case router.NotifyDeliveryFailed:
		lines = append(lines, ":warning: *The customer did not get this.* Find another way to reach them.", "_"+escape(ev.Reason)+"_")
		lines = appendQuote(lines, ev.Text)
		text = n.Complaint.ID + ": the customer was NOT reached"
	case router.NotifyComplaintRate:
		lines = append(lines, ":chart_with_upwards_trend: *Complaint rate alert*: "+escape(orDefault(ev.Reason, "the complaint rate reached its threshold")),
			"_Complaints per period: `forgetmenot report`_")
		text = "Complaint rate alert"
		if p := ev.Details["period"]; p != "" {
			text += " for " + p
		}
	default:
		lines = append(lines, "*"+escape(string(n.Kind))+"*")
		if ev.Reason != "" {
			lines = append(lines, escape(ev.Reason))
		}
		text = n.Complaint.ID + ": " + string(n.Kind)
	}
	body := strings.Join(lines, "\n")
	if r := []rune(body); len(r) > 2990 {
		body = string(r[:2990]) + "…"
	}
	return []slackgo.Block{slackgo.NewSectionBlock(mrkdwn(body), nil, nil)}, text
}

func orDefault(s, d string) string {
	if strings.TrimSpace(s) == "" {
		return d
	}
	return s
}

// leadBlocks renders an escalation or over-capacity notice for the lead
// channel.
func leadBlocks(n router.Notification, names func(string) string) ([]slackgo.Block, string) {
	c := n.Complaint
	var line, text string
	switch n.Kind {
	case router.NotifyEscalation:
		reason := "a deadline was missed"
		if n.Event != nil && n.Event.Reason != "" {
			reason = n.Event.Reason
		}
		line = fmt.Sprintf(":rotating_light: *Escalation %s* (owner %s, team %s): %s", c.ID, escape(names(c.Owner)), escape(c.Team), escape(reason))
		text = "Escalation: " + c.ID
	default:
		line = fmt.Sprintf(":warning: *Over capacity:* %s went to %s (team %s) although everyone in the team was at capacity. Consider redistributing.", c.ID, escape(names(c.Owner)), escape(c.Team))
		text = "Over capacity: " + c.ID
	}
	ctx := escape(c.Customer.Label())
	if c.Subject != "" {
		ctx += " — " + escape(c.Subject)
	}
	ctx += " · `/complaints " + c.ID + "`"
	return []slackgo.Block{
		slackgo.NewSectionBlock(mrkdwn(line), nil, nil),
		slackgo.NewContextBlock("", mrkdwn(ctx)),
	}, text
}

// modalMeta travels in a modal's private_metadata: which complaint, and where
// the modal was opened (to answer there).
type modalMeta struct {
	Complaint string `json:"complaint"`
	Channel   string `json:"channel,omitempty"`
}

func modal(callback, title, submit string, meta string, blocks ...slackgo.Block) slackgo.ModalViewRequest {
	return slackgo.ModalViewRequest{
		Type: slackgo.VTModal, CallbackID: callback, PrivateMetadata: meta,
		Title: plain(title), Submit: plain(submit), Close: plain("Cancel"),
		Blocks: slackgo.Blocks{BlockSet: blocks},
	}
}

func context1(c router.Complaint) slackgo.Block {
	s := c.ID + " · " + escape(c.Customer.Label())
	if c.Subject != "" {
		s += " — " + escape(c.Subject)
	}
	return slackgo.NewContextBlock("", mrkdwn(s))
}

func textInput(block, label, hint string, multiline bool, max int, optional bool) *slackgo.InputBlock {
	el := slackgo.NewPlainTextInputBlockElement(nil, inputAction)
	el.Multiline = multiline
	el.MaxLength = max
	var h *slackgo.TextBlockObject
	if hint != "" {
		h = plain(hint)
	}
	in := slackgo.NewInputBlock(block, plain(label), h, el)
	in.Optional = optional
	return in
}

func replyModal(c router.Complaint, meta string) slackgo.ModalViewRequest {
	return modal(viewReply, "Reply to the customer", "Send", meta,
		context1(c),
		textInput(blockReplyBody, "Your answer", "Goes to the customer via "+channelLabel(c.Channel)+" (or e-mail), signed with your name.", true, 3000, false),
	)
}

func promiseModal(c router.Complaint, meta string, now time.Time) slackgo.ModalViewRequest {
	by := slackgo.NewDateTimePickerBlockElement(inputAction)
	by.InitialDateTime = now.Add(24 * time.Hour).Truncate(time.Hour).Unix()
	tell := slackgo.NewCheckboxGroupsBlockElement(inputAction,
		slackgo.NewOptionBlockObject("tell", plain("Tell the customer (the note is sent to them)"), nil))
	tellIn := slackgo.NewInputBlock(blockPromiseTell, plain("Customer"), nil, tell)
	tellIn.Optional = true
	return modal(viewPromise, "Promise follow-up", "Promise", meta,
		context1(c),
		slackgo.NewInputBlock(blockPromiseBy, plain("Follow up by"), nil, by),
		textInput(blockPromiseNote, "What you promise", "Recorded on the timeline; you are reminded before it lapses.", true, 2000, true),
		tellIn,
	)
}

func closeModal(c router.Complaint, meta string, categories []string) slackgo.ModalViewRequest {
	var blocks []slackgo.Block
	blocks = append(blocks, context1(c),
		textInput(blockCloseResolution, "Resolution", "How was it resolved? Internal: the customer does not see this.", true, 4000, false))
	if len(categories) > 0 {
		var opts []*slackgo.OptionBlockObject
		for _, cat := range categories {
			opts = append(opts, slackgo.NewOptionBlockObject(cat, plain(cat), nil))
		}
		sel := slackgo.NewOptionsSelectBlockElement(slackgo.OptTypeStatic, plain("Choose the root cause"), inputAction, opts...)
		blocks = append(blocks, slackgo.NewInputBlock(blockCloseCategory, plain("Root cause"), nil, sel))
	} else {
		blocks = append(blocks, textInput(blockCloseCategory, "Root cause", "", false, 100, false))
	}
	return modal(viewClose, "Close complaint", "Close", meta, blocks...)
}

func reassignModal(c router.Complaint, meta string, owners []router.OwnerStatus) slackgo.ModalViewRequest {
	var opts []*slackgo.OptionBlockObject
	for _, o := range owners {
		if !o.Active || o.ID == c.Owner || len(opts) == 100 {
			continue
		}
		label := o.Name + " · " + strings.Join(o.Teams, ", ")
		label, _ = excerpt(label, 70)
		desc := strconv.Itoa(o.Open) + " open of " + strconv.Itoa(o.Capacity)
		opts = append(opts, slackgo.NewOptionBlockObject(o.ID, plain(label), plain(desc)))
	}
	sel := slackgo.NewOptionsSelectBlockElement(slackgo.OptTypeStatic, plain("Choose the new owner"), inputAction, opts...)
	return modal(viewReassign, "Reassign complaint", "Reassign", meta,
		context1(c),
		slackgo.NewInputBlock(blockReassignOwner, plain("New owner"), nil, sel),
		textInput(blockReassignReason, "Reason", "Required: recorded on the timeline and shown to both owners.", true, 2000, false),
	)
}
