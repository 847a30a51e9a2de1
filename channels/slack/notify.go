package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	slackgo "github.com/slack-go/slack"
)

// thread is where a complaint lives in one recipient's Slack: the DM channel
// and the timestamp of its top message.
type thread struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
	// By is the notification that posted the top message, and Headline what
	// it said on top; both survive updates of the message.
	By       string `json:"by"`
	Headline string `json:"headline,omitempty"`
	// Replies are the timestamps of the replies posted in the thread, so an
	// erasure of the customer can redact them.
	Replies []string `json:"replies,omitempty"`
}

func threadKey(complaintID, ownerID string) string { return "thread:" + complaintID + ":" + ownerID }

// rootKey maps a top message back to its complaint, for notes typed in the
// thread.
func rootKey(channel, ts string) string { return "root:" + channel + ":" + ts }

func postedKey(notificationID string) string { return "posted:" + notificationID }

// Notify tells the recipient in Slack: the first notification of a complaint
// opens a DM with its top message (the whole case, with buttons); every later
// one is a reply in that thread, and the top message is updated to the
// complaint's current state. A redelivered notification updates instead of
// posting again. Escalations and over-capacity assignments also go to the
// lead channel when one is configured.
func (s *Slack) Notify(ctx context.Context, n router.Notification) error {
	if n.Kind == router.NotifyDigest {
		return s.postDigest(ctx, n)
	}
	// The recipient first: a lead channel that fails must not keep the
	// owner from their notification. On the last attempt Slack gets part of
	// the time only: a Slack that hangs must leave the fallback routes time
	// to reach the owner.
	rctx := ctx
	if router.LastAttempt(ctx) {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, lastAttemptSlackBudget)
		defer cancel()
	}
	err := s.notifyRecipient(rctx, n)
	if err != nil && (router.IsPermanent(err) || router.LastAttempt(ctx)) && !errors.Is(err, router.ErrNotFound) {
		// Slack refused for good, or failed on the last attempt (down for
		// longer than the retries last): the owner is told by another route.
		err = s.reroute(ctx, n, err)
	}
	if err != nil {
		return err
	}
	s.homeChanged(n)
	if err := s.notifyLead(ctx, n); err != nil {
		if router.LastAttempt(ctx) {
			s.log.Error("slack: the lead channel's notice was not posted; the recipient was notified", "notification", n.ID, "complaint", n.Complaint.ID, "err", err)
			return nil
		}
		// Retried: what reached the recipient is not posted again (once
		// per notification).
		return err
	}
	return nil
}

// lastAttemptSlackBudget bounds each Slack call of a notification's last
// attempt (the DM, and the Slack fallback routes), so that e-mail, the last
// route, still has time within the attempt.
var lastAttemptSlackBudget = 4 * time.Second

func (s *Slack) notifyRecipient(ctx context.Context, n router.Notification) error {
	what := "DM to owner " + n.Recipient
	user, err := s.people.slackUser(ctx, n.Recipient)
	if err != nil {
		if errors.Is(err, errNotOnRoster) || errors.Is(err, errNoAddress) {
			// Not on the roster, or neither a Slack id nor an address: only
			// the roster can fix it.
			s.health.failed("owner_unknown", what, s.now())
			s.cfg.OnPermanentError("owner_unknown")
			return router.Permanent(fmt.Errorf("slack %s: %w", what, err))
		}
		return s.classify(what, fmt.Errorf("users.lookupByEmail: %w", err))
	}
	if n.Complaint.ID == "" {
		// About no one complaint (the complaint-rate alert): there is no
		// thread to put it in, so it is a message of its own in the DM.
		if err := s.postAlone(ctx, n, user); err != nil {
			return s.classify(what, err)
		}
		s.health.ok(what)
		return nil
	}
	c, tl, err := s.cfg.Complaints.Complaint(ctx, n.Complaint.ID)
	if errors.Is(err, router.ErrNotFound) {
		return router.Permanent(err)
	}
	if err != nil {
		return fmt.Errorf("slack: reading %s for its top message: %w", n.Complaint.ID, err)
	}
	view, err := s.caseView(ctx, c, tl, n.Recipient)
	if err != nil {
		return err
	}
	th, found, err := s.thread(ctx, c.ID, n.Recipient)
	if err != nil {
		return err
	}
	if !found {
		th, err = s.openThread(ctx, n, user, view)
		if err != nil {
			return err
		}
		s.health.ok(what)
		if rootTellsAll(n) {
			return nil
		}
	}
	// A top message that this very notification posted (before a failure
	// that made the outbox retry) already says it all.
	if th.By != n.ID || !rootTellsAll(n) {
		if err := s.postInThread(ctx, n, th); err != nil {
			return s.classify(what, err)
		}
	}
	if n.Kind == router.NotifyErased {
		if err := s.redactReplies(ctx, n, th); err != nil {
			return s.classify(what, err)
		}
	}
	view.Headline = th.Headline
	if err := s.updateTop(ctx, th, view); err != nil {
		err = s.classify(what, err)
		if router.IsPermanent(err) {
			// The news is in the thread already: a top message Slack will
			// not update is logged and counted, not worth a fallback that
			// would tell the owner twice.
			s.log.Error("the top message of a complaint could not be updated; its thread has the news", "complaint", c.ID, "owner", n.Recipient, "err", err)
			return nil
		}
		return err
	}
	s.health.ok(what)
	return nil
}

// rootTellsAll reports whether a new top message is all the recipient needs
// for n: it is the assignment (or reassignment to them), whose headline says
// so.
func rootTellsAll(n router.Notification) bool {
	switch n.Kind {
	case router.NotifyAssigned:
		return true
	case router.NotifyReassigned:
		return n.Event != nil && n.Event.Owner == n.Recipient
	}
	return false
}

func (s *Slack) thread(ctx context.Context, complaintID, ownerID string) (thread, bool, error) {
	raw, found, err := s.cfg.State.Get(ctx, threadKey(complaintID, ownerID))
	if err != nil || !found {
		return thread{}, false, err
	}
	var th thread
	if err := json.Unmarshal([]byte(raw), &th); err != nil || th.Channel == "" || th.TS == "" {
		// A damaged record: start a fresh thread rather than fail forever.
		s.log.Warn("unreadable thread record; starting a new thread", "complaint", complaintID, "owner", ownerID)
		return thread{}, false, nil
	}
	return th, true, nil
}

// openThread opens the DM and posts the complaint's top message. The thread
// is recorded at once, so a retry of this notification updates it.
func (s *Slack) openThread(ctx context.Context, n router.Notification, user string, view caseView) (thread, error) {
	what := "DM to owner " + n.Recipient
	ch, _, _, err := s.api.OpenConversationContext(ctx, &slackgo.OpenConversationParameters{Users: []string{user}, ReturnIM: true})
	if err != nil {
		return thread{}, s.classify(what, fmt.Errorf("conversations.open: %w", err))
	}
	if ch == nil || ch.ID == "" {
		return thread{}, fmt.Errorf("slack %s: conversations.open returned no channel", what)
	}
	if err := s.pace.wait(ctx, ch.ID); err != nil {
		return thread{}, err
	}
	view.Headline = headline(n, s.people.name)
	ts, err := s.postMessage(ctx, ch.ID, "", Message{Text: caseText(view), Blocks: caseBlocks(view, s.people.name)})
	if err != nil {
		return thread{}, s.classify(what, err)
	}
	th := thread{Channel: ch.ID, TS: ts, By: n.ID, Headline: view.Headline}
	raw, _ := json.Marshal(th)
	if err := s.cfg.State.Set(ctx, threadKey(n.Complaint.ID, n.Recipient), string(raw), threadTTL); err != nil {
		// The message is out but unrecorded: the retry will post a second top
		// message. Rare (Redis failed between two calls) and visible.
		return thread{}, fmt.Errorf("slack: recording the thread of %s: %w", n.Complaint.ID, err)
	}
	if err := s.cfg.State.Set(ctx, rootKey(ch.ID, ts), n.Complaint.ID, threadTTL); err != nil {
		return thread{}, fmt.Errorf("slack: recording the thread of %s: %w", n.Complaint.ID, err)
	}
	s.log.Info("complaint thread opened", "complaint", n.Complaint.ID, "owner", n.Recipient, "channel", ch.ID, "ts", ts)
	return th, nil
}

// postInThread posts n as a reply in the thread, once: the reply's timestamp
// is recorded under the notification id, and a retry finds it.
func (s *Slack) postInThread(ctx context.Context, n router.Notification, th thread) error {
	if _, done, err := s.cfg.State.Get(ctx, postedKey(n.ID)); err != nil || done {
		return err
	}
	if err := s.pace.wait(ctx, th.Channel); err != nil {
		return err
	}
	blocks, text := eventBlocks(n, s.people.name)
	ts, err := s.postMessage(ctx, th.Channel, th.TS, Message{Text: text, Blocks: blocks})
	if err != nil {
		return err
	}
	if err := s.cfg.State.Set(ctx, postedKey(n.ID), ts, postedTTL); err != nil {
		return fmt.Errorf("slack: recording that %s was posted: %w", n.ID, err)
	}
	if n.Kind == router.NotifyErased {
		return nil
	}
	// Remember the reply for a later erasure of the customer; losing it
	// only leaves that reply unredacted.
	if cur, found, err := s.thread(ctx, n.Complaint.ID, n.Recipient); err == nil && found && cur.TS == th.TS {
		cur.Replies = append(cur.Replies, ts)
		if raw, err := json.Marshal(cur); err == nil {
			_ = s.cfg.State.Set(ctx, threadKey(n.Complaint.ID, n.Recipient), string(raw), threadTTL)
		}
	}
	return nil
}

// redactReplies rewrites every reply posted in the thread (they quote what
// the customer wrote) once the customer is erased, and forgets them.
func (s *Slack) redactReplies(ctx context.Context, n router.Notification, th thread) error {
	if len(th.Replies) == 0 {
		return nil
	}
	m := Message{Text: n.Complaint.ID + ": erased on request",
		Blocks: []slackgo.Block{slackgo.NewSectionBlock(mrkdwn(":wastebasket: _Erased: this message named a customer whose data was erased on request._"), nil, nil)}}
	for _, ts := range th.Replies {
		if err := s.updateMessage(ctx, th.Channel, ts, m); err != nil && slackCode(err) != "message_not_found" {
			return err
		}
	}
	th.Replies = nil
	raw, err := json.Marshal(th)
	if err != nil {
		return err
	}
	return s.cfg.State.Set(ctx, threadKey(n.Complaint.ID, n.Recipient), string(raw), threadTTL)
}

// postAlone posts n on its own in the recipient's DM, once: like a thread
// reply, its timestamp is recorded under the notification id.
func (s *Slack) postAlone(ctx context.Context, n router.Notification, user string) error {
	if _, done, err := s.cfg.State.Get(ctx, postedKey(n.ID)); err != nil || done {
		return err
	}
	ch, _, _, err := s.api.OpenConversationContext(ctx, &slackgo.OpenConversationParameters{Users: []string{user}, ReturnIM: true})
	if err != nil {
		return fmt.Errorf("conversations.open: %w", err)
	}
	if ch == nil || ch.ID == "" {
		return errors.New("conversations.open returned no channel")
	}
	if err := s.pace.wait(ctx, ch.ID); err != nil {
		return err
	}
	blocks, text := eventBlocks(n, s.people.name)
	ts, err := s.postMessage(ctx, ch.ID, "", Message{Text: text, Blocks: blocks})
	if err != nil {
		return err
	}
	if err := s.cfg.State.Set(ctx, postedKey(n.ID), ts, postedTTL); err != nil {
		return fmt.Errorf("slack: recording that %s was posted: %w", n.ID, err)
	}
	return nil
}

// updateTop rewrites the top message to the complaint's current state.
func (s *Slack) updateTop(ctx context.Context, th thread, view caseView) error {
	return s.updateMessage(ctx, th.Channel, th.TS, Message{Text: caseText(view), Blocks: caseBlocks(view, s.people.name)})
}

// caseView gathers what the top message shows for the recipient.
func (s *Slack) caseView(ctx context.Context, c router.Complaint, tl []router.Entry, recipient string) (caseView, error) {
	v := caseView{Complaint: c, Buttons: s.cfg.Complaints.MayAct(c, recipient)}
	for _, e := range tl {
		if e.Message == nil {
			continue
		}
		if v.First == nil {
			v.First = e.Message
		} else {
			v.More++
		}
	}
	h, err := s.cfg.Complaints.CustomerHistory(ctx, c, historyShown)
	if err != nil {
		return caseView{}, fmt.Errorf("slack: %w", err)
	}
	v.History, v.HistoryTotal = h.Recent, h.Total
	return v, nil
}

// notifyLead posts escalations, over-capacity assignments and complaint-rate
// alerts to the lead channel, once per change (a rate alert once per period,
// however many owners it also goes to). A channel the app cannot post in is
// reported (logs, metric, /readyz) but does not hold up the owner's
// notification.
func (s *Slack) notifyLead(ctx context.Context, n router.Notification) error {
	if s.cfg.LeadChannel == "" {
		return nil
	}
	over := n.Event != nil && n.Event.Details["over_capacity"] == "true" &&
		(n.Kind == router.NotifyAssigned || (n.Kind == router.NotifyReassigned && n.Event.Owner == n.Recipient))
	rate := n.Kind == router.NotifyComplaintRate
	if n.Kind != router.NotifyEscalation && !over && !rate {
		return nil
	}
	key := "lead:" + n.Complaint.ID + ":v" + strconv.FormatInt(n.Complaint.Version, 10) + ":" + string(n.Kind)
	if rate {
		key = "lead:" + ratePeriodKey(n)
	}
	if _, done, err := s.cfg.State.Get(ctx, key); err != nil || done {
		return err
	}
	what := "lead channel " + s.cfg.LeadChannel
	if err := s.pace.wait(ctx, s.cfg.LeadChannel); err != nil {
		return err
	}
	blocks, text := leadBlocks(n, s.people.name)
	if rate {
		blocks, text = eventBlocks(n, s.people.name)
		// One post for the several notifications of one alert (one per
		// owner), which delivery workers may hold at the same moment: the
		// one that claims the period posts. The claim outlives a post's
		// longest call but not the outbox's reclaim of a crashed worker's
		// notification, which then posts.
		won, err := s.cfg.State.Claim(ctx, key, "posting", s.cfg.HTTPTimeout+5*time.Second)
		if err != nil || !won {
			return err
		}
	}
	ts, err := s.postMessage(ctx, s.cfg.LeadChannel, "", Message{Text: text, Blocks: blocks})
	if err != nil {
		if rate {
			_ = s.cfg.State.Delete(context.WithoutCancel(ctx), key) // released: the retry posts
		}
		err = s.classify(what, err)
		if router.IsPermanent(err) {
			return nil
		}
		return err
	}
	s.health.ok(what)
	return s.cfg.State.Set(ctx, key, ts, postedTTL)
}

// ratePeriodKey names a complaint-rate alert's period: its notifications
// (one per owner alerted) are "complaint-rate:<period>:<owner>".
func ratePeriodKey(n router.Notification) string {
	if n.Event != nil && n.Event.Details["period"] != "" {
		return "complaint-rate:" + n.Event.Details["period"]
	}
	if i := strings.LastIndexByte(n.ID, ':'); i > 0 {
		return n.ID[:i]
	}
	return n.ID
}
