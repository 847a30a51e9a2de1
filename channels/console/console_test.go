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
