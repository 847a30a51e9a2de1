package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/slack/blockkit"
	"github.com/forgetmenot/forgetmenot/router"
	slackgo "github.com/slack-go/slack"
)

// Away from Slack: "I'm away until …" (an App Home button with a modal, or
// /complaints away <until> [cover]) and "I'm back" (/complaints back)
// record the absence through the router exactly as POST /v1/owners/{id}/away
// and /back do: no new complaints while away, the cover gets the
// notifications and may act.

const (
	viewAway       = "fmn_away"
	blockAwayUntil = "away_until"
	blockAwayCover = "away_cover"
	blockAwayNote  = "away_note"
)

// mention is how Slack writes a user in a command's text: <@U123> or
// <@U123|name>.
var mention = regexp.MustCompile(`^<@([A-Z0-9]+)(?:\|[^>]*)?>$`)

// awayMeta travels in the away modal's private_metadata.
type awayMeta struct {
	Owner string `json:"owner"`
}

func awayModal(o router.Owner, owners []router.OwnerStatus, now time.Time) slackgo.ModalViewRequest {
	until := slackgo.NewDateTimePickerBlockElement(inputAction)
	until.InitialDateTime = now.Add(24 * time.Hour).Truncate(time.Hour).Unix()
	blocks := []slackgo.Block{
		slackgo.NewSectionBlock(mrkdwn("While you are away you get no new complaints and keep your open ones; your cover gets their notifications and may act on them."), nil, nil),
		slackgo.NewInputBlock(blockAwayUntil, plain("Back on"), nil, until),
	}
	var opts []*slackgo.OptionBlockObject
	for _, st := range owners {
		if !st.Active || st.ID == o.ID || st.Away != nil || len(opts) == blockkit.MaxOptions {
			continue
		}
		label := clipPlain(st.Name+" · "+strings.Join(st.Teams, ", "), blockkit.MaxOptionText)
		opts = append(opts, slackgo.NewOptionBlockObject(st.ID, plain(label), nil))
	}
	if len(opts) > 0 {
		sel := slackgo.NewOptionsSelectBlockElement(slackgo.OptTypeStatic, plain("Choose who covers"), inputAction, opts...)
		cover := slackgo.NewInputBlock(blockAwayCover, plain("Cover"), plain("Gets your notifications and may act on your complaints."), sel)
		cover.Optional = true
		blocks = append(blocks, cover)
	}
	blocks = append(blocks, textInput(blockAwayNote, "Note", "Optional: shown to the team with your absence.", false, 500, true))
	meta, _ := json.Marshal(awayMeta{Owner: o.ID})
	return modal(viewAway, "I'm away", "Save", string(meta), blocks...)
}

// awayAction handles the App Home's away and back buttons.
func (s *Slack) awayAction(ctx context.Context, cb slackgo.InteractionCallback, a *slackgo.BlockAction) {
	owner, ok, err := s.people.owner(ctx, cb.User.ID)
	if err != nil || !ok {
		s.tell(ctx, "", cb.User.ID, "Sorry, you are not on the forgetmenot roster (or I could not check just now).")
		return
	}
	switch a.ActionID {
	case actBack:
		if err := s.cfg.Complaints.Back(ctx, owner.ID, owner.ID); err != nil {
			s.tell(ctx, "", cb.User.ID, "Could not record that you are back: "+userError(err))
			return
		}
		s.log.Info("owner back, from Slack", "owner", owner.ID)
		s.refreshHome(ctx, owner.ID, cb.User.ID)
	case actAway:
		owners, err := s.cfg.Complaints.Owners(ctx)
		if err != nil {
			s.tell(ctx, "", cb.User.ID, "Could not list the owners just now; please try again.")
			return
		}
		if err := s.openView(ctx, cb.TriggerID, awayModal(owner, owners, s.now())); err != nil {
			s.log.Warn("could not open the away modal", "owner", owner.ID, "err", s.classify("views.open", err))
			s.tell(ctx, "", cb.User.ID, "Could not open the form (Slack said: "+err.Error()+"). Please click again.")
		}
	}
}

// awaySubmission validates the away modal and records the absence.
func (s *Slack) awaySubmission(ctx context.Context, cb slackgo.InteractionCallback, later func(func(context.Context))) any {
	var meta awayMeta
	_ = json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta)
	owner, ok, err := s.people.owner(ctx, cb.User.ID)
	if err != nil || !ok || owner.ID != meta.Owner {
		// Only the owner themselves records their absence from Slack.
		return slackgo.NewErrorsViewSubmissionResponse(map[string]string{blockAwayUntil: "Only you can say you are away, and you are not on the roster."})
	}
	values := map[string]map[string]slackgo.BlockAction{}
	if cb.View.State != nil {
		values = cb.View.State.Values
	}
	get := func(block string) slackgo.BlockAction { return values[block][inputAction] }
	a := router.Absence{Owner: owner.ID, Cover: get(blockAwayCover).SelectedOption.Value, Note: strings.TrimSpace(get(blockAwayNote).Value)}
	if ts := get(blockAwayUntil).SelectedDateTime; ts != 0 {
		a.Until = time.Unix(ts, 0).UTC()
	}
	if _, err := s.cfg.Complaints.SetAway(ctx, a, owner.ID); err != nil {
		field := blockAwayUntil
		var ve *router.ValidationError
		if errors.As(err, &ve) && ve.Field == "cover" {
			field = blockAwayCover
		}
		return slackgo.NewErrorsViewSubmissionResponse(map[string]string{field: userError(err)})
	}
	s.log.Info("owner away, from Slack", "owner", owner.ID, "until", a.Until, "cover", a.Cover)
	user := cb.User.ID
	later(func(ctx context.Context) { s.refreshHome(ctx, owner.ID, user) })
	return nil
}

// refreshHome publishes an owner's Home at once (after their own action).
func (s *Slack) refreshHome(ctx context.Context, ownerID, user string) {
	if err := s.publishHome(ctx, ownerID, user); err != nil {
		s.log.Warn("could not refresh an App Home", "owner", ownerID, "err", err)
	}
}

// awayCommand is /complaints away <until> [cover] [note…].
func (s *Slack) awayCommand(ctx context.Context, me router.Owner, args []string) *slackgo.Msg {
	if len(args) == 0 {
		return ephemeral("Say until when: `/complaints away 2026-12-21 [cover]` (a date, or an RFC 3339 time such as 2026-12-21T09:00:00+01:00). The cover is an owner id or an @mention.")
	}
	// A date is the start of that day in the owner's calendar zone, as in
	// the roster and the API.
	until, err := router.ParseWhenIn(args[0], s.cfg.Complaints.OwnerTimeZone(me.ID))
	if err != nil {
		return ephemeral(fmt.Sprintf("%q is not a date (2026-12-21) or an RFC 3339 time: `/complaints away 2026-12-21 [cover]`", clipRaw(args[0], 60)))
	}
	a := router.Absence{Owner: me.ID, Until: until}
	if len(args) > 1 {
		cover, err := s.coverOf(ctx, args[1])
		if err != nil {
			return ephemeral(err.Error())
		}
		a.Cover = cover
		a.Note = strings.Join(args[2:], " ")
	}
	got, err := s.cfg.Complaints.SetAway(ctx, a, me.ID)
	if err != nil {
		return ephemeral("Your absence was not recorded: " + userError(err))
	}
	s.log.Info("owner away, from /complaints", "owner", me.ID, "until", got.Until, "cover", got.Cover)
	text := "You are away until " + date(got.Until) + ". You get no new complaints meanwhile and keep your open ones."
	if got.Cover != "" {
		text += " " + esc(s.people.name(got.Cover), nameLen) + " covers: they get your notifications and may act on your complaints."
	}
	s.homeSoon(me.ID)
	return ephemeral(text + " Back early: `/complaints back`.")
}

func (s *Slack) backCommand(ctx context.Context, me router.Owner) *slackgo.Msg {
	if err := s.cfg.Complaints.Back(ctx, me.ID, me.ID); err != nil {
		return ephemeral("Could not record that you are back: " + userError(err))
	}
	s.log.Info("owner back, from /complaints", "owner", me.ID)
	s.homeSoon(me.ID)
	return ephemeral("Welcome back: you get new complaints again.")
}

// homeSoon refreshes an owner's Home (if they use it) after a change that
// is not about a complaint.
func (s *Slack) homeSoon(ownerID string) {
	s.scheduleHome(ownerID)
}

// coverOf reads the cover of a command: an owner id, @id, or a Slack
// mention of a user on the roster.
func (s *Slack) coverOf(ctx context.Context, arg string) (string, error) {
	if m := mention.FindStringSubmatch(arg); m != nil {
		o, ok, err := s.people.owner(ctx, m[1])
		if err != nil {
			return "", errors.New("could not check who the cover is just now; please try again")
		}
		if !ok {
			return "", errors.New("the cover you named is not on the forgetmenot roster")
		}
		return o.ID, nil
	}
	id := strings.TrimPrefix(arg, "@")
	if _, ok := s.cfg.Complaints.Directory().Owner(id); !ok {
		return "", fmt.Errorf("there is no owner %q to cover (use their owner id or an @mention)", clipRaw(id, 60))
	}
	return id, nil
}
