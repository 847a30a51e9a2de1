package slack

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/slack/blockkit"
	"github.com/forgetmenot/forgetmenot/router"
	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// The owner's worklist in App Home: opening the app's Home tab publishes the
// owner's open complaints (a lead's: their teams'), the most urgent first —
// overdue and promised today on top, then by the next deadline — each with
// its state, customer, age and the same buttons as its thread. A change to
// one of their complaints publishes it again, debounced (a burst of changes
// publishes once) and paced with the rest of the owner's Slack traffic.

const (
	actAway = "fmn_away"
	actBack = "fmn_back"

	// homeShown bounds the complaints listed (two blocks each, within
	// Slack's 100 blocks per view).
	homeShown = 40
)

// homeKey marks an owner who has opened the Home tab (whose Home is kept
// current) and remembers their Slack user id.
func homeKey(ownerID string) string { return "home:" + ownerID }

// debouncer runs f for a key once per quiet period: a call while one is
// pending for the key joins it (the pending run reads fresh state anyway).
type debouncer struct {
	every   time.Duration
	mu      sync.Mutex
	pending map[string]*time.Timer
	stopped bool
}

func newDebouncer(every time.Duration) *debouncer {
	return &debouncer{every: every, pending: map[string]*time.Timer{}}
}

func (d *debouncer) schedule(key string, f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || d.pending[key] != nil {
		return
	}
	d.pending[key] = time.AfterFunc(d.every, func() {
		d.mu.Lock()
		delete(d.pending, key)
		stopped := d.stopped
		d.mu.Unlock()
		if !stopped {
			f()
		}
	})
}

// stop cancels what is pending and schedules nothing more (shutdown: an App
// Home a moment stale is refreshed at the next change or opening).
func (d *debouncer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	for k, t := range d.pending {
		t.Stop()
		delete(d.pending, k)
	}
}

// homeChanged schedules the Home of everyone a notification's complaint
// concerns (owner, recipient, previous owner, the team's lead).
func (s *Slack) homeChanged(n router.Notification) {
	c := n.Complaint
	if c.ID == "" {
		return
	}
	who := map[string]bool{c.Owner: true, n.Recipient: true}
	if n.Event != nil && n.Event.PreviousOwner != "" {
		who[n.Event.PreviousOwner] = true
	}
	if t, ok := s.cfg.Complaints.Directory().Team(c.Team); ok && t.Lead != "" {
		who[t.Lead] = true
	}
	owners := make([]string, 0, len(who))
	for owner := range who {
		owners = append(owners, owner)
	}
	s.scheduleHome(owners...)
}

// scheduleHome publishes again, debounced, the Home of each owner who has
// opened theirs.
func (s *Slack) scheduleHome(owners ...string) {
	for _, owner := range owners {
		if owner == "" {
			continue
		}
		s.home.schedule(owner, func() {
			ctx, cancel := context.WithTimeout(context.Background(), workTimeout)
			defer cancel()
			user, opened, err := s.cfg.State.Get(ctx, homeKey(owner))
			if err != nil || !opened {
				return
			}
			if err := s.publishHome(ctx, owner, user); err != nil {
				s.log.Warn("could not refresh an App Home", "owner", owner, "err", err)
			}
		})
	}
}

// homeOpened publishes the Home of the Slack user who opened it, and keeps it
// current from now on.
func (s *Slack) homeOpened(ctx context.Context, ev *slackevents.AppHomeOpenedEvent) {
	if ev.Tab != "" && ev.Tab != "home" {
		return
	}
	owner, ok, err := s.people.owner(ctx, ev.User)
	if err != nil {
		s.log.Warn("could not look up who opened the App Home", "user", ev.User, "err", err)
		return
	}
	if !ok {
		view := slackgo.HomeTabViewRequest{Type: slackgo.VTHomeTab, Blocks: slackgo.Blocks{BlockSet: []slackgo.Block{
			slackgo.NewSectionBlock(mrkdwn("You are not on the forgetmenot roster, so no complaints are shown to you. Ask your team lead to add you (with your Slack e-mail address or `slack_user_id`)."), nil, nil),
		}}}
		if err := s.publishView(ctx, ev.User, view); err != nil {
			s.log.Warn("could not publish an App Home", "user", ev.User, "err", s.classify("views.publish", err))
		}
		return
	}
	if err := s.cfg.State.Set(ctx, homeKey(owner.ID), ev.User, threadTTL); err != nil {
		s.log.Warn("could not record an opened App Home; it is shown but not kept current", "owner", owner.ID, "err", err)
	}
	if err := s.publishHome(ctx, owner.ID, ev.User); err != nil {
		s.log.Warn("could not publish an App Home", "owner", owner.ID, "err", err)
	}
}

// publishHome builds and publishes ownerID's worklist to their Slack user.
func (s *Slack) publishHome(ctx context.Context, ownerID, user string) error {
	dir := s.cfg.Complaints.Directory()
	o, ok := dir.Owner(ownerID)
	if !ok {
		return fmt.Errorf("owner %q: %w", ownerID, errNotOnRoster)
	}
	leads := map[string]bool{}
	for _, m := range dir.Owners() {
		for _, t := range m.Teams {
			if team, ok := dir.Team(t); ok && team.Lead == ownerID {
				leads[t] = true
			}
		}
	}
	var list []router.Complaint
	var err error
	if len(leads) > 0 {
		var all []router.Complaint
		if all, err = s.cfg.Complaints.Complaints(ctx, router.Filter{Status: router.StatusOpen, Limit: 1000}); err == nil {
			for _, c := range all {
				if c.Owner == ownerID || leads[c.Team] {
					list = append(list, c)
				}
			}
		}
	} else {
		list, err = s.cfg.Complaints.Complaints(ctx, router.Filter{Status: router.StatusOpen, Owner: ownerID, Limit: 1000})
	}
	if err != nil {
		return fmt.Errorf("reading the complaints of %s: %w", ownerID, err)
	}
	owners, err := s.cfg.Complaints.Owners(ctx)
	if err != nil {
		return fmt.Errorf("reading the owners: %w", err)
	}
	var self router.OwnerStatus
	for _, st := range owners {
		if st.ID == ownerID {
			self = st
		}
	}
	// "Today" is the owner's, in their calendar's zone, not the server's.
	now := s.now().In(s.cfg.Complaints.OwnerTimeZone(ownerID))
	view := homeView(o, len(leads) > 0, list, self, now, s.people.name, func(c router.Complaint) bool { return s.cfg.Complaints.MayAct(c, ownerID) })
	if err := s.pace.wait(ctx, "home:"+user); err != nil {
		return err
	}
	if err := s.publishView(ctx, user, view); err != nil {
		return s.classify("App Home of "+ownerID, err)
	}
	return nil
}

// nextDeadline is the complaint's nearest pending deadline (respond-by until
// answered, resolve-by, a promise), or zero.
func nextDeadline(c router.Complaint) (time.Time, string) {
	var at time.Time
	var what string
	consider := func(t time.Time, w string) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at, what = t, w
		}
	}
	if c.FirstResponseAt.IsZero() {
		consider(c.RespondBy, "respond by")
	}
	consider(c.ResolveBy, "resolve by")
	consider(c.PromisedBy, "follow-up promised")
	return at, what
}

// urgent reports whether a complaint belongs on top: a deadline passed, or a
// promise falls due today, the date of now in now's zone (the worklist
// owner's).
func urgent(c router.Complaint, now time.Time) bool {
	if at, _ := nextDeadline(c); !at.IsZero() && at.Before(now) {
		return true
	}
	if !c.PromisedBy.IsZero() {
		y1, m1, d1 := c.PromisedBy.In(now.Location()).Date()
		y2, m2, d2 := now.Date()
		return y1 == y2 && m1 == m2 && d1 == d2
	}
	return false
}

// sortWorklist orders complaints: urgent first, then by next deadline (none
// last), then oldest first.
func sortWorklist(cs []router.Complaint, now time.Time) {
	sort.SliceStable(cs, func(i, j int) bool {
		ui, uj := urgent(cs[i], now), urgent(cs[j], now)
		if ui != uj {
			return ui
		}
		di, _ := nextDeadline(cs[i])
		dj, _ := nextDeadline(cs[j])
		switch {
		case di.IsZero() != dj.IsZero():
			return !di.IsZero()
		case !di.Equal(dj):
			return di.Before(dj)
		}
		return cs[i].CreatedAt.Before(cs[j].CreatedAt)
	})
}

func age(d time.Duration) string {
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// homeView renders the worklist.
func homeView(o router.Owner, lead bool, cs []router.Complaint, self router.OwnerStatus, now time.Time, names func(string) string, mayAct func(router.Complaint) bool) slackgo.HomeTabViewRequest {
	sortWorklist(cs, now)
	title := "Your open complaints"
	if lead {
		title = "Your team's open complaints"
	}
	blocks := []slackgo.Block{slackgo.NewHeaderBlock(plain(clipPlain(fmt.Sprintf("%s: %d", title, len(cs)), blockkit.MaxHeaderText)))}
	var status string
	var button *slackgo.ButtonBlockElement
	if away := self.Away; away != nil {
		status = ":palm_tree: You are away until " + date(away.Until)
		switch {
		case self.CoveredBy != "" && self.CoveredBy != away.Cover && !self.NobodyCovers:
			// The cover is away too: say who has the owner's work now.
			status += ", covered by " + esc(names(self.CoveredBy), nameLen) + ", standing in for " + esc(names(away.Cover), nameLen)
		case away.Cover != "":
			status += ", covered by " + esc(names(away.Cover), nameLen)
		}
		if self.NobodyCovers {
			status += ". :warning: Nobody who covers for you is at work now: choose a cover who is"
		}
		button = slackgo.NewButtonBlockElement(actBack, o.ID, plain("I'm back"))
	} else {
		status = fmt.Sprintf("Hello %s. Most urgent first: overdue and promised today on top, then by the next deadline.", esc(firstName(o.Name), nameLen))
		button = slackgo.NewButtonBlockElement(actAway, o.ID, plain("I'm away until …"))
	}
	if len(self.Planned) > 0 {
		// What is planned shows too: a new absence over its days replaces it.
		p := self.Planned[0]
		status += fmt.Sprintf(" Planned away: %s until %s", date(p.From), date(p.Until))
		if p.Cover != "" {
			status += ", covered by " + esc(names(p.Cover), nameLen)
		}
		status += "."
	}
	blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn(fit(status, blockkit.MaxSectionText)), nil, slackgo.NewAccessory(button)))
	blocks = append(blocks, slackgo.NewDividerBlock())
	if len(cs) == 0 {
		blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn("Nothing open. :tada:"), nil, nil))
	}
	for i, c := range cs {
		if i == homeShown {
			blocks = append(blocks, slackgo.NewContextBlock("", mrkdwn(fmt.Sprintf("… and %d more: `/complaints mine` or `forgetmenot complaints list --status open`", len(cs)-homeShown))))
			break
		}
		blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn(homeLine(c, lead, now, names)), nil, nil))
		if mayAct(c) {
			blocks = append(blocks, slackgo.NewActionBlock("home_"+c.ID, caseButtons(c)...))
		}
	}
	return slackgo.HomeTabViewRequest{Type: slackgo.VTHomeTab, CallbackID: "fmn_home", Blocks: slackgo.Blocks{BlockSet: blocks}}
}

// homeLine is one complaint of the worklist.
func homeLine(c router.Complaint, lead bool, now time.Time, names func(string) string) string {
	var b strings.Builder
	mark := ""
	if urgent(c, now) {
		mark = ":red_circle: "
	}
	b.WriteString(mark + "*" + c.ID + "* · " + esc(c.Customer.Label(), nameLen))
	if c.Subject != "" {
		b.WriteString(" — " + esc(c.Subject, 150))
	}
	state := "not acknowledged"
	switch {
	case !c.FirstResponseAt.IsZero():
		state = "answered"
	case !c.AcknowledgedAt.IsZero():
		state = "acknowledged"
	}
	if c.Reopens > 0 {
		state += fmt.Sprintf(", reopened %d×", c.Reopens)
	}
	b.WriteString("\n" + state + " · " + channelLabel(c.Channel) + " · age " + age(now.Sub(c.CreatedAt)))
	if at, what := nextDeadline(c); !at.IsZero() {
		if at.Before(now) {
			b.WriteString(" · *" + what + " " + date(at) + " (overdue)*")
		} else {
			b.WriteString(" · " + what + " " + date(at))
		}
	}
	if lead {
		b.WriteString(" · owner " + esc(names(c.Owner), nameLen))
	}
	return fit(b.String(), blockkit.MaxSectionText)
}

// caseButtons are the actions on an open complaint (its thread's and its
// Home line's).
func caseButtons(c router.Complaint) []slackgo.BlockElement {
	var buttons []slackgo.BlockElement
	if c.AcknowledgedAt.IsZero() {
		b := slackgo.NewButtonBlockElement(actAcknowledge, c.ID, plain("Acknowledge"))
		b.Style = slackgo.StylePrimary
		buttons = append(buttons, b)
	}
	return append(buttons,
		slackgo.NewButtonBlockElement(actReply, c.ID, plain("Reply")),
		slackgo.NewButtonBlockElement(actPromise, c.ID, plain("Promise follow-up")),
		slackgo.NewButtonBlockElement(actClose, c.ID, plain("Close")),
		slackgo.NewButtonBlockElement(actReassign, c.ID, plain("Reassign")),
	)
}
