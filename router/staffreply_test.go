package router_test

import (
	"context"
	"errors"
	"testing"

	"github.com/forgetmenot/forgetmenot/router"
)

func TestStaffAnswerGivenOnTheForumSettlesTheResponseClockAndIsNeverSent(t *testing.T) {
	d, _ := accountableDesk(t, cet(t, "2026-11-23 10:00"), nil) // Monday
	ctx := context.Background()
	m := d.msg("marloes@example.nl", "The jug arrived broken, what now?")
	m.Channel, m.ThreadKeys = router.ChannelForum, []string{"forum:topic:4711"}
	id := d.route(m).ComplaintID
	if c, _ := d.complaint(id); c.RespondBy.IsZero() {
		t.Fatal("the complaint must have a response deadline for this test to mean anything")
	}
	queuedBefore := len(d.toCustomer())

	d.clock.now = cet(t, "2026-11-23 11:00")
	rep := router.ExternalReply{ThreadKey: "forum:topic:4711", Key: "forum:post:90212", Actor: "bas",
		Text: "Sorry to hear that! Please send a photo.", Via: router.ChannelForum, Ref: "post:90212"}
	for range 2 { // a redelivered webhook records nothing twice
		if _, err := d.router.RecordStaffReply(ctx, rep); err != nil {
			t.Fatal(err)
		}
	}
	c, tl := d.complaint(id)
	if !c.RespondBy.IsZero() || !c.FirstResponseAt.Equal(cet(t, "2026-11-23 11:00")) || c.WaitingSince.IsZero() {
		t.Errorf("after the answer: respond by %v, first response %v, waiting since %v; want answered at 11:00 and waiting on the customer",
			c.RespondBy, c.FirstResponseAt, c.WaitingSince)
	}
	replies := events(tl, router.EventReplied)
	if len(replies) != 1 || replies[0].Actor != "bas" || replies[0].Text != rep.Text || replies[0].Details["via"] != "forum" || replies[0].Details["ref"] != "post:90212" {
		t.Fatalf("timeline replies %+v, want exactly one by bas via forum", replies)
	}
	if n := len(d.toCustomer()); n != queuedBefore {
		t.Errorf("%d messages queued for the customer by an answer they already have, want none", n-queuedBefore)
	}
	if n := len(d.notes(router.NotifyReplied)); n != 1 {
		t.Errorf("%d reply notifications, want 1: the owner learns a colleague answered", n)
	}
	// Past the original deadline: nothing breaches.
	d.clock.now = cet(t, "2026-11-23 16:00")
	fireEverywhere(t, d.router)
	if n := len(d.notes(router.NotifyEscalation)); n != 0 {
		t.Errorf("%d escalations although the customer was answered", n)
	}

	// A staff member not on the roster is named by their forum account.
	rep.Key, rep.Actor = "forum:post:90300", "forum:moderator-mia"
	if _, err := d.router.RecordStaffReply(ctx, rep); err != nil {
		t.Fatal(err)
	}
	// An unknown actor without a source is refused; so is a topic without a complaint.
	rep.Key, rep.Actor = "forum:post:90301", "mia"
	var bad *router.ValidationError
	if _, err := d.router.RecordStaffReply(ctx, rep); !errors.As(err, &bad) || bad.Field != "actor" {
		t.Errorf("unknown actor: err %v, want invalid", err)
	}
	rep.ThreadKey, rep.Actor = "forum:topic:9999", "bas"
	if _, err := d.router.RecordStaffReply(ctx, rep); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("topic without a complaint: err %v, want not found", err)
	}
}

func TestStaffAnswerToAnotherCustomerInTheTopicSettlesOnlyTheirComplaint(t *testing.T) {
	d, _ := accountableDesk(t, cet(t, "2026-11-23 10:00"), nil)
	ctx := context.Background()
	post := func(user, body string) string {
		m := d.msg("", body)
		m.Channel, m.Customer, m.ThreadKeys = router.ChannelForum, router.Customer{ID: user, Name: user}, []string{"forum:topic:4711"}
		return d.route(m).ComplaintID
	}
	marloes := post("233", "The jug arrived broken.")
	pieter := post("666", "Mine too, order 104-2301.")
	if marloes == pieter {
		t.Fatal("two members of one topic must have two complaints")
	}
	answer := router.ExternalReply{ThreadKey: "forum:topic:4711", Key: "forum:post:1", Actor: "bas", Text: "Pieter, we send a new one.",
		Via: router.ChannelForum, CustomerKey: "forum:666"}
	if c, err := d.router.RecordStaffReply(ctx, answer); err != nil || c.ID != pieter {
		t.Fatalf("answer to Pieter recorded on %v (%v), want %s", c.ID, err, pieter)
	}
	if c, _ := d.complaint(marloes); c.RespondBy.IsZero() || !c.FirstResponseAt.IsZero() {
		t.Errorf("Marloes was not answered, yet her clock stopped: %+v", c)
	}
	// Addressed to someone without a complaint in the topic: nobody's.
	answer.Key, answer.CustomerKey = "forum:post:2", "forum:999"
	if _, err := d.router.RecordStaffReply(ctx, answer); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("answer to a stranger: err %v, want not found", err)
	}
}
