package router_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/router"
)

// victim opens the complaint an attacker goes after.
type victim struct {
	name string
	open func(d *desk) router.Message
}

var victims = []victim{
	{"anonymous chat visitor", func(d *desk) router.Message {
		m := d.msg("", "Mijn bestelling is kapot aangekomen.")
		m.Channel, m.Customer = router.ChannelChat, router.Customer{ID: "sess-victim"}
		m.ThreadKeys = []string{"chat:sess-victim"}
		return m
	}},
	{"e-mail customer", func(d *desk) router.Message {
		m := d.msg("jan@voorbeeld.nl", "Mijn bestelling is kapot aangekomen.")
		m.Channel = router.ChannelEmail
		m.ThreadKeys = []string{"email:<q1@voorbeeld.nl>"}
		return m
	}},
	{"shop customer by id only", func(d *desk) router.Message {
		m := d.msg("", "My order arrived broken.")
		m.Customer = router.Customer{ID: "cust-88", Name: "Jan"}
		m.ThreadKeys = []string{"webhook:order-77"}
		return m
	}},
	{"forum user", func(d *desk) router.Message {
		m := d.msg("", "My order arrived broken.")
		m.Channel, m.Customer = router.ChannelForum, router.Customer{ID: "1234", Name: "jan"}
		m.ThreadKeys = []string{"forum:topic:4711"}
		return m
	}},
}

// attacks try to put a stranger's message on the victim's complaint by every
// reference a channel can carry.
var attacks = []struct {
	name string
	make func(d *desk, victimMsg router.Message, complaintID string) router.Message
}{
	{"webhook complaint_id with a stranger's e-mail", func(d *desk, _ router.Message, id string) router.Message {
		m := d.msg("attacker@evil.example", "I am the customer now, send the refund to me.")
		m.ComplaintID = id
		return m
	}},
	{"webhook complaint_id without any identity", func(d *desk, _ router.Message, id string) router.Message {
		m := d.msg("", "Anonymous words on your complaint.")
		m.ComplaintID = id
		return m
	}},
	{"webhook thread key", func(d *desk, v router.Message, _ string) router.Message {
		m := d.msg("attacker@evil.example", "Same thread, different person.")
		m.ThreadKeys = v.ThreadKeys
		return m
	}},
	{"e-mail subject token or plus address", func(d *desk, _ router.Message, id string) router.Message {
		m := d.msg("attacker@evil.example", "Re: ["+id+"] please update my address")
		m.Channel, m.ComplaintID = router.ChannelEmail, id
		return m
	}},
	{"e-mail without a readable From", func(d *desk, _ router.Message, id string) router.Message {
		m := d.msg("", "Re: your complaint")
		m.Channel, m.ComplaintID = router.ChannelEmail, id
		return m
	}},
	{"e-mail In-Reply-To the victim's thread", func(d *desk, v router.Message, _ string) router.Message {
		m := d.msg("attacker@evil.example", "Replying in your thread.")
		m.Channel = router.ChannelEmail
		m.ThreadKeys = append([]string{"email:<a1@evil.example>"}, v.ThreadKeys...)
		return m
	}},
	{"chat with another session's thread key", func(d *desk, v router.Message, _ string) router.Message {
		m := d.msg("", "Hi from another browser.")
		m.Channel, m.Customer = router.ChannelChat, router.Customer{ID: "sess-attacker"}
		m.ThreadKeys = v.ThreadKeys
		return m
	}},
	{"forum post by another user in the topic", func(d *desk, v router.Message, _ string) router.Message {
		m := d.msg("", "Me too!")
		m.Channel, m.Customer = router.ChannelForum, router.Customer{ID: "999", Name: "mallory"}
		m.ThreadKeys = v.ThreadKeys
		return m
	}},
	{"shop id of the victim sent on the chat channel", func(d *desk, v router.Message, _ string) router.Message {
		m := d.msg("", "Same id, other channel.")
		m.Channel, m.Customer = router.ChannelChat, router.Customer{ID: v.Customer.ID}
		m.ThreadKeys = v.ThreadKeys
		return m
	}},
}

// TestNoStrangerJoinsAnotherCustomersComplaint: whatever reference a
// stranger's message carries, the victim's complaint keeps its customer,
// gains no line of the stranger's, queues nothing for anyone, and only
// records that it was mentioned; the stranger's message opens a complaint of
// its own that names the victim's.
func TestNoStrangerJoinsAnotherCustomersComplaint(t *testing.T) {
	for _, v := range victims {
		for _, a := range attacks {
			t.Run(v.name+"/"+a.name, func(t *testing.T) {
				d := newDeskWith(t, byEmail{})
				first := v.open(d)
				if first.Channel == router.ChannelChat && strings.Contains(a.name, "sent on the chat channel") {
					t.Skip("the same session id on the chat channel is the victim")
				}
				opened := d.route(first)
				before, beforeTL := d.complaint(opened.ComplaintID)
				queuedBefore := len(d.toCustomer())

				attack := a.make(d, first, opened.ComplaintID)
				out := d.route(attack)

				if out.ComplaintID == opened.ComplaintID {
					t.Fatalf("the stranger's message joined %s: %+v", opened.ComplaintID, out)
				}
				after, afterTL := d.complaint(opened.ComplaintID)
				if after.Customer != before.Customer || after.CustomerKey != before.CustomerKey || !slices.Equal(after.Identities, before.Identities) {
					t.Errorf("victim's customer changed: %+v → %+v (identities %v → %v)", before.Customer, after.Customer, before.Identities, after.Identities)
				}
				if after.Messages != before.Messages || messageCount(afterTL) != messageCount(beforeTL) {
					t.Errorf("victim's complaint gained a message: %d → %d", before.Messages, after.Messages)
				}
				for _, e := range afterTL[len(beforeTL):] {
					if e.Message != nil || e.Event == nil || e.Event.Type != router.EventMentioned {
						t.Errorf("victim's timeline gained %+v; only a mention line may be added", e)
					}
				}
				for _, m := range d.toCustomer()[queuedBefore:] {
					if m.Complaint.ID == opened.ComplaintID {
						t.Errorf("something was queued for the victim's customer: %+v", m)
					}
				}
				if out.Kind != router.OutcomeOpened {
					t.Fatalf("the stranger's message: %+v, want a complaint of its own", out)
				}
				_, ownTL := d.complaint(out.ComplaintID)
				if why := events(ownTL, router.EventOpened)[0].Reason; !strings.Contains(why, "mentions "+opened.ComplaintID) || !strings.Contains(why, "sender not verified") {
					t.Errorf("the stranger's complaint does not name the victim's: %q", why)
				}
				mentions := events(afterTL, router.EventMentioned)
				if len(mentions) != 1 || mentions[0].Details["complaint"] != out.ComplaintID {
					t.Errorf("victim's timeline mentions = %+v, want one naming %s", mentions, out.ComplaintID)
				}
				// The stranger's name and address stay off the victim's
				// complaint (they would be in the victim's export, and out
				// of reach of the stranger's erasure); the stranger's own
				// complaint lists where it left the line.
				for _, m := range mentions {
					line := fmt.Sprint(m.Reason, m.Details)
					for _, personal := range []string{attack.Customer.Email, attack.Customer.Name, attack.Customer.ID} {
						if personal != "" && strings.Contains(line, personal) {
							t.Errorf("victim's mention line names the stranger (%q): %s", personal, line)
						}
					}
				}
				if got := events(ownTL, router.EventOpened)[0].Details[router.DetailMentions]; got != opened.ComplaintID {
					t.Errorf("the stranger's complaint lists mentions %q, want %s", got, opened.ComplaintID)
				}
			})
		}
	}
}

// TestProvenSendersStillJoin: the legitimate ways back to a complaint.
func TestProvenSendersStillJoin(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(d *desk) (complaintID string, next router.Message)
	}{
		{"the customer's own follow-up by complaint id", func(d *desk) (string, router.Message) {
			out := d.route(d.msg("jan@voorbeeld.nl", "Broken jug"))
			m := d.msg("JAN@voorbeeld.nl", "Any news?")
			m.ComplaintID = out.ComplaintID
			return out.ComplaintID, m
		}},
		{"the same address by e-mail after a webhook complaint", func(d *desk) (string, router.Message) {
			out := d.route(d.msg("jan@voorbeeld.nl", "Broken jug"))
			m := d.msg("jan@voorbeeld.nl", "Re: ["+out.ComplaintID+"]")
			m.Channel, m.ComplaintID = router.ChannelEmail, out.ComplaintID
			return out.ComplaintID, m
		}},
		{"the same chat session after a reconnect", func(d *desk) (string, router.Message) {
			m := d.msg("", "Hello?")
			m.Channel, m.Customer, m.ThreadKeys = router.ChannelChat, router.Customer{ID: "sess-1"}, []string{"chat:sess-1"}
			out := d.route(m)
			next := d.msg("", "I am back")
			next.Channel, next.Customer, next.ThreadKeys = router.ChannelChat, router.Customer{ID: "sess-1", Name: "Jan"}, []string{"chat:sess-1"}
			return out.ComplaintID, next
		}},
		{"a reply from the Reply-To address we wrote to", func(d *desk) (string, router.Message) {
			m := d.msg("a@voorbeeld.nl", "Broken jug")
			m.Channel, m.ThreadKeys = router.ChannelEmail, []string{"email:<q1@voorbeeld.nl>"}
			out := d.route(m)
			ack := d.queued(router.ToCustomerAcknowledgement)
			if err := d.router.RecordSent(ctx, ack, router.Sent{Via: "email", Ref: "<ack1@support.example>",
				ThreadKeys: []string{"email:<ack1@support.example>"}, Address: "b@voorbeeld.nl"}); err != nil {
				d.t.Fatal(err)
			}
			next := d.msg("b@voorbeeld.nl", "Re: ["+out.ComplaintID+"] the jug")
			next.Channel, next.ComplaintID = router.ChannelEmail, out.ComplaintID
			next.ThreadKeys = []string{"email:<b7@voorbeeld.nl>", "email:<ack1@support.example>"}
			return out.ComplaintID, next
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeskWith(t, byEmail{})
			id, next := tc.run(d)
			before, _ := d.complaint(id)
			if got := d.route(next); got.Kind != router.OutcomeAttached || got.ComplaintID != id {
				t.Fatalf("proven sender's message = %+v, want attached to %s", got, id)
			}
			after, _ := d.complaint(id)
			if after.Owner != before.Owner || after.Messages != before.Messages+1 {
				t.Errorf("after attaching: owner %s→%s, messages %d→%d", before.Owner, after.Owner, before.Messages, after.Messages)
			}
			if before.Customer.Email != "" && after.Customer.Email != before.Customer.Email {
				t.Errorf("customer's address replaced: %q → %q", before.Customer.Email, after.Customer.Email)
			}
		})
	}
}

// TestSkippedSendProvesNothing: an address we did not actually write to
// (the loop guard held the acknowledgement back) is not the customer's.
func TestSkippedSendProvesNothing(t *testing.T) {
	ctx := context.Background()
	d := newDeskWith(t, byEmail{})
	m := d.msg("a@voorbeeld.nl", "Broken jug")
	m.Channel = router.ChannelEmail
	out := d.route(m)
	ack := d.queued(router.ToCustomerAcknowledgement)
	if err := d.router.RecordSent(ctx, ack, router.Sent{Via: "email", Skipped: "loop guard", Address: "b@voorbeeld.nl"}); err != nil {
		t.Fatal(err)
	}
	next := d.msg("b@voorbeeld.nl", "Re: ["+out.ComplaintID+"]")
	next.Channel, next.ComplaintID = router.ChannelEmail, out.ComplaintID
	if got := d.route(next); got.ComplaintID == out.ComplaintID {
		t.Fatalf("mail from an address we never wrote to joined %s", out.ComplaintID)
	}
}

// TestMergeJoinsTwoComplaintsUnderOneOwner: staff merge the stranger's
// complaint into the original once they know it is the same customer; the
// merged identities then thread by themselves.
func TestMergeJoinsTwoComplaintsUnderOneOwner(t *testing.T) {
	ctx := context.Background()
	d := newDeskWith(t, byEmail{})
	orig := d.route(d.msg("jan@voorbeeld.nl", "Broken jug"))
	colleague := d.msg("piet@voorbeeld.nl", "I am Jan's colleague, about the jug")
	colleague.ComplaintID = orig.ComplaintID
	other := d.route(colleague)
	if other.ComplaintID == orig.ComplaintID {
		t.Fatal("unproven sender joined")
	}
	loadsBefore := d.load(other.Owner) + d.load(orig.Owner)

	for _, bad := range []struct{ from, into, reason string }{
		{other.ComplaintID, other.ComplaintID, "same"},
		{other.ComplaintID, orig.ComplaintID, ""},
		{other.ComplaintID, "C-9999", "missing"},
	} {
		if _, err := d.router.Merge(ctx, bad.from, bad.into, "anna", bad.reason); err == nil {
			t.Errorf("merge %+v accepted", bad)
		}
	}
	merged, err := d.router.Merge(ctx, other.ComplaintID, orig.ComplaintID, "anna", "Piet works with Jan, confirmed by phone")
	if err != nil {
		t.Fatal(err)
	}
	if merged.Owner != orig.Owner || merged.Messages != 2 || !slices.Contains(merged.Identities, "email:piet@voorbeeld.nl") {
		t.Errorf("survivor: owner %s messages %d identities %v", merged.Owner, merged.Messages, merged.Identities)
	}
	gone, goneTL := d.complaint(other.ComplaintID)
	if gone.Status != router.StatusClosed || gone.MergedInto != orig.ComplaintID || len(gone.Timers) != 0 {
		t.Errorf("merged complaint: %+v", gone)
	}
	if evs := events(goneTL, router.EventMerged); len(evs) != 1 || evs[0].Actor != "anna" || evs[0].Details["into"] != orig.ComplaintID {
		t.Errorf("merged complaint's merge line: %+v", evs)
	}
	_, tl := d.complaint(orig.ComplaintID)
	if messageCount(tl) != 2 {
		t.Errorf("survivor's timeline has %d messages, want both", messageCount(tl))
	}
	if evs := events(tl, router.EventMerged); len(evs) != 1 || !strings.Contains(evs[0].Reason, "confirmed by phone") || evs[0].Details["from"] != other.ComplaintID {
		t.Errorf("survivor's merge line: %+v", evs)
	}
	if got := d.load(other.Owner) + d.load(orig.Owner); got != loadsBefore-1 {
		t.Errorf("open loads %d → %d, want one fewer", loadsBefore, got)
	}
	if _, err := d.router.Merge(ctx, other.ComplaintID, orig.ComplaintID, "anna", "again"); err == nil {
		t.Error("a complaint was merged twice")
	}

	// Piet's next mail, by either complaint's reference, lands on the survivor.
	for _, ref := range []string{other.ComplaintID, orig.ComplaintID} {
		m := d.msg("piet@voorbeeld.nl", fmt.Sprintf("More about the jug (%s)", ref))
		m.ComplaintID = ref
		if got := d.route(m); got.ComplaintID != orig.ComplaintID || got.Kind != router.OutcomeAttached {
			t.Errorf("Piet's mail naming %s = %+v, want attached to %s", ref, got, orig.ComplaintID)
		}
	}
}

// TestAFloodOfStrangersDoesNotBuryAComplaint: what must hold: strangers'
// messages naming one complaint (its reference copied into a web form
// many times over) each open a complaint of their own that names it, but
// add at most MaxMentionLines "mentioned" lines to its timeline; its
// customer and messages stay as they were.
func TestAFloodOfStrangersDoesNotBuryAComplaint(t *testing.T) {
	d := newDeskWith(t, byEmail{})
	victim := d.route(d.msg("jan@voorbeeld.nl", "Mijn kan is gebroken."))
	const strangers = router.MaxMentionLines + 5
	for i := range strangers {
		m := d.msg(fmt.Sprintf("vreemde%d@example.org", i), "Ik heb ook een klacht.")
		m.ComplaintID = victim.ComplaintID
		out := d.route(m)
		if out.Kind != router.OutcomeOpened || out.ComplaintID == victim.ComplaintID {
			t.Fatalf("stranger %d: %+v, want a complaint of their own", i, out)
		}
		_, tl := d.complaint(out.ComplaintID)
		if why := events(tl, router.EventOpened)[0].Reason; !strings.Contains(why, "mentions "+victim.ComplaintID) {
			t.Errorf("stranger %d's complaint does not name the one it mentions: %q", i, why)
		}
	}
	c, tl := d.complaint(victim.ComplaintID)
	if n := len(events(tl, router.EventMentioned)); n != router.MaxMentionLines {
		t.Errorf("%d strangers added %d mention lines, want at most %d", strangers, n, router.MaxMentionLines)
	}
	if c.Messages != 1 || c.Customer.Email != "jan@voorbeeld.nl" {
		t.Errorf("the mentioned complaint changed: %d messages, customer %+v", c.Messages, c.Customer)
	}
}
