package router_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// accountableDesk is a desk whose router keeps deadlines: support answers
// within 4 working hours and resolves within 2 working days of an Amsterdam
// office, reminding at 75 %; a complaint waiting on the customer for 3
// working days nudges its owner. replica builds a second router (another
// daemon replica) on the same Redis and clock.
func accountableDesk(t *testing.T, start time.Time, csat *router.CSAT) (*desk, func() *router.Router) {
	t.Helper()
	rdb, keys := testredis.Client(t)
	store := queue.NewStore(rdb, keys, 0)
	owners := []router.Owner{
		{ID: "anna", Name: "Anna", Email: "anna@example.nl", Teams: []string{"support"}, Languages: []string{"nl", "en"}, Capacity: 3, Active: true},
		{ID: "bas", Name: "Bas", Email: "bas@example.nl", Teams: []string{"support"}, Languages: []string{"nl"}, Capacity: 3, Active: true},
		{ID: "chloe", Name: "Chloe", Email: "chloe@example.com", Teams: []string{"support"}, Languages: []string{"en"}, Capacity: 3, Active: true},
		{ID: "daan", Name: "Daan", Email: "daan@example.nl", Teams: []string{"billing"}, Capacity: 1, Active: true},
	}
	roster, err := router.NewRoster([]router.Team{{ID: "support", Lead: "chloe"}, {ID: "billing"}}, owners)
	if err != nil {
		t.Fatal(err)
	}
	rules := &router.Rules{DefaultTeam: "support", Rules: []router.Rule{{Name: "billing", Team: "billing", Keywords: []string{"invoice"}, Priority: "high"}}}
	respond, _ := router.ParseSpan("4h")
	resolve, _ := router.ParseSpan("2d")
	urgent, _ := router.ParseSpan("1h")
	nudge, _ := router.ParseSpan("3d")
	policy := &router.Policy{
		Targets: []router.Target{
			{Name: "billing", Priorities: []string{"high"}, FirstResponse: urgent, Resolution: resolve},
			{Name: "standard", FirstResponse: respond, Resolution: resolve},
		},
		DefaultCalendar: amsterdam(t), ReminderAt: 0.75, WaitingNudge: nudge,
	}
	clock := &fakeClock{now: start}
	build := func() *router.Router {
		r, err := router.New(router.Config{Store: store, Directory: roster, Rules: rules, ReopenWindow: 14 * 24 * time.Hour,
			Reachability: byEmail{}, Policy: policy, CSAT: csat, Clock: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	d := &desk{t: t, router: build(), store: store, rdb: rdb, clock: clock}
	t.Cleanup(d.checkFigures)
	return d, build
}

func cet(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, amsterdam(t).Location)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// notes lists the notifications in the outbox of a kind.
func (d *desk) notes(kind router.NotificationKind) []router.Notification {
	var out []router.Notification
	for _, o := range d.outbox() {
		if n := o.Notification; n != nil && n.Kind == kind {
			out = append(out, *n)
		}
	}
	return out
}

// fireEverywhere lets every replica fire due timers at once, several times
// over, as replicas polling concurrently would.
func fireEverywhere(t *testing.T, replicas ...*router.Router) {
	t.Helper()
	var wg sync.WaitGroup
	for _, r := range replicas {
		for range 3 {
			wg.Go(func() {
				if _, err := r.FireDue(context.Background(), 100); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
}

func (d *desk) dueIndex() []string {
	d.t.Helper()
	ms, err := d.rdb.ZRange(context.Background(), d.store.Keys().Timers(), 0, -1).Result()
	if err != nil {
		d.t.Fatal(err)
	}
	return ms
}

func TestRemindersAndEscalationsFireOnceAtTheRightWorkingMoment(t *testing.T) {
	// Friday 15:00 in Amsterdam: four working hours end Monday 11:00, two
	// working days end Tuesday 15:00.
	d, replica := accountableDesk(t, cet(t, "2026-11-27 15:00"), nil)
	other := replica()
	out := d.route(d.msg("klant@voorbeeld.nl", "Mijn pakket is beschadigd aangekomen."))
	c, _ := d.complaint(out.ComplaintID)
	if c.Owner != "anna" {
		t.Fatalf("owner = %s, want anna", c.Owner)
	}
	if want := cet(t, "2026-11-30 11:00"); !c.RespondBy.Equal(want) {
		t.Errorf("respond by %s, want %s (4 working hours over the weekend)", c.RespondBy, want)
	}
	if want := cet(t, "2026-12-01 15:00"); !c.ResolveBy.Equal(want) {
		t.Errorf("resolve by %s, want %s (2 working days)", c.ResolveBy, want)
	}
	if n := len(d.dueIndex()); n != 4 {
		t.Errorf("due index has %d timers, want 4 (reminder and breach of both clocks): %v", n, d.dueIndex())
	}

	steps := []struct {
		at                      string
		reminders, escalations  int
		breaches                []string
		reminderReasonSubstring string
	}{
		{"2026-11-27 17:30", 0, 0, nil, ""},                                   // after hours: nothing
		{"2026-11-30 09:59", 0, 0, nil, ""},                                   // just before 3 of 4 working hours
		{"2026-11-30 10:00", 1, 0, nil, "an answer to the customer is due"},   // 75 % of 4 working hours
		{"2026-11-30 11:00", 2, 1, []string{"response"}, ""},                  // breach: owner told, lead alerted
		{"2026-12-01 11:00", 3, 1, []string{"response"}, "resolution is due"}, // 75 % of 16 working hours
		{"2026-12-01 15:00", 4, 2, []string{"response", "resolution"}, ""},
		{"2026-12-03 15:00", 4, 2, []string{"response", "resolution"}, ""}, // nothing fires twice
	}
	for _, s := range steps {
		d.clock.now = cet(t, s.at)
		fireEverywhere(t, d.router, other)
		rem, esc := d.notes(router.NotifyReminder), d.notes(router.NotifyEscalation)
		if len(rem) != s.reminders || len(esc) != s.escalations {
			t.Fatalf("at %s: %d reminders and %d escalations, want %d and %d", s.at, len(rem), len(esc), s.reminders, s.escalations)
		}
		for _, n := range rem {
			if n.Recipient != "anna" {
				t.Errorf("reminder to %s, want the owner anna", n.Recipient)
			}
		}
		for _, n := range esc {
			if n.Recipient != "chloe" {
				t.Errorf("escalation to %s, want the lead chloe", n.Recipient)
			}
		}
		if s.reminderReasonSubstring != "" && !strings.Contains(rem[len(rem)-1].Event.Reason, s.reminderReasonSubstring) {
			t.Errorf("at %s the reminder says %q", s.at, rem[len(rem)-1].Event.Reason)
		}
		c, _ := d.complaint(out.ComplaintID)
		if strings.Join(c.Breaches, ",") != strings.Join(s.breaches, ",") {
			t.Errorf("at %s breaches = %v, want %v", s.at, c.Breaches, s.breaches)
		}
		// What must hold: a breach never changes the owner.
		if c.Owner != "anna" {
			t.Fatalf("at %s the owner became %s", s.at, c.Owner)
		}
	}
	_, tl := d.complaint(out.ComplaintID)
	if n, b := len(events(tl, router.EventReminder)), len(events(tl, router.EventBreached)); n != 2 || b != 2 {
		t.Errorf("timeline has %d reminders and %d breaches, want 2 and 2", n, b)
	}
	if len(d.dueIndex()) != 0 {
		t.Errorf("due index not empty after every timer fired: %v", d.dueIndex())
	}
}

func TestAnsweringCancelsTimersAndWaitingPausesTheClock(t *testing.T) {
	d, _ := accountableDesk(t, cet(t, "2026-11-23 10:00"), nil) // Monday
	ctx := context.Background()
	id := d.route(d.msg("klant@voorbeeld.nl", "De app crasht bij het afrekenen.")).ComplaintID
	c, _ := d.complaint(id)
	resolveBy := c.ResolveBy // Wednesday 10:00

	d.clock.now = cet(t, "2026-11-23 11:00")
	if _, err := d.router.Reply(ctx, id, "anna", "Welke versie van de app gebruikt u?"); err != nil {
		t.Fatal(err)
	}
	c, _ = d.complaint(id)
	if !c.RespondBy.IsZero() || c.WaitingSince.IsZero() {
		t.Errorf("after the reply: respond by %s, waiting since %s; want answered and waiting", c.RespondBy, c.WaitingSince)
	}
	for _, m := range d.dueIndex() {
		if !strings.Contains(m, "waiting_nudge") {
			t.Errorf("timer %s survived the answer; only the waiting nudge should be pending", m)
		}
	}
	// Long past every deadline, while waiting: no reminder, no breach.
	d.clock.now = cet(t, "2026-11-25 16:00")
	fireEverywhere(t, d.router)
	if n := len(d.notes(router.NotifyReminder)) + len(d.notes(router.NotifyEscalation)); n != 0 {
		t.Fatalf("%d reminders while waiting on the customer, want none", n)
	}
	// The customer answers Wednesday 16:00 after 2 working days + 5 hours of
	// waiting: the resolution deadline moves by that much, an answer is due
	// within 4 working hours again.
	d.route(router.Message{ID: "M-back", Channel: router.ChannelWebhook, SourceID: "src-back", Customer: router.Customer{Email: "klant@voorbeeld.nl"},
		Body: "Versie 4.2", ComplaintID: id, ReceivedAt: d.clock.Now()})
	c, tl := d.complaint(id)
	if want := amsterdam(t).Add(resolveBy, 21*time.Hour); !c.ResolveBy.Equal(want) {
		t.Errorf("resolve by %s after the wait, want %s", c.ResolveBy.In(want.Location()), want)
	}
	if want := cet(t, "2026-11-26 12:00"); !c.RespondBy.Equal(want) {
		t.Errorf("respond by %s after the customer wrote, want %s", c.RespondBy, want)
	}
	if len(events(tl, router.EventResumed)) != 1 || len(events(tl, router.EventWaiting)) != 1 {
		t.Error("the timeline should show the wait and the resumption")
	}
	// Closing cancels everything in the same commit.
	if _, err := d.router.Close(ctx, id, "anna", "Fixed in 4.3", "app-crash"); err != nil {
		t.Fatal(err)
	}
	if idx := d.dueIndex(); len(idx) != 0 {
		t.Errorf("timers left after the close: %v", idx)
	}
	d.clock.now = cet(t, "2026-12-31 12:00")
	fireEverywhere(t, d.router)
	if n := len(d.notes(router.NotifyReminder)) + len(d.notes(router.NotifyEscalation)); n != 0 {
		t.Errorf("%d reminders after the close", n)
	}
}

func TestWaitingLongOnTheCustomerNudgesNeverCloses(t *testing.T) {
	d, _ := accountableDesk(t, cet(t, "2026-11-23 10:00"), nil)
	id := d.route(d.msg("klant@voorbeeld.nl", "Waar blijft mijn terugbetaling?")).ComplaintID
	if _, err := d.router.Reply(context.Background(), id, "anna", "Kunt u uw rekeningnummer sturen?"); err != nil {
		t.Fatal(err)
	}
	d.clock.now = cet(t, "2026-11-26 09:59") // 3 working days are up Thursday 10:00
	fireEverywhere(t, d.router)
	if n := len(d.notes(router.NotifyReminder)); n != 0 {
		t.Fatalf("nudged early: %d", n)
	}
	d.clock.now = cet(t, "2026-11-26 10:00")
	fireEverywhere(t, d.router)
	rem := d.notes(router.NotifyReminder)
	if len(rem) != 1 || !strings.Contains(rem[0].Event.Reason, "close it if it is resolved") {
		t.Fatalf("nudges = %+v, want one asking the owner to close or follow up", rem)
	}
	c, _ := d.complaint(id)
	if c.Status != router.StatusOpen {
		t.Fatal("the complaint was closed automatically")
	}
	if len(d.dueIndex()) != 1 {
		t.Errorf("the next nudge should be armed: %v", d.dueIndex())
	}
}

func TestPromisesAreKeptByAnAnswerAndBrokenWhenTheyLapse(t *testing.T) {
	d, other := accountableDesk(t, cet(t, "2026-11-23 10:00"), nil)
	replica := other()
	ctx := context.Background()
	id := d.route(d.msg("klant@voorbeeld.nl", "Ik wacht op een belletje.")).ComplaintID
	if _, err := d.router.Promise(ctx, id, "anna", cet(t, "2026-11-23 14:00"), "Ik bel u vanmiddag terug.", true); err != nil {
		t.Fatal(err)
	}
	d.clock.now = cet(t, "2026-11-23 13:00") // 75 % of 4 hours
	fireEverywhere(t, d.router, replica)
	if rem := d.notes(router.NotifyReminder); len(rem) != 1 || rem[0].Event.Details["timer"] != string(router.TimerPromiseReminder) {
		t.Fatalf("promise reminders = %+v", rem)
	}
	if _, err := d.router.Reply(ctx, id, "anna", "Zoals beloofd: uw pakket is onderweg."); err != nil {
		t.Fatal(err)
	}
	c, _ := d.complaint(id)
	if c.Promises != 1 || c.PromisesKept != 1 || !c.PromisedBy.IsZero() {
		t.Errorf("after the answer: %d made, %d kept, pending %s", c.Promises, c.PromisesKept, c.PromisedBy)
	}
	// A second promise lapses.
	if _, err := d.router.Promise(ctx, id, "anna", cet(t, "2026-11-24 10:00"), "Morgen om 10 uur hoort u van mij.", false); err != nil {
		t.Fatal(err)
	}
	d.clock.now = cet(t, "2026-11-24 10:00")
	fireEverywhere(t, d.router, replica)
	c, tl := d.complaint(id)
	if c.PromisesBroken != 1 || c.Owner != "anna" || len(events(tl, router.EventPromiseBroken)) != 1 {
		t.Errorf("after the lapse: %d broken, owner %s", c.PromisesBroken, c.Owner)
	}
	if esc := d.notes(router.NotifyEscalation); len(esc) != 1 || esc[0].Recipient != "chloe" {
		t.Errorf("escalations = %+v, want one to the lead", esc)
	}
}

func TestAwayOwnerGetsNoNewComplaintsKeepsTheirsAndTheCoverActs(t *testing.T) {
	d, _ := accountableDesk(t, cet(t, "2026-11-23 10:00"), nil)
	ctx := context.Background()
	// Anna owns a complaint of this customer.
	first := d.route(d.msg("trouw@voorbeeld.nl", "Mijn bestelling is te laat."))
	if first.Owner != "anna" {
		t.Fatalf("owner = %s, want anna", first.Owner)
	}
	if _, err := d.router.SetAway(ctx, router.Absence{Owner: "anna", Until: cet(t, "2026-11-30 09:00"), Cover: "bas"}, "sanne"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []router.Absence{
		{Owner: "nobody", Until: cet(t, "2026-11-30 09:00")},
		{Owner: "anna"},
		{Owner: "anna", Until: cet(t, "2026-11-20 09:00")},
		{Owner: "anna", Until: cet(t, "2026-11-30 09:00"), Cover: "anna"},
		{Owner: "anna", Until: cet(t, "2026-11-30 09:00"), Cover: "zed"},
	} {
		if _, err := d.router.SetAway(ctx, bad, "x"); err == nil {
			t.Errorf("SetAway(%+v) accepted", bad)
		}
	}
	// A cover who is away too: anna is, so she cannot cover for bas.
	if _, err := d.router.SetAway(ctx, router.Absence{Owner: "bas", Until: cet(t, "2026-11-25 09:00"), Cover: "anna"}, "sanne"); !isField(err, "cover") {
		t.Errorf("bas away with anna (away herself) as cover: %v, want a cover error", err)
	}
	// The same customer writes a new complaint (sticky would be anna), and
	// several others: none goes to anna.
	for i, body := range []string{"Nieuwe klacht: verkeerde maat.", "Ander probleem", "Nog iets"} {
		email := "trouw@voorbeeld.nl"
		if i > 0 {
			email = "iemand" + string(rune('a'+i)) + "@voorbeeld.nl"
		}
		m := d.msg(email, body)
		m.ThreadKeys = []string{"new-" + body}
		if i == 0 {
			if _, err := d.router.Close(ctx, first.ComplaintID, "anna", "Geleverd", "late-delivery"); err != nil {
				t.Fatal(err)
			}
			d.clock.Advance(15 * 24 * time.Hour) // beyond the reopen window: a new complaint
			if _, err := d.router.SetAway(ctx, router.Absence{Owner: "anna", Until: d.clock.Now().Add(7 * 24 * time.Hour), Cover: "bas"}, "sanne"); err != nil {
				t.Fatal(err)
			}
			m.ReceivedAt = d.clock.Now()
		}
		if out := d.route(m); out.Owner == "anna" {
			t.Errorf("new complaint %q went to anna, who is away", body)
		} else if i == 0 {
			c, tl := d.complaint(out.ComplaintID)
			if !strings.Contains(c.RoutingReason, "away") && !strings.Contains(events(tl, router.EventAssigned)[0].Reason, "away") {
				t.Errorf("routing reason should say the sticky owner is away: %s", c.RoutingReason)
			}
		}
	}
	// Anna keeps an open complaint she had before leaving: open one now.
	if err := d.router.Back(ctx, "anna", "anna"); err != nil {
		t.Fatal(err)
	}
	kept := d.route(d.msg("klant2@voorbeeld.nl", "Factuur klopt niet, wel een app probleem"))
	if kept.Owner != "anna" {
		t.Fatalf("after returning anna should get new complaints again; got %s", kept.Owner)
	}
	if _, err := d.router.SetAway(ctx, router.Absence{Owner: "anna", Until: d.clock.Now().Add(48 * time.Hour), Cover: "bas"}, "sanne"); err != nil {
		t.Fatal(err)
	}
	// The customer writes again: anna stays owner, bas is told too.
	before := len(d.notes(router.NotifyMessage))
	d.route(router.Message{ID: "M-again", Channel: router.ChannelWebhook, SourceID: "src-again", Customer: router.Customer{Email: "klant2@voorbeeld.nl"},
		Body: "Nog nieuws?", ComplaintID: kept.ComplaintID, ReceivedAt: d.clock.Now()})
	var to []string
	for _, n := range d.notes(router.NotifyMessage)[before:] {
		to = append(to, n.Recipient)
	}
	if strings.Join(to, ",") != "anna,bas" {
		t.Errorf("message notifications to %v, want anna and her cover bas", to)
	}
	c, _ := d.complaint(kept.ComplaintID)
	if c.Owner != "anna" {
		t.Errorf("owner became %s while anna is away", c.Owner)
	}
	if !d.router.MayAct(c, "bas") {
		t.Error("the cover may act on the away owner's complaint")
	}
	if ok, err := d.router.MayActNow(ctx, c, "chloe"); err != nil || !ok {
		t.Errorf("the lead may still act: %v %v", ok, err)
	}
	if _, err := d.router.Reply(ctx, kept.ComplaintID, "bas", "Ik kijk het voor Anna na."); err != nil {
		t.Fatal(err)
	}
	var signed string
	for _, m := range d.toCustomer() {
		if m.Kind == router.ToCustomerReply {
			signed = m.AuthorName
		}
	}
	if signed != "Bas for Anna" {
		t.Errorf("the cover's reply is signed %q, want \"Bas for Anna\"", signed)
	}
	// Back: nothing to hand back, and the cover may no longer act.
	if err := d.router.Back(ctx, "anna", "anna"); err != nil {
		t.Fatal(err)
	}
	c, _ = d.complaint(kept.ComplaintID)
	if ok, _ := d.router.MayActNow(ctx, c, "bas"); ok || c.Owner != "anna" {
		t.Errorf("after return: bas may act = %v, owner = %s", ok, c.Owner)
	}
}

// What must hold: a cover is checked only when the absence is set, so the
// cover may go away later. Then the away owner's notifications reach the
// colleague who covers for the cover (someone present), who may act; when
// everyone along the way is away, the owner's own cover still gets them.
func TestNotificationsFollowACoverWhoIsAwayToTheirCover(t *testing.T) {
	d, _ := accountableDesk(t, cet(t, "2026-11-23 10:00"), nil)
	ctx := context.Background()
	first := d.route(d.msg("trouw@voorbeeld.nl", "Mijn bestelling is te laat."))
	if first.Owner != "anna" {
		t.Fatalf("owner = %s, want anna", first.Owner)
	}
	for _, a := range []router.Absence{
		{Owner: "anna", Until: cet(t, "2026-11-30 09:00"), Cover: "bas"},
		{Owner: "bas", Until: cet(t, "2026-11-27 09:00"), Cover: "daan"}, // later: bas goes away too
	} {
		if _, err := d.router.SetAway(ctx, a, "sanne"); err != nil {
			t.Fatal(err)
		}
	}
	write := func(id string) []string {
		before := len(d.notes(router.NotifyMessage))
		d.route(router.Message{ID: "M-cover-" + id, Channel: router.ChannelWebhook, SourceID: "src-cover-" + id, Customer: router.Customer{Email: "trouw@voorbeeld.nl"},
			Body: "Nog nieuws?", ComplaintID: first.ComplaintID, ReceivedAt: d.clock.Now()})
		var to []string
		for _, n := range d.notes(router.NotifyMessage)[before:] {
			to = append(to, n.Recipient)
		}
		return to
	}
	if to := write("1"); strings.Join(to, ",") != "anna,daan" {
		t.Errorf("with anna's cover bas away too, notifications went to %v, want anna and daan (who covers for bas)", to)
	}
	coveredBy := func() map[string]string {
		owners, err := d.router.Owners(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, o := range owners {
			if o.Away != nil {
				out[o.ID] = o.Away.Cover + "→" + o.CoveredBy
				if o.NobodyCovers {
					out[o.ID] += " (nobody at work)"
				}
			}
		}
		return out
	}
	// The owners list says who covers now, not only who was named.
	if got := coveredBy(); got["anna"] != "bas→daan" || got["bas"] != "daan→daan" {
		t.Errorf("owners list: cover named → covering now = %v, want anna bas→daan, bas daan→daan", got)
	}
	c, _ := d.complaint(first.ComplaintID)
	if ok, err := d.router.MayActNow(ctx, c, "daan"); err != nil || !ok {
		t.Errorf("daan, covering for anna's cover, may act: %v %v", ok, err)
	}
	// Daan away too, without a cover: nobody present along the way; bas,
	// anna's own cover, finds it on return.
	if _, err := d.router.SetAway(ctx, router.Absence{Owner: "daan", Until: cet(t, "2026-11-26 09:00")}, "sanne"); err != nil {
		t.Fatal(err)
	}
	if to := write("2"); strings.Join(to, ",") != "anna,bas" {
		t.Errorf("with everyone along the way away, notifications went to %v, want anna and her own cover bas", to)
	}
	if got := coveredBy(); got["anna"] != "bas→bas (nobody at work)" || got["daan"] != "→" {
		t.Errorf("owners list with nobody along the way at work: %v, want anna bas→bas and said that nobody at work covers, daan without cover", got)
	}
	// Daan comes back early: he covers for bas again.
	if err := d.router.Back(ctx, "daan", "daan"); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.router.MayActNow(ctx, c, "daan"); err != nil || !ok {
		t.Errorf("daan back, covering for anna's cover: may act %v %v", ok, err)
	}
	// Bas is back (anna is not): he covers again, daan no longer, even
	// before the absences are read again.
	d.clock.Advance(5 * 24 * time.Hour) // 2026-11-28
	if d.router.MayAct(c, "daan") || !d.router.MayAct(c, "bas") {
		t.Errorf("after bas's return: daan may act %v, bas %v; want only bas", d.router.MayAct(c, "daan"), d.router.MayAct(c, "bas"))
	}
}

func TestRosterAbsenceCanBeEndedEarly(t *testing.T) {
	d, _ := accountableDesk(t, cet(t, "2026-11-23 10:00"), nil)
	ctx := context.Background()
	// A policy with a planned absence: rebuild the router with it.
	roster := d.router.Directory()
	pol := &router.Policy{Absences: []router.Absence{{Owner: "anna", From: cet(t, "2026-11-20 00:00"), Until: cet(t, "2026-12-01 00:00"), Cover: "chloe"}}}
	r, err := router.New(router.Config{Store: d.store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}, Policy: pol, Clock: d.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	off, err := r.Away(ctx)
	if err != nil || off["anna"].Cover != "chloe" {
		t.Fatalf("away = %v %v, want anna covered by chloe", off, err)
	}
	if err := r.Back(ctx, "anna", "anna"); err != nil {
		t.Fatal(err)
	}
	if off, _ := r.Away(ctx); len(off) != 0 {
		t.Errorf("after back: away = %v", off)
	}
}

// What must hold: an absence recorded for later leaves the one in force
// now (recorded, or planned in the roster) as it is, and both show; "back"
// ends only the one in force; a new absence replaces those it overlaps.
func TestPlannedAbsencesLeaveTheCurrentOneInForce(t *testing.T) {
	d, _ := accountableDesk(t, cet(t, "2026-11-23 10:00"), nil)
	ctx := context.Background()
	roster := d.router.Directory()
	pol := &router.Policy{Absences: []router.Absence{{Owner: "chloe", From: cet(t, "2026-11-20 00:00"), Until: cet(t, "2026-11-28 00:00"), Cover: "bas"}}}
	r, err := router.New(router.Config{Store: d.store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}, Policy: pol, Clock: d.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	set := func(owner, from, until, cover string) {
		t.Helper()
		a := router.Absence{Owner: owner, Until: cet(t, until), Cover: cover}
		if from != "" {
			a.From = cet(t, from)
		}
		if _, err := r.SetAway(ctx, a, "sanne"); err != nil {
			t.Fatalf("away %s %s–%s: %v", owner, from, until, err)
		}
	}
	status := func() map[string]string {
		t.Helper()
		owners, err := r.Owners(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, o := range owners {
			var s []string
			if o.Away != nil {
				s = append(s, "now until "+o.Away.Until.In(amsterdam(t).Location).Format("01-02")+" cover "+o.Away.Cover)
			}
			for _, p := range o.Planned {
				s = append(s, p.From.In(amsterdam(t).Location).Format("01-02")+".."+p.Until.In(amsterdam(t).Location).Format("01-02")+" cover "+p.Cover)
			}
			out[o.ID] = strings.Join(s, "; ")
		}
		return out
	}
	set("anna", "", "2026-11-26 09:00", "bas")
	set("anna", "2026-12-07 09:00", "2026-12-11 09:00", "chloe")
	set("chloe", "2026-12-14 09:00", "2026-12-18 09:00", "anna") // the roster absence is in force now
	got := status()
	if got["anna"] != "now until 11-26 cover bas; 12-07..12-11 cover chloe" {
		t.Errorf("anna: %q, want away now and the later absence planned", got["anna"])
	}
	if got["chloe"] != "now until 11-28 cover bas; 12-14..12-18 cover anna" {
		t.Errorf("chloe: %q, want the roster absence in force and the later one planned", got["chloe"])
	}
	// A new absence over the planned one's days replaces it.
	set("anna", "2026-12-10 09:00", "2026-12-12 09:00", "bas")
	if got := status()["anna"]; got != "now until 11-26 cover bas; 12-10..12-12 cover bas" {
		t.Errorf("anna after replacing the planned absence: %q", got)
	}
	// Back ends what is in force, recorded or from the roster; what is
	// planned stays.
	for _, o := range []string{"anna", "chloe"} {
		if err := r.Back(ctx, o, o); err != nil {
			t.Fatal(err)
		}
	}
	got = status()
	if got["anna"] != "12-10..12-12 cover bas" || got["chloe"] != "12-14..12-18 cover anna" {
		t.Errorf("after back: anna %q, chloe %q; want only their planned absences", got["anna"], got["chloe"])
	}
	// The planned absence takes effect when it begins.
	d.clock.Advance(17 * 24 * time.Hour) // 2026-12-10 10:00
	if off, err := r.Away(ctx); err != nil || off["anna"].Cover != "bas" || off["chloe"].Owner != "" {
		t.Errorf("on 12-10: away %v %v, want anna (covered by bas) and not chloe", off, err)
	}
}

func TestCSATLinksAreSignedAndAnswersRecordedOnce(t *testing.T) {
	csat := &router.CSAT{BaseURL: "https://support.example.nl", Secret: []byte("csat-secret-0123456789")}
	d, _ := accountableDesk(t, cet(t, "2026-11-23 10:00"), csat)
	ctx := context.Background()
	id := d.route(d.msg("klant@voorbeeld.nl", "Klacht over de bezorger.")).ComplaintID
	if _, err := d.router.Close(ctx, id, "anna", "Excuses aangeboden", "courier"); err != nil {
		t.Fatal(err)
	}
	var q *router.CustomerMessage
	for _, m := range d.toCustomer() {
		if m.Kind == router.ToCustomerCSAT {
			q = &m
		}
	}
	if q == nil || !strings.Contains(q.Body, csat.Link(id, 5)) || !strings.Contains(q.Body, csat.Link(id, 1)) {
		t.Fatalf("csat question = %+v, want one signed link per answer", q)
	}
	// Recorded as sent (or held back), the question is on the timeline:
	// a chat visitor who had left reads it in their history.
	if err := d.router.RecordSent(ctx, *q, router.Sent{Via: "chat", Skipped: "the visitor left the chat"}); err != nil {
		t.Fatal(err)
	}
	_, sentTL := d.complaint(id)
	var asked *router.Event
	for _, ev := range events(sentTL, router.EventSent) {
		if ev.Details["kind"] == string(router.ToCustomerCSAT) {
			asked = &ev
		}
	}
	if asked == nil || asked.Text != q.Body || asked.Details["said_at"] != q.At.UTC().Format(time.RFC3339Nano) {
		t.Errorf("the satisfaction question's sent line = %+v, want its text and when it was said", asked)
	}
	if _, err := d.router.RecordCSAT(ctx, id, 5, csat.Sign(id, 4)); !isField(err, "sig") {
		t.Errorf("a link signed for another answer: %v, want a sig error", err)
	}
	if _, err := d.router.RecordCSAT(ctx, "C-9999", 5, csat.Sign(id, 5)); !isField(err, "sig") {
		t.Errorf("a link signed for another complaint: %v", err)
	}
	for _, asTyped := range []string{id, strings.ToLower(id)} { // the second time as retyped
		if _, err := d.router.RecordCSAT(ctx, asTyped, 4, csat.Sign(id, 4)); err != nil {
			t.Fatalf("answer for %s: %v", asTyped, err)
		}
	}
	c, tl := d.complaint(id)
	if c.CSAT != 4 || len(events(tl, router.EventCSAT)) != 1 {
		t.Errorf("csat = %d with %d events, want 4 recorded once", c.CSAT, len(events(tl, router.EventCSAT)))
	}

	// A held link cannot grow the timeline for ever: the answer can be
	// changed MaxCSATChanges times, then no more.
	scores := []int{1, 5, 1, 5, 2} // each differs from the answer recorded before it
	for i, score := range scores[:router.MaxCSATChanges+2] {
		_, err := d.router.RecordCSAT(ctx, id, score, csat.Sign(id, score))
		if i < router.MaxCSATChanges && err != nil {
			t.Fatalf("change %d: %v", i+1, err)
		}
		if i >= router.MaxCSATChanges && !isField(err, "score") {
			t.Errorf("change %d accepted (%v)", i+1, err)
		}
	}
	_, tl = d.complaint(id)
	if n := len(events(tl, router.EventCSAT)); n != 1+router.MaxCSATChanges {
		t.Errorf("%d csat lines, want %d", n, 1+router.MaxCSATChanges)
	}

	// The customer writes again: reopened, the answer about the earlier
	// outcome no longer counts; the next close asks again and takes an
	// answer (the earlier ones stay on the timeline as history).
	m := d.msg("klant@voorbeeld.nl", "Het is nog steeds niet opgelost.")
	m.ComplaintID = id // the customer answers by the reference (same address: proven)
	if out := d.route(m); out.ComplaintID != id {
		t.Fatalf("the customer's new message went to %s, want %s reopened", out.ComplaintID, id)
	}
	if c, _ := d.complaint(id); c.CSAT != 0 || c.Status != router.StatusOpen {
		t.Errorf("reopened: csat %d status %s, want no answer counted", c.CSAT, c.Status)
	}
	if _, err := d.router.Close(ctx, id, "anna", "Nu echt opgelost", "courier"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.router.RecordCSAT(ctx, id, 3, csat.Sign(id, 3)); err != nil {
		t.Errorf("the answer after the second close: %v", err)
	}
	if c, _ := d.complaint(id); c.CSAT != 3 {
		t.Errorf("csat after the second close = %d, want 3", c.CSAT)
	}
}

// TestCSATLinksWorkOnlyAfterTheCloseAndExpire: a link answers for a closed
// complaint within its validity; on an open (reopened) complaint and after
// expiry it records nothing.
func TestCSATLinksWorkOnlyAfterTheCloseAndExpire(t *testing.T) {
	csat := &router.CSAT{BaseURL: "https://support.example.nl", Secret: []byte("csat-secret-0123456789"), ValidFor: 10 * 24 * time.Hour}
	d, _ := accountableDesk(t, cet(t, "2026-11-23 10:00"), csat)
	ctx := context.Background()
	id := d.route(d.msg("klant@voorbeeld.nl", "Klacht over de bezorger.")).ComplaintID
	if _, err := d.router.RecordCSAT(ctx, id, 5, csat.Sign(id, 5)); !isField(err, "complaint") {
		t.Errorf("answer on an open complaint: %v, want refused", err)
	}
	if _, err := d.router.Close(ctx, id, "anna", "Excuses aangeboden", "courier"); err != nil {
		t.Fatal(err)
	}
	d.clock.Advance(11 * 24 * time.Hour)
	if _, err := d.router.RecordCSAT(ctx, id, 5, csat.Sign(id, 5)); !isField(err, "sig") {
		t.Errorf("answer after expiry: %v, want refused as an expired link", err)
	}
	if c, _ := d.complaint(id); c.CSAT != 0 {
		t.Errorf("csat = %d recorded from refused links", c.CSAT)
	}
}

// TestOpenFiguresFollowEveryChange: the figures behind the gauges and the
// report (open and overdue per owner, promises pending and broken) are kept
// by the commits themselves; after promises, breaches, a reassignment, a
// close and a reopen they still equal what the open complaints say
// (checkFigures, at the test's end and at each step here).
func TestOpenFiguresFollowEveryChange(t *testing.T) {
	d, other := accountableDesk(t, cet(t, "2026-11-23 10:00"), nil)
	replica := other()
	ctx := context.Background()
	a := d.route(d.msg("een@voorbeeld.nl", "Mijn pakket is kapot.")).ComplaintID
	b := d.route(d.msg("twee@voorbeeld.nl", "Waar blijft mijn bestelling?")).ComplaintID
	c := d.route(d.msg("drie@voorbeeld.nl", "Ik wil mijn geld terug.")).ComplaintID
	if _, err := d.router.Promise(ctx, a, "anna", cet(t, "2026-11-23 14:00"), "Ik bel u vanmiddag.", false); err != nil {
		t.Fatal(err)
	}
	d.checkFigures()
	d.clock.now = cet(t, "2026-11-25 10:00") // the promise and the response deadlines lapse
	fireEverywhere(t, d.router, replica)
	d.checkFigures()
	ca, _ := d.complaint(a)
	if ca.PromisesBroken != 1 {
		t.Fatalf("promises broken = %d", ca.PromisesBroken)
	}
	to := "bas"
	if cb, _ := d.complaint(b); cb.Owner == to {
		to = "anna"
	}
	if _, err := d.router.Reassign(ctx, b, "chloe", to, "workload"); err != nil {
		t.Fatal(err)
	}
	d.checkFigures()
	if _, err := d.router.Close(ctx, a, ca.Owner, "refunded", "damaged"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.router.Close(ctx, c, "chloe", "answered", "delivery"); err != nil {
		t.Fatal(err)
	}
	d.checkFigures()
	d.route(d.msg("een@voorbeeld.nl", "Toch nog een vraag over mijn pakket.")) // reopens a
	f, err := d.store.OpenFigures(ctx, []string{"anna", "bas", "chloe"}, d.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	open := 0
	for _, o := range f.Owners {
		open += o.Open
	}
	if open != 2 {
		t.Errorf("open complaints by the figures = %d, want 2 (%+v)", open, f)
	}
}

// What must hold: a report (and so the weekly digest) counts the deadlines
// missed in its period, whenever their complaints were opened: a complaint
// opened on Friday whose answer was due on Monday and not given is a
// breach of Monday's week, not of the week it was opened in, whose digest
// went out before the breach.
func TestReportCountsBreachesWhenTheyHappen(t *testing.T) {
	d, _ := accountableDesk(t, cet(t, "2026-11-27 16:00"), nil) // a Friday
	ctx := context.Background()
	out := d.route(d.msg("vrijdag@voorbeeld.nl", "Mijn pakket is nooit aangekomen."))
	c, _ := d.complaint(out.ComplaintID)
	if !c.RespondBy.After(cet(t, "2026-11-30 00:00")) {
		t.Fatalf("an answer is due %s, want on Monday (4 working hours after Friday 16:00)", c.RespondBy)
	}
	d.clock.now = cet(t, "2026-12-01 10:00") // Tuesday: the answer was due Monday
	fireEverywhere(t, d.router)
	if c, _ = d.complaint(out.ComplaintID); len(c.Breaches) != 1 {
		t.Fatalf("breaches %v, want the missed answer", c.Breaches)
	}
	count := func(since, until time.Time) int {
		rep, err := d.router.Report(ctx, since, until)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, b := range rep.Breaches {
			n += b.Count
		}
		return n
	}
	if n := count(cet(t, "2026-11-23 00:00"), cet(t, "2026-11-30 00:00")); n != 0 {
		t.Errorf("the week the complaint was opened in counts %d breaches, want 0 (the answer was not due yet)", n)
	}
	if n := count(cet(t, "2026-11-30 00:00"), cet(t, "2026-12-07 00:00")); n != 1 {
		t.Errorf("the week of the breach counts %d breaches, want 1", n)
	}
}

// What must hold: a report period that is empty says which bound is wrong:
// since in the future (until left to its default, now), or until not after
// since.
func TestReportPeriodErrorsNameTheWrongBound(t *testing.T) {
	d, _ := accountableDesk(t, cet(t, "2026-11-23 10:00"), nil)
	ctx := context.Background()
	now := d.clock.Now()
	if _, err := d.router.Report(ctx, now.AddDate(0, 1, 0), now); !isField(err, "since") || !strings.Contains(err.Error(), "not in the past") {
		t.Errorf("since next month, until now: %v, want since named as not in the past", err)
	}
	if _, err := d.router.Report(ctx, now.AddDate(0, 0, -7), now.AddDate(0, 0, -8)); !isField(err, "until") {
		t.Errorf("until before since: %v, want until named", err)
	}
}
