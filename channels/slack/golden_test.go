package slack

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	slackgo "github.com/slack-go/slack"
)

var update = flag.Bool("update", false, "rewrite the golden Block Kit files in testdata/")

var goldenAt = time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)

func goldenNames(id string) string {
	return map[string]string{"anna": "Anna de Vries", "bas": "Bas Jansen", "sanne": "Sanne Mulder", router.ActorRouter: "forgetmenot"}[id]
}

func goldenComplaint() router.Complaint {
	return router.Complaint{
		ID: "C-1042", Status: router.StatusOpen, Owner: "anna", Team: "support-en", Channel: router.ChannelWebhook,
		Subject: "Order 104-2233 arrived damaged", Customer: router.Customer{Name: "Mila <Jansen>", Email: "mila@example.com"},
		CustomerKey:   "email:mila@example.com",
		RoutingReason: "no rule matched → default team support-en → least loaded of 3 (anna: 2 open)",
		CreatedAt:     goldenAt, UpdatedAt: goldenAt, LastMessageAt: goldenAt, Messages: 2,
		RespondBy: goldenAt.Add(4 * time.Hour), ResolveBy: goldenAt.Add(72 * time.Hour), Version: 3,
	}
}

// checkGolden compares v, as Slack receives it, with testdata/name.json.
func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep Slack's <!date…> and &amp; readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s changed; review and run go test ./channels/slack -run Golden -update\n--- got ---\n%s", path, got)
	}
}

// What must hold: the Block Kit Slack receives stays exactly as reviewed —
// escaping, trimming, dates in the reader's time zone, buttons only for who
// may act.
func TestGoldenBlockKit(t *testing.T) {
	c := goldenComplaint()
	long := ""
	for range 60 {
		long += "The parcel was crushed & the glass inside <broken>. "
	}
	first := &router.Message{Channel: router.ChannelWebhook, Body: long, ReceivedAt: goldenAt}
	history := []router.Complaint{
		{ID: "C-1001", Status: router.StatusClosed, Owner: "bas", Subject: "Late delivery", CreatedAt: goldenAt.AddDate(0, -2, 0), Resolution: "Refunded shipping", Category: "delivery", CustomerKey: c.CustomerKey},
		{ID: "C-1017", Status: router.StatusOpen, Owner: "anna", CreatedAt: goldenAt.AddDate(0, 0, -3), CustomerKey: c.CustomerKey},
	}
	assigned := router.Notification{ID: "C-1042:v1:assigned:anna", Kind: router.NotifyAssigned, Recipient: "anna", Complaint: c,
		Event: &router.Event{Type: router.EventAssigned, Actor: router.ActorRouter, Owner: "anna", Details: map[string]string{"over_capacity": "true"}}}
	v := caseView{Complaint: c, First: first, More: 1, History: history, Buttons: true, Headline: headline(assigned, goldenNames)}
	checkGolden(t, "top_assigned", slackgo.Blocks{BlockSet: caseBlocks(v, goldenNames)})

	closed := c
	closed.Status, closed.ClosedAt, closed.Resolution, closed.Category = router.StatusClosed, goldenAt.Add(time.Hour), "Sent a replacement", "delivery"
	closed.AcknowledgedAt, closed.FirstResponseAt = goldenAt.Add(10*time.Minute), goldenAt.Add(20*time.Minute)
	checkGolden(t, "top_closed", slackgo.Blocks{BlockSet: caseBlocks(caseView{Complaint: closed, First: first, Buttons: true}, goldenNames)})

	msg := &router.Message{Channel: router.ChannelEmail, Subject: "Re: Order 104-2233", Body: "Any news?\nI need it by Friday.", ReceivedAt: goldenAt.Add(time.Hour)}
	by := goldenAt.Add(48 * time.Hour).Format(time.RFC3339)
	kinds := []router.Notification{
		{Kind: router.NotifyMessage, Message: msg},
		{Kind: router.NotifyReopened, Message: msg, Event: &router.Event{Type: router.EventReopened, Actor: router.ActorRouter, Reason: "the customer wrote again 2d after closing (within the 14d reopen window, via thread key)"}},
		{Kind: router.NotifyReassigned, Recipient: "anna", Event: &router.Event{Type: router.EventReassigned, Actor: "sanne", Owner: "bas", PreviousOwner: "anna", Reason: "Bas speaks to the courier daily", Details: map[string]string{"over_capacity": "true"}}},
		{Kind: router.NotifyReassigned, Recipient: "bas", Event: &router.Event{Type: router.EventReassigned, Actor: "sanne", Owner: "bas", PreviousOwner: "anna", Reason: "Bas speaks to the courier daily"}},
		{Kind: router.NotifyClosed, Event: &router.Event{Type: router.EventClosed, Actor: "anna", Reason: "Sent a replacement", Details: map[string]string{"category": "delivery"}}},
		{Kind: router.NotifyAcknowledged, Event: &router.Event{Type: router.EventAcknowledged, Actor: "anna"}},
		{Kind: router.NotifyReplied, Event: &router.Event{Type: router.EventReplied, Actor: "bas", Text: "Hi Mila, a new one ships today.", Details: map[string]string{"via": "email"}}},
		{Kind: router.NotifyPromised, Event: &router.Event{Type: router.EventPromised, Actor: "anna", Text: "You will hear from us by Wednesday", Details: map[string]string{"by": by, "via": "webhook"}}},
		{Kind: router.NotifyReminder, Event: &router.Event{Type: "reminder", Actor: router.ActorRouter, Reason: "first response due in 30m"}},
		{Kind: router.NotifyEscalation, Event: &router.Event{Type: "escalated", Actor: router.ActorRouter, Reason: "first response overdue by 1h"}},
		{Kind: router.NotifyDeliveryFailed, Event: &router.Event{Type: router.EventDeliveryFailed, Actor: router.ActorRouter, Reason: "the customer did not get the reply: 550 mailbox unknown", Text: "Hi Mila, a new one ships today."}},
	}
	for i, n := range kinds {
		n.ID, n.Complaint = "n"+string(rune('a'+i)), c
		blocks, text := eventBlocks(n, goldenNames)
		checkGolden(t, "event_"+string(n.Kind)+suffix(n), map[string]any{"text": text, "blocks": slackgo.Blocks{BlockSet: blocks}})
	}
	esc := kinds[9]
	esc.Complaint = c
	blocks, text := leadBlocks(esc, goldenNames)
	checkGolden(t, "lead_escalation", map[string]any{"text": text, "blocks": slackgo.Blocks{BlockSet: blocks}})

	meta := `{"complaint":"C-1042","channel":"DUANNA"}`
	owners := []router.OwnerStatus{
		{Owner: router.Owner{ID: "anna", Name: "Anna de Vries", Teams: []string{"support-en"}, Capacity: 25, Active: true}},
		{Owner: router.Owner{ID: "bas", Name: "Bas Jansen", Teams: []string{"support-nl"}, Capacity: 20, Active: true}, OwnerLoad: router.OwnerLoad{Open: 4}},
		{Owner: router.Owner{ID: "ruben", Name: "Ruben de Boer", Teams: []string{"support-en"}, Capacity: 20}},
	}
	checkGolden(t, "modal_reply", replyModal(c, router.ChannelEmail, meta))
	checkGolden(t, "modal_promise", promiseModal(c, meta, goldenAt))
	checkGolden(t, "modal_close", closeModal(c, meta, []string{"delivery", "billing", "other"}))
	checkGolden(t, "modal_reassign", reassignModal(c, meta, owners))
}

func suffix(n router.Notification) string {
	if n.Kind == router.NotifyReassigned {
		return "_to_" + n.Recipient
	}
	return ""
}
