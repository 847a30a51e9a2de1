package console_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/channels/console"
	"github.com/forgetmenot/forgetmenot/router"
)

// TestAssignmentSaysTheCustomerCannotBeWrittenTo: without Slack, the owner's
// assignment in the log carries why the customer cannot be answered.
func TestAssignmentSaysTheCustomerCannotBeWrittenTo(t *testing.T) {
	var buf bytes.Buffer
	roster, err := router.NewRoster([]router.Team{{ID: "support"}}, []router.Owner{{ID: "anna", Name: "Anna", Email: "anna@example.nl", Teams: []string{"support"}, Capacity: 3, Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	n := console.New(slog.New(slog.NewTextHandler(&buf, nil)), roster)
	c := router.Complaint{ID: "C-1", Owner: "anna", Channel: router.ChannelEmail, Unreachable: "the mail has no readable sender address"}
	if err := n.Notify(context.Background(), router.Notification{Kind: router.NotifyAssigned, Recipient: "anna", Complaint: c}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `customer_unreachable="the mail has no readable sender address"`) {
		t.Errorf("log line lacks why the customer cannot be written to:\n%s", buf.String())
	}
}

// What must hold: the log names the complaint's owner as its owner, and
// who else is told (the lead of an escalation) as such; the owner's notice
// of a missed deadline says it was missed, not that one is coming up.
func TestLogLinesNameTheOwnerAndWhatHappened(t *testing.T) {
	var buf bytes.Buffer
	roster, err := router.NewRoster([]router.Team{{ID: "support", Lead: "sanne"}}, []router.Owner{
		{ID: "anna", Name: "Anna", Email: "anna@example.nl", Teams: []string{"support"}, Capacity: 3, Active: true},
		{ID: "sanne", Name: "Sanne", Email: "sanne@example.nl", Teams: []string{"support"}, Capacity: 3, Active: true}})
	if err != nil {
		t.Fatal(err)
	}
	n := console.New(slog.New(slog.NewTextHandler(&buf, nil)), roster)
	c := router.Complaint{ID: "C-1", Owner: "anna", Channel: router.ChannelEmail}
	missed := &router.Event{Type: router.EventBreached, Reason: "an answer to the customer was due"}
	for _, note := range []router.Notification{
		{ID: "n1", Kind: router.NotifyReminder, Recipient: "anna", Complaint: c, Event: missed},
		{ID: "n2", Kind: router.NotifyEscalation, Recipient: "sanne", Complaint: c, Event: missed},
	} {
		if err := n.Notify(context.Background(), note); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log:\n%s", buf.String())
	}
	if !strings.Contains(lines[0], "DEADLINE MISSED") || strings.Contains(lines[0], "coming up") {
		t.Errorf("the owner's notice of a missed deadline: %s", lines[0])
	}
	if !strings.Contains(lines[1], "owner=anna") || !strings.Contains(lines[1], "to=sanne") {
		t.Errorf("the escalation names the owner as anna and the lead as who is told: %s", lines[1])
	}
}
