package slack

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/forgetmenot/forgetmenot/channels/slack/blockkit"
	"github.com/forgetmenot/forgetmenot/router"
	slackgo "github.com/slack-go/slack"
)

var complaintIDPattern = regexp.MustCompile(`^(?i)c-\d+$`)

const commandUsage = "*/complaints* — your complaints from Slack:\n" +
	"• `/complaints mine` — your open complaints, oldest first\n" +
	"• `/complaints C-1042` — one complaint: the case, its history and latest events\n" +
	"• `/complaints stats` — open complaints per owner, what waits for an answer\n" +
	"• `/complaints away 2026-12-21 [cover]` — you are away until then (a date or an RFC 3339 time); the cover (owner id or @mention) gets your notifications\n" +
	"• `/complaints back` — you are back early"

// ephemeral is the answer to a slash command, shown only to its user.
func ephemeral(text string, blocks ...slackgo.Block) *slackgo.Msg {
	m := &slackgo.Msg{ResponseType: slackgo.ResponseTypeEphemeral, Text: text}
	if len(blocks) > 0 {
		m.Blocks = slackgo.Blocks{BlockSet: blocks}
	}
	return m
}

// Command answers /complaints (mine, C-1042, stats) ephemerally. It only
// reads, so it answers within Slack's 3 seconds.
func (s *Slack) Command(ctx context.Context, cmd slackgo.SlashCommand) *slackgo.Msg {
	return s.answer(s.command(ctx, cmd))
}

func (s *Slack) command(ctx context.Context, cmd slackgo.SlashCommand) *slackgo.Msg {
	arg := strings.TrimSpace(cmd.Text)
	owner, ok, err := s.people.owner(ctx, cmd.UserID)
	if err != nil {
		s.log.Warn("could not look up a Slack user for /complaints", "user", cmd.UserID, "err", err)
		return ephemeral("Sorry, I could not check who you are in Slack just now. Please try again.")
	}
	if !ok {
		return ephemeral("Sorry, you are not on the forgetmenot roster, so complaints are not shown to you. Ask your team lead to add you.")
	}
	words := strings.Fields(arg)
	switch {
	case len(words) > 0 && strings.EqualFold(words[0], "away"):
		return s.awayCommand(ctx, owner, words[1:])
	case strings.EqualFold(arg, "back"):
		return s.backCommand(ctx, owner)
	case strings.EqualFold(arg, "mine"):
		return s.mine(ctx, owner)
	case strings.EqualFold(arg, "stats"):
		return s.stats(ctx, owner)
	case complaintIDPattern.MatchString(arg):
		return s.show(ctx, owner, router.CanonicalComplaintID(arg))
	}
	return ephemeral(commandUsage, slackgo.NewSectionBlock(mrkdwn(commandUsage), nil, nil))
}

func (s *Slack) mine(ctx context.Context, owner router.Owner) *slackgo.Msg {
	cs, err := s.cfg.Complaints.Complaints(ctx, router.Filter{Status: router.StatusOpen, Owner: owner.ID, Limit: 1000})
	if err != nil {
		return ephemeral("Sorry, I could not read your complaints just now: " + err.Error())
	}
	if len(cs) == 0 {
		return ephemeral("You have no open complaints. :tada:")
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].CreatedAt.Before(cs[j].CreatedAt) })
	var b strings.Builder
	fmt.Fprintf(&b, "*Your open complaints: %d* (capacity %d)", len(cs), owner.Capacity)
	for i, c := range cs {
		if i == 25 {
			fmt.Fprintf(&b, "\n… and %d more: `forgetmenot complaints list --owner %s --status open`", len(cs)-25, owner.ID)
			break
		}
		fmt.Fprintf(&b, "\n• *%s* %s", c.ID, complaintLine(c))
	}
	text := fit(b.String(), blockkit.MaxSectionText)
	return ephemeral(fmt.Sprintf("Your open complaints: %d", len(cs)), slackgo.NewSectionBlock(mrkdwn(text), nil, nil))
}

// complaintLine is one complaint in a list: customer, subject and what is
// pending.
func complaintLine(c router.Complaint) string {
	s := esc(c.Customer.Label(), nameLen)
	if c.Subject != "" {
		s += " — " + esc(c.Subject, 60)
	}
	var flags []string
	if c.AcknowledgedAt.IsZero() {
		flags = append(flags, "not acknowledged")
	}
	if c.FirstResponseAt.IsZero() {
		if !c.RespondBy.IsZero() {
			flags = append(flags, "respond by "+date(c.RespondBy))
		} else {
			flags = append(flags, "not answered")
		}
	}
	if !c.PromisedBy.IsZero() {
		flags = append(flags, "promised "+date(c.PromisedBy))
	}
	if len(flags) > 0 {
		s += " · _" + strings.Join(flags, ", ") + "_"
	}
	return s
}

func (s *Slack) stats(ctx context.Context, me router.Owner) *slackgo.Msg {
	owners, err := s.cfg.Complaints.Owners(ctx)
	if err != nil {
		return ephemeral("Sorry, I could not read the owners just now: " + err.Error())
	}
	open, err := s.cfg.Complaints.Complaints(ctx, router.Filter{Status: router.StatusOpen, Limit: 1000})
	if err != nil {
		return ephemeral("Sorry, I could not read the complaints just now: " + err.Error())
	}
	unacked, unanswered, overdue := map[string]int{}, map[string]int{}, map[string]int{}
	now := s.now()
	for _, c := range open {
		if c.AcknowledgedAt.IsZero() {
			unacked[c.Owner]++
		}
		if c.FirstResponseAt.IsZero() {
			unanswered[c.Owner]++
			if !c.RespondBy.IsZero() && c.RespondBy.Before(now) {
				overdue[c.Owner]++
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*Open complaints: %d*", len(open))
	if len(open) == 1000 {
		b.WriteString(" (or more)")
	}
	b.WriteString("\n_owner · open/capacity · not acknowledged · not answered · past respond-by_")
	for _, o := range owners {
		if o.Open == 0 && !o.Active {
			continue
		}
		mark := ""
		if o.ID == me.ID {
			mark = " ← you"
		}
		if o.Open >= o.Capacity {
			mark += " :warning: at capacity"
		}
		fmt.Fprintf(&b, "\n• %s · %d/%d · %d · %d · %d%s", esc(o.Name, nameLen), o.Open, o.Capacity, unacked[o.ID], unanswered[o.ID], overdue[o.ID], mark)
	}
	return ephemeral(fmt.Sprintf("Open complaints: %d", len(open)), slackgo.NewSectionBlock(mrkdwn(fit(b.String(), blockkit.MaxSectionText)), nil, nil))
}

func (s *Slack) show(ctx context.Context, me router.Owner, id string) *slackgo.Msg {
	c, tl, err := s.cfg.Complaints.Complaint(ctx, id)
	if errors.Is(err, router.ErrNotFound) {
		return ephemeral("There is no complaint " + id + ".")
	}
	if err != nil {
		return ephemeral("Sorry, I could not read " + id + " just now: " + err.Error())
	}
	v, err := s.caseView(ctx, c, tl, me.ID)
	if err != nil {
		return ephemeral("Sorry, I could not read " + id + " just now: " + err.Error())
	}
	blocks := caseBlocks(v, s.people.name)
	blocks = append(blocks, slackgo.NewDividerBlock(), slackgo.NewSectionBlock(mrkdwn(timelineText(tl, s.people.name)), nil, nil))
	return ephemeral(caseText(v), blocks...)
}

// timelineText renders the latest timeline entries, newest last.
func timelineText(tl []router.Entry, names func(string) string) string {
	const shown = 12
	var b strings.Builder
	b.WriteString("*Timeline*")
	if len(tl) > shown {
		fmt.Fprintf(&b, " (latest %d of %d)", shown, len(tl))
		tl = tl[len(tl)-shown:]
	}
	for _, e := range tl {
		b.WriteString("\n• " + date(e.At) + " ")
		switch {
		case e.Message != nil:
			b.WriteString("_customer via " + channelLabel(e.Message.Channel) + ":_ " + esc(strings.ReplaceAll(e.Message.Body, "\n", " "), 160))
		case e.Event != nil:
			ev := e.Event
			b.WriteString("*" + string(ev.Type) + "* by " + esc(names(ev.Actor), nameLen))
			detail := ev.Reason
			if ev.Text != "" {
				detail = ev.Text
			}
			if detail != "" {
				b.WriteString(": " + esc(strings.ReplaceAll(detail, "\n", " "), 160))
			}
		}
	}
	return fit(b.String(), blockkit.MaxSectionText)
}
