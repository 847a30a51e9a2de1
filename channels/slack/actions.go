package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/forgetmenot/forgetmenot/router"
	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// Staff actions arrive by Socket Mode or HTTP; both hand them to the methods
// here, which answer at once (Slack wants an answer within 3 seconds) and do
// the work in the background. Retried deliveries are recognised by a claim
// on the interaction's own id and do nothing twice.

// workTimeout bounds the background work of one action.
const workTimeout = 30 * time.Second

// background runs f detached from the request that triggered it; Wait waits
// for all of it (shutdown, tests). Once Stop has begun, f runs at once in
// the caller instead: work started that late (an outbox delivery finishing
// during shutdown raises the undelivered alert) would otherwise be waited
// for by nobody and lost when the process exits.
func (s *Slack) background(f func(ctx context.Context)) {
	run := func() {
		ctx, cancel := context.WithTimeout(context.Background(), workTimeout)
		defer cancel()
		f(ctx)
	}
	s.stopMu.Lock()
	if s.stopped {
		s.stopMu.Unlock()
		run()
		return
	}
	s.work.Add(1) // under the lock, so Stop's Wait counts it
	s.stopMu.Unlock()
	go func() {
		defer s.work.Done()
		run()
	}()
}

// Wait blocks until background work started by actions has finished.
func (s *Slack) Wait() { s.work.Wait() }

// Stop ends the channel's own timers (the debounced App Home refreshes) and
// waits for background work: call it once, at shutdown. Work asked for
// afterwards runs in its caller.
func (s *Slack) Stop() {
	s.stopMu.Lock()
	s.stopped = true
	s.stopMu.Unlock()
	s.home.stop()
	s.work.Wait()
}

type waitGroup = sync.WaitGroup

// once claims key for handledTTL and reports whether this is the first time.
// If Redis cannot say, the action is handled: losing a click is worse than a
// rare double acknowledgement, and the router refuses most repeats itself.
func (s *Slack) once(ctx context.Context, key string) bool {
	if key == "" {
		return true
	}
	ok, err := s.cfg.State.Claim(ctx, "handled:"+key, s.now().UTC().Format(time.RFC3339), handledTTL)
	if err != nil {
		s.log.Warn("could not record a handled Slack action; handling it anyway", "key", key, "err", err)
		return true
	}
	return ok
}

// Interaction handles a button click or modal submission and returns what to
// answer Slack with (nil: an empty acknowledgement, which closes a modal).
func (s *Slack) Interaction(ctx context.Context, cb slackgo.InteractionCallback) any {
	return s.interaction(ctx, cb, s.background)
}

// interaction handles cb and returns the answer; the work that follows the
// answer goes to later (HTTP mode: the background; Socket Mode: run by the
// bounded worker right after the acknowledgement, which keeps the order per
// complaint).
func (s *Slack) interaction(ctx context.Context, cb slackgo.InteractionCallback, later func(func(context.Context))) any {
	switch cb.Type {
	case slackgo.InteractionTypeBlockActions:
		if !s.once(ctx, "action:"+interactionKey(cb)) {
			return nil
		}
		later(func(ctx context.Context) { s.blockAction(ctx, cb) })
		return nil
	case slackgo.InteractionTypeViewSubmission:
		return s.viewSubmission(ctx, cb, later)
	}
	return nil
}

func interactionKey(cb slackgo.InteractionCallback) string {
	if cb.TriggerID != "" {
		return cb.TriggerID
	}
	if len(cb.ActionCallback.BlockActions) > 0 {
		return cb.User.ID + ":" + cb.ActionCallback.BlockActions[0].ActionTs
	}
	return ""
}

// actor resolves the Slack user to a roster owner who may act on complaint
// id. On refusal it returns the polite text to show them.
func (s *Slack) actor(ctx context.Context, slackUser, id string) (router.Owner, router.Complaint, string) {
	owner, ok, err := s.people.owner(ctx, slackUser)
	if err != nil {
		s.log.Warn("could not look up a Slack user", "user", slackUser, "err", err)
		return router.Owner{}, router.Complaint{}, "Sorry, I could not check who you are in Slack just now. Please try again in a moment."
	}
	if !ok {
		return router.Owner{}, router.Complaint{}, "Sorry, you are not on the forgetmenot roster, so you cannot act on complaints. Ask your team lead to add you (with your Slack e-mail address or `slack_user_id`)."
	}
	c, _, err := s.cfg.Complaints.Complaint(ctx, id)
	if errors.Is(err, router.ErrNotFound) {
		return owner, router.Complaint{}, fmt.Sprintf("There is no complaint %s.", id)
	}
	if err != nil {
		s.log.Warn("could not read a complaint for a Slack action", "complaint", id, "err", err)
		return owner, router.Complaint{}, "Sorry, I could not read " + id + " just now. Please try again in a moment."
	}
	if !s.cfg.Complaints.MayAct(c, owner.ID) {
		return owner, c, fmt.Sprintf("Sorry %s, %s belongs to %s: only the owner or the team lead can act on it. If it should be yours, ask them or your lead to reassign it.",
			firstName(owner.Name), c.ID, s.people.name(c.Owner))
	}
	return owner, c, ""
}

func firstName(name string) string {
	if f, _, ok := strings.Cut(strings.TrimSpace(name), " "); ok {
		return f
	}
	return name
}

// tell shows text to one user only, in the channel where they acted.
func (s *Slack) tell(ctx context.Context, channel, user, text string) {
	if channel == "" {
		ch, _, _, err := s.api.OpenConversationContext(ctx, &slackgo.OpenConversationParameters{Users: []string{user}, ReturnIM: true})
		if err != nil || ch == nil {
			s.log.Warn("could not reach a Slack user to tell them", "user", user, "text", text, "err", err)
			return
		}
		channel = ch.ID
	}
	if err := s.postEphemeral(ctx, channel, user, Message{Text: clipRaw(text, 3000)}); err != nil {
		s.log.Warn("could not show a Slack user a message", "user", user, "text", text, "err", s.classify("ephemeral message", err))
	}
}

func actionChannel(cb slackgo.InteractionCallback) string {
	if cb.Container.ChannelID != "" {
		return cb.Container.ChannelID
	}
	return cb.Channel.ID
}

func (s *Slack) blockAction(ctx context.Context, cb slackgo.InteractionCallback) {
	if len(cb.ActionCallback.BlockActions) == 0 {
		s.log.Debug("slack interaction without block actions ignored", "user", cb.User.ID)
		return
	}
	a := cb.ActionCallback.BlockActions[0]
	channel := actionChannel(cb)
	switch a.ActionID {
	case actAcknowledge, actReply, actPromise, actClose, actReassign:
	case actAway, actBack:
		s.awayAction(ctx, cb, a)
		return
	default:
		s.log.Debug("unknown slack action ignored", "action", a.ActionID)
		return
	}
	owner, c, refusal := s.actor(ctx, cb.User.ID, a.Value)
	if refusal != "" {
		s.log.Info("slack action refused", "action", a.ActionID, "complaint", a.Value, "user", cb.User.ID, "owner", owner.ID)
		s.tell(ctx, channel, cb.User.ID, refusal)
		return
	}
	if c.Status != router.StatusOpen {
		s.tell(ctx, channel, cb.User.ID, c.ID+" is closed. If the customer writes again it reopens and comes back to its owner.")
		return
	}
	meta, _ := json.Marshal(modalMeta{Complaint: c.ID, Channel: channel})
	var view slackgo.ModalViewRequest
	switch a.ActionID {
	case actAcknowledge:
		if _, err := s.cfg.Complaints.Acknowledge(ctx, c.ID, owner.ID); err != nil {
			s.tell(ctx, channel, cb.User.ID, "Could not acknowledge "+c.ID+": "+err.Error())
		}
		return
	case actReply:
		via, err := s.cfg.Complaints.Reach(c)
		if err != nil {
			// Said before anyone writes an answer that could not be sent.
			s.tell(ctx, channel, cb.User.ID, "A reply to the customer of "+c.ID+" cannot be sent: "+esc(problemOf(err), reasonLen)+
				". Reach them another way, and add a note in this thread saying what you did.")
			return
		}
		view = replyModal(c, via, string(meta))
	case actPromise:
		view = promiseModal(c, string(meta), s.now())
	case actClose:
		view = closeModal(c, string(meta), s.cfg.Categories)
	case actReassign:
		owners, err := s.cfg.Complaints.Owners(ctx)
		if err != nil {
			s.tell(ctx, channel, cb.User.ID, "Could not list the owners just now; please try again.")
			return
		}
		view = reassignModal(c, string(meta), owners)
	}
	if err := s.openView(ctx, cb.TriggerID, view); err != nil {
		s.log.Warn("could not open a Slack modal", "action", a.ActionID, "complaint", c.ID, "err", s.classify("views.open", err))
		s.tell(ctx, channel, cb.User.ID, "Could not open the form (Slack said: "+err.Error()+"). Please click again.")
	}
}

// submission is a validated modal: the router call to make.
type submission struct {
	what string
	do   func(ctx context.Context, actor string) error
}

// viewSubmission validates a modal at once (errors show next to the field),
// then acknowledges and carries it out in the background.
func (s *Slack) viewSubmission(ctx context.Context, cb slackgo.InteractionCallback, later func(func(context.Context))) any {
	if cb.View.CallbackID == viewAway {
		return s.awaySubmission(ctx, cb, later)
	}
	var meta modalMeta
	if err := json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta); err != nil || meta.Complaint == "" {
		return nil
	}
	// A retried delivery of a submission already carried out: just close the
	// modal again.
	if _, done, err := s.cfg.State.Get(ctx, "handled:view:"+cb.View.ID); err == nil && done {
		return nil
	}
	values := map[string]map[string]slackgo.BlockAction{}
	if cb.View.State != nil {
		values = cb.View.State.Values
	}
	get := func(block string) slackgo.BlockAction { return values[block][inputAction] }
	var sub submission
	fieldErrs := map[string]string{}
	id := meta.Complaint
	switch cb.View.CallbackID {
	case viewReply:
		body := strings.TrimSpace(get(blockReplyBody).Value)
		if body == "" {
			fieldErrs[blockReplyBody] = "Write the answer for the customer."
		}
		tooLong(fieldErrs, blockReplyBody, body, router.MaxReplyBytes)
		sub = submission{"reply to the customer", func(ctx context.Context, actor string) error {
			_, err := s.cfg.Complaints.Reply(ctx, id, actor, body)
			return err
		}}
	case viewPromise:
		by := time.Unix(get(blockPromiseBy).SelectedDateTime, 0)
		note := strings.TrimSpace(get(blockPromiseNote).Value)
		tell := len(get(blockPromiseTell).SelectedOptions) > 0
		switch {
		case get(blockPromiseBy).SelectedDateTime == 0:
			fieldErrs[blockPromiseBy] = "Choose when you will follow up."
		case !by.After(s.now()):
			fieldErrs[blockPromiseBy] = "Choose a moment in the future."
		}
		if tell && note == "" {
			fieldErrs[blockPromiseNote] = "Write what you promise: the customer will read it."
		}
		tooLong(fieldErrs, blockPromiseNote, note, router.MaxReasonBytes)
		sub = submission{"promise", func(ctx context.Context, actor string) error {
			_, err := s.cfg.Complaints.Promise(ctx, id, actor, by, note, tell)
			return err
		}}
	case viewClose:
		resolution := strings.TrimSpace(get(blockCloseResolution).Value)
		prevention := strings.TrimSpace(get(blockClosePrevention).Value)
		category := categoryOf(get(blockCloseCategory).SelectedOption.Value, s.cfg.Categories)
		if category == "" {
			category = strings.TrimSpace(get(blockCloseCategory).Value)
		}
		if resolution == "" {
			fieldErrs[blockCloseResolution] = "Say how it was resolved."
		}
		if category == "" {
			fieldErrs[blockCloseCategory] = "Choose the root cause."
		}
		if utf8.RuneCountInString(prevention) > maxPrevention {
			// Slack enforces the field's max_length; a forged submission is
			// refused here as clearly.
			fieldErrs[blockClosePrevention] = fmt.Sprintf("Keep it to %d characters.", maxPrevention)
		} else {
			tooLong(fieldErrs, blockClosePrevention, prevention, router.MaxPreventionBytes)
		}
		tooLong(fieldErrs, blockCloseResolution, resolution, router.MaxResolutionBytes)
		sub = submission{"close", func(ctx context.Context, actor string) error {
			_, err := s.cfg.Complaints.CloseWith(ctx, id, actor, router.Closing{Resolution: resolution, Category: category, Prevention: prevention})
			return err
		}}
	case viewReassign:
		to := get(blockReassignOwner).SelectedOption.Value
		reason := strings.TrimSpace(get(blockReassignReason).Value)
		if to == "" {
			fieldErrs[blockReassignOwner] = "Choose the new owner."
		}
		if reason == "" {
			fieldErrs[blockReassignReason] = "Say why the owner changes."
		}
		tooLong(fieldErrs, blockReassignReason, reason, router.MaxReasonBytes)
		sub = submission{"reassign", func(ctx context.Context, actor string) error {
			_, err := s.cfg.Complaints.Reassign(ctx, id, actor, to, reason)
			return err
		}}
	default:
		return nil
	}
	if len(fieldErrs) > 0 {
		return slackgo.NewErrorsViewSubmissionResponse(fieldErrs)
	}
	owner, c, refusal := s.actor(ctx, cb.User.ID, id)
	if refusal != "" {
		s.log.Info("slack submission refused", "view", cb.View.CallbackID, "complaint", id, "user", cb.User.ID, "owner", owner.ID)
		return slackgo.NewErrorsViewSubmissionResponse(map[string]string{firstInput(cb.View.CallbackID): refusal})
	}
	if c.Status != router.StatusOpen {
		return slackgo.NewErrorsViewSubmissionResponse(map[string]string{firstInput(cb.View.CallbackID): c.ID + " was closed in the meantime."})
	}
	if !s.once(ctx, "view:"+cb.View.ID) {
		return nil
	}
	user := cb.User.ID
	later(func(ctx context.Context) {
		if err := sub.do(ctx, owner.ID); err != nil {
			s.log.Warn("slack submission failed", "what", sub.what, "complaint", id, "owner", owner.ID, "err", err)
			s.tell(ctx, meta.Channel, user, fmt.Sprintf("Your %s on %s did not go through: %s", sub.what, id, userError(err)))
			return
		}
		s.log.Info("slack submission carried out", "what", sub.what, "complaint", id, "owner", owner.ID)
	})
	return nil
}

// tooLong refuses text over the router's limit in the form itself: Slack's
// max_length counts characters, the router bytes, so text in a script of
// three bytes a character fits the field and used to be refused only after
// the form had closed, and was lost.
func tooLong(fieldErrs map[string]string, block, text string, limit int) {
	if len(text) > limit && fieldErrs[block] == "" {
		fieldErrs[block] = fmt.Sprintf("Too long to store: keep it under %d bytes (about %d characters of this text); it is %d.", limit, limit*utf8.RuneCountInString(text)/len(text), len(text))
	}
}

func firstInput(callback string) string {
	switch callback {
	case viewReply:
		return blockReplyBody
	case viewPromise:
		return blockPromiseBy
	case viewClose:
		return blockCloseResolution
	}
	return blockReassignOwner
}

// problemOf is what is wrong, without the field's name.
func problemOf(err error) string {
	var ve *router.ValidationError
	if errors.As(err, &ve) {
		return ve.Problem
	}
	return err.Error()
}

// userError words a router error for staff.
func userError(err error) string {
	var ve *router.ValidationError
	if errors.As(err, &ve) {
		return ve.Field + " " + ve.Problem
	}
	if errors.Is(err, router.ErrInvalidState) {
		return err.Error()
	}
	return "something went wrong on our side (" + err.Error() + "); please try again"
}

// Event handles an Events API event: a message staff typed in a complaint's
// thread becomes an internal note on its timeline (never sent to the
// customer). Only thread replies count; the message's own timestamp keys the
// note, so a redelivered event records nothing twice.
func (s *Slack) Event(ctx context.Context, ev slackevents.EventsAPIEvent) {
	s.event(ev, s.background)
}

// event hands the work ev asks for to run (HTTP mode: the background;
// Socket Mode: the ordered worker, after the acknowledgement).
func (s *Slack) event(ev slackevents.EventsAPIEvent, run func(func(context.Context))) {
	if h, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent); ok {
		run(func(ctx context.Context) { s.homeOpened(ctx, h) })
		return
	}
	m, ok := ev.InnerEvent.Data.(*slackevents.MessageEvent)
	if !ok || m.BotID != "" || m.SubType != "" || m.User == "" || m.ThreadTimeStamp == "" || m.ThreadTimeStamp == m.TimeStamp {
		return
	}
	run(func(ctx context.Context) { s.note(ctx, m) })
}

func (s *Slack) note(ctx context.Context, m *slackevents.MessageEvent) {
	id, found, err := s.cfg.State.Get(ctx, rootKey(m.Channel, m.ThreadTimeStamp))
	if err != nil {
		s.log.Error("could not look up the complaint of a Slack thread; the note is not recorded", "channel", m.Channel, "ts", m.TimeStamp, "err", err)
		return
	}
	if !found {
		return
	}
	owner, ok, err := s.people.owner(ctx, m.User)
	if err != nil || !ok {
		s.log.Warn("a note from a Slack user who is not on the roster is not recorded", "user", m.User, "complaint", id, "err", err)
		s.tell(ctx, m.Channel, m.User, "That message was not recorded on "+id+": you are not on the forgetmenot roster.")
		return
	}
	text := html.UnescapeString(m.Text)
	if _, err := s.cfg.Complaints.AddNote(ctx, id, owner.ID, text, "slack:"+m.Channel+":"+m.TimeStamp); err != nil {
		s.log.Warn("could not record a note from Slack", "complaint", id, "owner", owner.ID, "err", err)
		s.tell(ctx, m.Channel, m.User, "That message was not recorded on "+id+": "+userError(err))
		return
	}
	s.log.Info("note recorded from Slack", "complaint", id, "owner", owner.ID)
	// A small mark tells the writer it is on the timeline (internal only).
	if err := s.api.AddReactionContext(ctx, "memo", slackgo.NewRefToMessage(m.Channel, m.TimeStamp)); err != nil && slackCode(err) != "already_reacted" {
		s.log.Warn("could not mark a recorded note", "complaint", id, "err", err)
	}
}
