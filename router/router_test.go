package router_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

func TestNewComplaintGetsOneOwnerWithReason(t *testing.T) {
	d := newDesk(t)
	out := d.route(d.msg("klant@voorbeeld.nl", "Mijn pakket is niet aangekomen en ik heb al twee keer gebeld."))
	if out.Kind != router.OutcomeOpened || out.ComplaintID != "C-1001" {
		t.Fatalf("outcome = %+v, want a new complaint C-1001", out)
	}
	c, tl := d.complaint(out.ComplaintID)
	if c.Owner != out.Owner || c.Status != router.StatusOpen || c.Team != "support" {
		t.Fatalf("complaint = %+v", c)
	}
	if c.Language != "nl" {
		t.Errorf("language = %q, want nl detected", c.Language)
	}
	// Dutch: chloe (en only) must not get it; anna and bas are tied at 0, never assigned: by id.
	if c.Owner != "anna" {
		t.Errorf("owner = %s, want anna (least loaded Dutch speaker, id tie-break)", c.Owner)
	}
	as := events(tl, router.EventAssigned)
	if len(as) != 1 || !strings.Contains(as[0].Reason, "default team → team support → least loaded: anna") {
		t.Errorf("assigned events = %+v, want one explaining rule → team → owner", as)
	}
	if d.load("anna") != 1 {
		t.Errorf("anna's load = %d, want 1", d.load("anna"))
	}
}

func TestThreadingAttachesToTheSameComplaint(t *testing.T) {
	tests := []struct {
		name   string
		second func(d *desk, first router.Message, id string) router.Message
		attach bool
	}{
		{"same thread key", func(d *desk, first router.Message, _ string) router.Message {
			m := d.msg(first.Customer.Email, "Any news?")
			m.ThreadKeys = first.ThreadKeys
			return m
		}, true},
		{"explicit complaint id", func(d *desk, first router.Message, id string) router.Message {
			m := d.msg(first.Customer.Email, "Any news?")
			m.ComplaintID = id
			return m
		}, true},
		{"explicit complaint id as people type it", func(d *desk, first router.Message, id string) router.Message {
			m := d.msg(first.Customer.Email, "Any news?")
			m.ComplaintID = " " + strings.ToLower(id) + " "
			return m
		}, true},
		{"complaint id without customer data", func(d *desk, _ router.Message, id string) router.Message {
			m := d.msg("", "Any news?")
			m.ComplaintID = id
			return m
		}, false},
		{"thread key from another customer", func(d *desk, first router.Message, _ string) router.Message {
			m := d.msg("stranger@example.org", "I have the same problem")
			m.ThreadKeys = first.ThreadKeys
			return m
		}, false},
		{"unknown complaint id", func(d *desk, first router.Message, _ string) router.Message {
			m := d.msg(first.Customer.Email, "About my other complaint")
			m.ComplaintID = "C-9999"
			return m
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDesk(t)
			first := d.msg("jane@example.com", "The blender I ordered arrived broken.")
			first.ThreadKeys = []string{"webhook:order-77"}
			opened := d.route(first)
			out := d.route(tc.second(d, first, opened.ComplaintID))
			if tc.attach {
				if out.Kind != router.OutcomeAttached || out.ComplaintID != opened.ComplaintID || out.Owner != opened.Owner {
					t.Fatalf("second message: %+v, want attached to %s with owner %s", out, opened.ComplaintID, opened.Owner)
				}
				c, tl := d.complaint(opened.ComplaintID)
				if c.Messages != 2 || messageCount(tl) != 2 {
					t.Errorf("messages = %d (timeline %d), want 2", c.Messages, messageCount(tl))
				}
				return
			}
			if out.Kind != router.OutcomeOpened || out.ComplaintID == opened.ComplaintID {
				t.Fatalf("second message: %+v, want a new complaint", out)
			}
			_, tl := d.complaint(out.ComplaintID)
			if why := events(tl, router.EventOpened)[0].Reason; !strings.Contains(why, "sender not verified") && !strings.Contains(why, "unknown complaint") {
				t.Errorf("opened reason %q does not say why the reference was not followed", why)
			}
		})
	}
}

func TestStrangersConversationThreadsOnItsOwnComplaint(t *testing.T) {
	d := newDesk(t)
	first := d.msg("jane@example.com", "Broken blender")
	first.ThreadKeys = []string{"webhook:order-77"}
	d.route(first)
	s1 := d.msg("stranger@example.org", "Same order number, different person")
	s1.ThreadKeys = first.ThreadKeys
	own := d.route(s1)
	s2 := d.msg("stranger@example.org", "Hello again")
	s2.ThreadKeys = first.ThreadKeys
	if out := d.route(s2); out.Kind != router.OutcomeAttached || out.ComplaintID != own.ComplaintID {
		t.Fatalf("stranger's follow-up = %+v, want attached to their own %s", out, own.ComplaintID)
	}
}

func TestReopenWithinWindowKeepsTheOwner(t *testing.T) {
	d := newDesk(t)
	first := d.msg("jane@example.com", "The blender I ordered arrived broken.")
	first.ThreadKeys = []string{"webhook:order-77"}
	opened := d.route(first)
	// Make the owner busy with others, so least-loaded would choose someone else.
	for range 2 {
		d.route(d.msg("other@example.com", "My order is late and nobody answers"))
	}
	ctx := context.Background()
	if _, err := d.router.Close(ctx, opened.ComplaintID, "anna", "Sent a new blender", "shipping-damage"); err != nil {
		t.Fatal(err)
	}
	if d.load(opened.Owner) != 0 && opened.Owner != "anna" {
		t.Fatalf("load after close not decreased")
	}
	d.clock.Advance(13 * 24 * time.Hour)
	again := d.msg("jane@example.com", "The new one is broken too!")
	again.ThreadKeys = first.ThreadKeys
	out := d.route(again)
	if out.Kind != router.OutcomeReopened || out.ComplaintID != opened.ComplaintID || out.Owner != opened.Owner {
		t.Fatalf("message within window = %+v, want %s reopened for %s", out, opened.ComplaintID, opened.Owner)
	}
	c, tl := d.complaint(opened.ComplaintID)
	if c.Status != router.StatusOpen || c.Reopens != 1 || c.Resolution != "" {
		t.Errorf("complaint after reopen = %+v", c)
	}
	if len(events(tl, router.EventReopened)) != 1 {
		t.Errorf("want one reopened event")
	}
}

func TestMessageAfterReopenWindowOpensFollowUp(t *testing.T) {
	d := newDesk(t)
	first := d.msg("jane@example.com", "Broken blender")
	first.ThreadKeys = []string{"webhook:order-77"}
	opened := d.route(first)
	if _, err := d.router.Close(context.Background(), opened.ComplaintID, "anna", "Replaced", ""); err != nil {
		t.Fatal(err)
	}
	d.clock.Advance(15 * 24 * time.Hour)
	again := d.msg("jane@example.com", "Broken again")
	again.ThreadKeys = first.ThreadKeys
	out := d.route(again)
	if out.Kind != router.OutcomeOpened || out.ComplaintID == opened.ComplaintID {
		t.Fatalf("outcome = %+v, want a follow-up complaint", out)
	}
	c, _ := d.complaint(out.ComplaintID)
	if c.FollowUpOf != opened.ComplaintID || c.Owner != opened.Owner {
		t.Errorf("follow-up = %+v, want follow_up_of %s and sticky owner %s", c, opened.ComplaintID, opened.Owner)
	}
	// The thread key now leads to the follow-up.
	third := d.msg("jane@example.com", "Hello?")
	third.ThreadKeys = first.ThreadKeys
	if o := d.route(third); o.ComplaintID != out.ComplaintID {
		t.Errorf("third message went to %s, want the follow-up %s", o.ComplaintID, out.ComplaintID)
	}
}

func TestStickyOwnerForReturningCustomer(t *testing.T) {
	d := newDesk(t)
	first := d.route(d.msg("jane@example.com", "My order is late, please help"))
	// Others arrive so that first's owner is no longer least loaded.
	d.route(d.msg("x@example.com", "My order is late"))
	d.route(d.msg("y@example.com", "My order is late"))
	out := d.route(d.msg("JANE@example.com", "And now the parcel is damaged as well"))
	if out.Owner != first.Owner {
		t.Fatalf("returning customer went to %s, want sticky %s", out.Owner, first.Owner)
	}
	_, tl := d.complaint(out.ComplaintID)
	if !strings.Contains(events(tl, router.EventAssigned)[0].Reason, "sticky") {
		t.Errorf("reason does not say sticky")
	}
}

func TestLeastLoadedTieBreaksOnLongestWait(t *testing.T) {
	d := newDesk(t)
	var owners []string
	for i := range 3 {
		d.clock.Advance(time.Minute)
		out := d.route(d.msg("", "My order is late, please help me"+strings.Repeat("!", i)))
		owners = append(owners, out.Owner)
	}
	// English: anna, chloe speak it; bas does not. 0/0 → anna (id), then chloe, then anna again.
	want := []string{"anna", "chloe", "anna"}
	for i := range want {
		if owners[i] != want[i] {
			t.Fatalf("owners = %v, want %v", owners, want)
		}
	}
}

func TestOverCapacityStillAssigns(t *testing.T) {
	d := newDesk(t)
	first := d.route(d.msg("a@example.com", "Your invoice charged me twice"))
	second := d.route(d.msg("b@example.com", "Wrong invoice again"))
	if first.Owner != "daan" || second.Owner != "daan" {
		t.Fatalf("billing went to %s, %s; want daan (only billing owner)", first.Owner, second.Owner)
	}
	if first.OverCapacity || !second.OverCapacity {
		t.Errorf("over-capacity flags = %v, %v; want false, true", first.OverCapacity, second.OverCapacity)
	}
	_, tl := d.complaint(second.ComplaintID)
	a := events(tl, router.EventAssigned)[0]
	if a.Details["over_capacity"] != "true" || !strings.Contains(a.Reason, "over capacity") {
		t.Errorf("assigned event = %+v, want it to record over capacity", a)
	}
}

func TestInactiveTeamFallsBackToDefaultTeam(t *testing.T) {
	d := newDesk(t)
	out := d.route(d.msg("", "The museum tickets never arrived"))
	c, _ := d.complaint(out.ComplaintID)
	if c.Team != "support" || !strings.Contains(c.RoutingReason, "no active owner") {
		t.Fatalf("complaint = team %s, reason %q; want the default team and the reason", c.Team, c.RoutingReason)
	}
}

func TestRedeliveredMessageChangesNothing(t *testing.T) {
	d := newDesk(t)
	m := d.msg("jane@example.com", "Broken blender")
	first := d.route(m)
	again := d.route(m)
	if again.Kind != router.OutcomeDuplicate || again.ComplaintID != first.ComplaintID {
		t.Fatalf("redelivery = %+v, want duplicate of %s", again, first.ComplaintID)
	}
	c, tl := d.complaint(first.ComplaintID)
	if c.Messages != 1 || messageCount(tl) != 1 || d.load(first.Owner) != 1 {
		t.Errorf("after redelivery: %d messages, timeline %d, load %d; want 1, 1, 1", c.Messages, messageCount(tl), d.load(first.Owner))
	}
}

func TestEmptyMessageIsPermanentError(t *testing.T) {
	d := newDesk(t)
	m := d.msg("jane@example.com", "   ")
	_, err := d.router.Route(context.Background(), m)
	if !router.IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent error (retrying cannot fix an empty body)", err)
	}
}

func TestCloseAndReassignAreAuditedAndGuarded(t *testing.T) {
	d := newDesk(t)
	ctx := context.Background()
	out := d.route(d.msg("jane@example.com", "Broken blender"))
	id := out.ComplaintID

	if _, err := d.router.Reassign(ctx, id, "api", "bas", ""); !isField(err, "reason") {
		t.Errorf("reassign without reason: %v, want a validation error on reason", err)
	}
	if _, err := d.router.Reassign(ctx, id, "api", "nobody", "x"); !isField(err, "owner") {
		t.Errorf("reassign to unknown owner: %v, want a validation error on owner", err)
	}
	if _, err := d.router.Reassign(ctx, id, "api", "emma", "x"); !isField(err, "owner") {
		t.Errorf("reassign to inactive owner: %v, want a validation error on owner", err)
	}
	if _, err := d.router.Reassign(ctx, id, "api", out.Owner, "x"); !errors.Is(err, router.ErrInvalidState) {
		t.Errorf("reassign to current owner: %v, want ErrInvalidState", err)
	}
	c, err := d.router.Reassign(ctx, id, "api", "chloe", "customer asked for an English speaker")
	if err != nil || c.Owner != "chloe" {
		t.Fatalf("reassign: %v, owner %s", err, c.Owner)
	}
	if d.load(out.Owner) != 0 || d.load("chloe") != 1 {
		t.Errorf("loads after reassign: %s=%d chloe=%d, want 0 and 1", out.Owner, d.load(out.Owner), d.load("chloe"))
	}
	if _, err := d.router.Close(ctx, id, "chloe", "", ""); !isField(err, "resolution") {
		t.Errorf("close without resolution: %v, want a validation error", err)
	}
	if _, err := d.router.CloseWith(ctx, id, "chloe", router.Closing{Resolution: "Refunded", Prevention: strings.Repeat("x", 2001)}); !isField(err, "prevention") {
		t.Errorf("close with a 2,001-byte prevention note: %v, want a validation error on prevention", err)
	}
	if _, err := d.router.CloseWith(ctx, id, "chloe", router.Closing{Resolution: "Refunded", Category: "product-quality", Prevention: " Check jugs before packing "}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.router.Close(ctx, id, "chloe", "Again", ""); !errors.Is(err, router.ErrInvalidState) {
		t.Errorf("second close: %v, want ErrInvalidState", err)
	}
	if _, err := d.router.Reassign(ctx, id, "api", "anna", "x"); !errors.Is(err, router.ErrInvalidState) {
		t.Errorf("reassigning a closed complaint: %v, want ErrInvalidState", err)
	}
	c, tl := d.complaint(id)
	if c.Status != router.StatusClosed || c.Owner != "chloe" || d.load("chloe") != 0 {
		t.Errorf("closed complaint = %+v, chloe load %d", c, d.load("chloe"))
	}
	re := events(tl, router.EventReassigned)
	if len(re) != 1 || re[0].Actor != "api" || re[0].PreviousOwner != out.Owner || re[0].Reason == "" {
		t.Errorf("reassigned events = %+v, want one with actor, previous owner and reason", re)
	}
	if c.Prevention != "Check jugs before packing" {
		t.Errorf("prevention note = %q, want it kept (trimmed) on the complaint", c.Prevention)
	}
	if cl := events(tl, router.EventClosed); len(cl) != 1 || cl[0].Details["prevention"] != "Check jugs before packing" {
		t.Errorf("closed events = %+v, want the prevention note in the details", cl)
	}
	if cl := events(tl, router.EventClosed); len(cl) != 1 || cl[0].Details["category"] != "product-quality" {
		t.Errorf("closed events = %+v", cl)
	}
	if _, err := d.router.Close(ctx, "C-404", "anna", "y", ""); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("close unknown: %v, want ErrNotFound", err)
	}
}

// The timeline must never record an actor who is no one, and a reply must
// never be signed by someone other than who the timeline says wrote it.
func TestActorMustBeAnOwnerOrASystemActor(t *testing.T) {
	ctx := context.Background()
	d := newDeskWith(t, byEmail{})
	id := d.route(d.msg("klant@voorbeeld.nl", "Broken lid.")).ComplaintID
	before := len(d.outbox())
	steps := map[string]func(actor string) error{
		"reply":       func(a string) error { _, err := d.router.Reply(ctx, id, a, "On its way."); return err },
		"acknowledge": func(a string) error { _, err := d.router.Acknowledge(ctx, id, a); return err },
		"note":        func(a string) error { _, err := d.router.AddNote(ctx, id, a, "Called.", ""); return err },
		"promise": func(a string) error {
			_, err := d.router.Promise(ctx, id, a, d.clock.Now().Add(time.Hour), "Call back", false)
			return err
		},
		"close":    func(a string) error { _, err := d.router.Close(ctx, id, a, "Replaced", ""); return err },
		"reassign": func(a string) error { _, err := d.router.Reassign(ctx, id, a, "bas", "Dutch speaker"); return err },
	}
	for name, step := range steps {
		if err := step("zed"); !isField(err, "actor") {
			t.Errorf("%s as unknown actor zed: %v, want an actor error", name, err)
		}
	}
	if len(d.outbox()) != before {
		t.Error("a refused step must queue nothing")
	}
	for _, actor := range []string{"", "api", "cli", "cli:alice", "slack:U024BE7LH", "bas"} {
		if _, err := d.router.AddNote(ctx, id, actor, "Called.", ""); err != nil {
			t.Errorf("note as %q: %v, want accepted", actor, err)
		}
	}
}

func TestOwnerLeftTheRosterOnReopen(t *testing.T) {
	d := newDesk(t)
	first := d.msg("jane@example.com", "Broken blender")
	first.ThreadKeys = []string{"webhook:order-1"}
	out := d.route(first)
	if _, err := d.router.Close(context.Background(), out.ComplaintID, "anna", "Fixed", ""); err != nil {
		t.Fatal(err)
	}
	// Same store, a roster without the owner.
	d2 := &desk{t: t, store: d.store, clock: d.clock, seq: d.seq}
	owners := []router.Owner{{ID: "chloe", Name: "Chloe", Email: "c@example.com", Teams: []string{"support"}, Capacity: 3, Active: true}}
	roster, _ := router.NewRoster([]router.Team{{ID: "support"}}, owners)
	r, err := router.New(router.Config{Store: d.store, Directory: roster, Rules: &router.Rules{DefaultTeam: "support"}, ReopenWindow: time.Hour * 24, Clock: d.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	d2.router = r
	again := d2.msg("jane@example.com", "Broken again")
	again.ThreadKeys = first.ThreadKeys
	o := d2.route(again)
	if o.Kind != router.OutcomeReopened || o.Owner != "chloe" {
		t.Fatalf("outcome = %+v, want reopened and given to chloe", o)
	}
	_, tl := d2.complaint(o.ComplaintID)
	a := events(tl, router.EventAssigned)
	if len(a) != 2 || !strings.Contains(a[1].Reason, "no longer on the roster") {
		t.Errorf("assigned events = %+v", a)
	}
}

func isField(err error, field string) bool {
	var v *router.ValidationError
	return errors.As(err, &v) && v.Field == field
}
