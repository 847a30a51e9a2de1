package slack

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/slack/blockkit"
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
	blockClosePrevention = "close_prevention"
	blockReassignOwner   = "reassign_owner"
	blockReassignReason  = "reassign_reason"
	inputAction          = "v"
)

// maxPrevention bounds the "What would prevent this?" note of a close.
const maxPrevention = 2000

// Lengths that keep messages readable, in characters after escaping
// (Slack's own limit is 3,000 per section text; blockkit has them all).
const (
	topExcerpt     = 700
	threadExcerpt  = 2500
	historyShown   = 5
	nameLen        = 200
	unreachableLen = 300 // why the customer cannot be written to
	reasonLen      = 1000
)

// caseView is everything the top message of a complaint shows.
type caseView struct {
	Complaint router.Complaint
	// Headline says why this message exists ("New complaint for you").
	Headline string
	// First is the customer's first message; More counts the later ones.
	First *router.Message
	More  int
	// History are the customer's other complaints, newest first (a few),
	// and HistoryTotal how many there are in all.
	History      []router.Complaint
	HistoryTotal int
	// Buttons is set when the recipient may act on the complaint.
	Buttons bool
}

func mrkdwn(s string) *slackgo.TextBlockObject {
	return slackgo.NewTextBlockObject(slackgo.MarkdownType, s, false, false)
}

func plain(s string) *slackgo.TextBlockObject {
	return slackgo.NewTextBlockObject(slackgo.PlainTextType, s, false, false)
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
			cat, _ := clip(c.Category, nameLen)
			s += " · " + cat
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
	title = clipPlain(title, blockkit.MaxHeaderText)
	blocks := []slackgo.Block{slackgo.NewHeaderBlock(plain(title))}
	if v.Headline != "" {
		blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn(fit(v.Headline, blockkit.MaxSectionText)), nil, nil))
	}
	customer, _ := clip(c.Customer.Label(), nameLen)
	owner, _ := clip(names(c.Owner), nameLen)
	team, _ := clip(c.Team, nameLen)
	if c.Unreachable != "" {
		// Said where the owner looks first: no acknowledgement went out and a
		// reply cannot reach this customer until they write from an address.
		why, _ := clip(c.Unreachable, unreachableLen)
		customer += "\n:warning: cannot be written to: " + why
	}
	fields := []*slackgo.TextBlockObject{
		mrkdwn("*Customer*\n" + customer),
		mrkdwn("*Channel*\n" + channelLabel(c.Channel)),
		mrkdwn("*Owner*\n" + owner + " (" + team + ")"),
		mrkdwn(fit("*Status*\n"+status(c, names), blockkit.MaxFieldText)),
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
		blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn(fit(text, blockkit.MaxSectionText)), nil, nil))
	}
	blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn(fit(historyText(v.History, v.HistoryTotal, names), blockkit.MaxSectionText)), nil, nil))
	reason, _ := clip(orDefault(c.RoutingReason, "assigned"), reasonLen)
	why := "*Why you:* " + reason
	if c.FollowUpOf != "" {
		why += " · follow-up of " + c.FollowUpOf
	}
	blocks = append(blocks, slackgo.NewContextBlock("", mrkdwn(fit(why, blockkit.MaxTextObject))))
	if v.Buttons && c.Status == router.StatusOpen {
		blocks = append(blocks, slackgo.NewActionBlock("actions", caseButtons(c)...))
	}
	return blocks
}

// historyText lists the customer's other complaints (earlier ones, and for
// an older complaint later ones too) with date, owner and outcome: the
// newest few of total (the true count, not the list's length).
func historyText(history []router.Complaint, total int, names func(string) string) string {
	if total < len(history) {
		total = len(history)
	}
	if total == 0 {
		return "*Customer history*\nNo other complaints."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*Customer history* (%d other)", total)
	for i, h := range history {
		if i == historyShown {
			break
		}
		subject := h.Subject
		if subject == "" {
			subject = "(no subject)"
		}
		subject, _ = clip(subject, 60)
		outcome := "open"
		if h.Status == router.StatusClosed {
			outcome = "closed"
			if h.Category != "" {
				cat, _ := clip(h.Category, 40)
				outcome += " (" + cat + ")"
			}
			if h.Resolution != "" {
				r, _ := clip(h.Resolution, 80)
				outcome += ": " + r
			}
		}
		owner, _ := clip(names(h.Owner), 60)
		fmt.Fprintf(&b, "\n• %s %s · %s · %s · %s", h.ID, day(h.CreatedAt), subject, owner, outcome)
	}
	if shown := min(len(history), historyShown); total > shown && len(history) > 0 {
		fmt.Fprintf(&b, "\n… and %d more: `forgetmenot complaints list --customer %s --limit %d`", total-shown, history[0].CustomerKey, min(total+1, 1000))
	}
	return b.String()
}

// caseText is the notification text of a top message (push notifications and
// clients that show no blocks). Slack reads it as mrkdwn too, so the
// customer's words are escaped: a subject of "<!channel>" pings no one.
func caseText(v caseView) string {
	c := v.Complaint
	s := c.ID + ": " + esc(c.Customer.Label(), nameLen)
	if c.Subject != "" {
		s += " — " + esc(c.Subject, 500)
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
			return fmt.Sprintf(":arrow_right: *Reassigned to you* by %s from %s: %s", esc(names(n.Event.Actor), nameLen), esc(names(n.Event.PreviousOwner), nameLen), esc(n.Event.Reason, reasonLen))
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
	actor := esc(names(ev.Actor), nameLen)
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
			lines = append(lines, "_"+esc(ev.Reason, reasonLen)+"_")
		}
		if n.Message != nil {
			if n.Message.Subject != "" && n.Message.Subject != n.Complaint.Subject {
				lines = append(lines, "*Subject:* "+esc(n.Message.Subject, 300))
			}
			q, cut := quote(n.Message.Body, threadExcerpt)
			lines = append(lines, q)
			if cut {
				lines = append(lines, "_trimmed · everything: `forgetmenot complaints show "+n.Complaint.ID+"`_")
			}
		}
	case router.NotifyReassigned:
		if ev.Owner == n.Recipient {
			lines = append(lines, fmt.Sprintf(":arrow_right: *Reassigned to you* by %s from %s", actor, esc(names(ev.PreviousOwner), nameLen)))
		} else {
			lines = append(lines, fmt.Sprintf(":arrow_right: *Reassigned to %s* by %s. It is theirs now; you are no longer the owner.", esc(names(ev.Owner), nameLen), actor))
		}
		lines = append(lines, "*Reason:* "+esc(ev.Reason, reasonLen))
		if ev.Details["over_capacity"] == "true" {
			lines = append(lines, "_"+esc(names(ev.Owner), nameLen)+" was already at capacity._")
		}
		text = n.Complaint.ID + " reassigned to " + esc(names(ev.Owner), nameLen)
	case router.NotifyClosed:
		line := ":white_check_mark: *Closed* by " + actor
		if c := ev.Details["category"]; c != "" {
			line += " · root cause: " + esc(c, nameLen)
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
		text = n.Complaint.ID + ": reply sent by " + esc(names(ev.Actor), nameLen)
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
		lines = append(lines, ":alarm_clock: *Reminder*: "+esc(orDefault(ev.Reason, "a deadline of this complaint is near"), reasonLen))
		lines = appendQuote(lines, ev.Text)
		text = n.Complaint.ID + ": reminder"
	case router.NotifyEscalation:
		lines = append(lines, ":rotating_light: *Escalation*: "+esc(orDefault(ev.Reason, "a deadline of this complaint was missed"), reasonLen))
		lines = appendQuote(lines, ev.Text)
		text = n.Complaint.ID + ": escalation"
	case router.NotifyDeliveryFailed:
		lines = append(lines, ":warning: *The customer did not get this.* Find another way to reach them.", "_"+esc(ev.Reason, reasonLen)+"_")
		lines = appendQuote(lines, ev.Text)
		text = n.Complaint.ID + ": the customer was NOT reached"
	case router.NotifyComplaintRate:
		lines = append(lines, ":chart_with_upwards_trend: *Complaint rate alert*: "+esc(orDefault(ev.Reason, "the complaint rate reached its threshold"), reasonLen),
			"_Complaints per period: `forgetmenot report`_")
		text = "Complaint rate alert"
		if p := ev.Details["period"]; p != "" {
			text += " for " + esc(p, 100)
		}
	default:
		lines = append(lines, "*"+esc(string(n.Kind), nameLen)+"*")
		if ev.Reason != "" {
			lines = append(lines, esc(ev.Reason, reasonLen))
		}
		text = n.Complaint.ID + ": " + esc(string(n.Kind), nameLen)
	}
	body := fit(strings.Join(lines, "\n"), blockkit.MaxSectionText)
	return []slackgo.Block{slackgo.NewSectionBlock(mrkdwn(body), nil, nil)}, fit(text, 1000)
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
		line = fmt.Sprintf(":rotating_light: *Escalation %s* (owner %s, team %s): %s", c.ID, esc(names(c.Owner), nameLen), esc(c.Team, nameLen), esc(reason, reasonLen))
		text = "Escalation: " + c.ID
	default:
		line = fmt.Sprintf(":warning: *Over capacity:* %s went to %s (team %s) although everyone in the team was at capacity. Consider redistributing.", c.ID, esc(names(c.Owner), nameLen), esc(c.Team, nameLen))
		text = "Over capacity: " + c.ID
	}
	ctx := esc(c.Customer.Label(), nameLen)
	if c.Subject != "" {
		ctx += " — " + esc(c.Subject, 300)
	}
	ctx += " · `/complaints " + c.ID + "`"
	return []slackgo.Block{
		slackgo.NewSectionBlock(mrkdwn(fit(line, blockkit.MaxSectionText)), nil, nil),
		slackgo.NewContextBlock("", mrkdwn(fit(ctx, blockkit.MaxTextObject))),
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
	s := c.ID + " · " + esc(c.Customer.Label(), nameLen)
	if c.Subject != "" {
		s += " — " + esc(c.Subject, 300)
	}
	return slackgo.NewContextBlock("", mrkdwn(fit(s, blockkit.MaxTextObject)))
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

// replyModal asks for an answer that goes to the customer by via.
func replyModal(c router.Complaint, via router.Channel, meta string) slackgo.ModalViewRequest {
	return modal(viewReply, "Reply to the customer", "Send", meta,
		context1(c),
		textInput(blockReplyBody, "Your answer", "Goes to the customer by "+channelLabel(via)+", signed with your name.", true, 3000, false),
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
		textInput(blockCloseResolution, "Resolution", "How was it resolved? Internal: the customer does not see this.", true, blockkit.MaxInputLength, false))
	if len(categories) > 0 {
		var opts []*slackgo.OptionBlockObject
		for _, cat := range categories {
			if len(opts) == blockkit.MaxOptions {
				break
			}
			opts = append(opts, slackgo.NewOptionBlockObject(categoryValue(cat, len(opts)), plain(clipPlain(cat, blockkit.MaxOptionText)), nil))
		}
		sel := slackgo.NewOptionsSelectBlockElement(slackgo.OptTypeStatic, plain("Choose the root cause"), inputAction, opts...)
		blocks = append(blocks, slackgo.NewInputBlock(blockCloseCategory, plain("Root cause"), nil, sel))
	} else {
		blocks = append(blocks, textInput(blockCloseCategory, "Root cause", "", false, 100, false))
	}
	blocks = append(blocks, textInput(blockClosePrevention, "What would prevent this?", "Optional: what would stop this from happening again. Goes into the root-cause report.", true, maxPrevention, true))
	return modal(viewClose, "Close complaint", "Close", meta, blocks...)
}

// categoryValue is a root cause's option value: the category itself, or
// "#index" for one longer than Slack allows a value to be (categoryOf reads
// it back).
func categoryValue(cat string, i int) string {
	if blockkit.Len(cat) <= blockkit.MaxOptionValue && !strings.HasPrefix(cat, "#") {
		return cat
	}
	return "#" + strconv.Itoa(i)
}

// categoryOf is the root cause a submitted option value stands for.
func categoryOf(value string, categories []string) string {
	if i, err := strconv.Atoi(strings.TrimPrefix(value, "#")); err == nil && strings.HasPrefix(value, "#") && i >= 0 && i < len(categories) {
		return categories[i]
	}
	return value
}

func reassignModal(c router.Complaint, meta string, owners []router.OwnerStatus) slackgo.ModalViewRequest {
	var opts []*slackgo.OptionBlockObject
	for _, o := range owners {
		if !o.Active || o.ID == c.Owner || len(opts) == 100 {
			continue
		}
		label := clipPlain(o.Name+" · "+strings.Join(o.Teams, ", "), blockkit.MaxOptionText)
		desc := strconv.Itoa(o.Open) + " open of " + strconv.Itoa(o.Capacity)
		opts = append(opts, slackgo.NewOptionBlockObject(o.ID, plain(label), plain(desc)))
	}
	if len(opts) == 0 {
		m := modal(viewReassign, "Reassign complaint", "Reassign", meta, context1(c),
			slackgo.NewSectionBlock(mrkdwn("There is no other active owner to reassign it to. Ask your lead to add someone to the roster."), nil, nil))
		m.Submit = nil
		return m
	}
	sel := slackgo.NewOptionsSelectBlockElement(slackgo.OptTypeStatic, plain("Choose the new owner"), inputAction, opts...)
	return modal(viewReassign, "Reassign complaint", "Reassign", meta,
		context1(c),
		slackgo.NewInputBlock(blockReassignOwner, plain("New owner"), nil, sel),
		textInput(blockReassignReason, "Reason", "Required: recorded on the timeline and shown to both owners.", true, 2000, false),
	)
}
