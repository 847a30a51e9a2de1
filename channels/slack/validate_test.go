package slack

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/forgetmenot/forgetmenot/channels/slack/blockkit"
	"github.com/forgetmenot/forgetmenot/router"
	slackgo "github.com/slack-go/slack"
)

// pieces are the kinds of text that broke Slack payloads: markup characters
// that grow when escaped, unbroken CJK, emoji (4 bytes, 1 rune), combining
// marks, long URLs, line breaks, control characters, Slack markup.
var pieces = []string{
	"&", "<", ">", "&amp;", "<@U123>", "<!date^1^{date}|x>", "日本語の件名", "注文した商品が届きません", "🙂", "👩‍👩‍👧", "e\u0301",
	"https://example.com/" + strings.Repeat("a", 120), "\n", "\n\n", " ", "\t", "*bold*", "_", "`", "~", "\u200b", "\u202e",
	"Mila Jansen", "Straße", "Ωμέγα", "ok", "\x00", "\x7f", ":white_check_mark:",
}

func randomText(r *rand.Rand, limit int) string {
	if limit == 0 || r.IntN(8) == 0 {
		return ""
	}
	var b strings.Builder
	target := r.IntN(limit + 1)
	switch r.IntN(5) {
	case 0: // one character repeated: 5,000 "&", an unbroken Japanese run
		p := pieces[r.IntN(len(pieces))]
		for n, step := 0, max(utf8.RuneCountInString(p), 1); n < target; n += step {
			b.WriteString(p)
		}
	default:
		for b.Len() < target {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
	}
	return b.String()
}

func randomTime(r *rand.Rand, now time.Time) time.Time {
	if r.IntN(4) == 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(r.IntN(30*24)-15*24) * time.Hour)
}

func randomComplaint(r *rand.Rand, now time.Time, i int) router.Complaint {
	c := router.Complaint{
		ID: fmt.Sprintf("C-%d", 1000+i), Status: router.StatusOpen, Owner: "anna", Team: randomText(r, 40),
		Channel: []router.Channel{router.ChannelEmail, router.ChannelWebhook, router.ChannelForum, router.ChannelChat, ""}[r.IntN(5)],
		Subject: randomText(r, 2000), Customer: router.Customer{Name: randomText(r, 500), Email: "mila@example.com"},
		CustomerKey: "email:mila@example.com", RoutingReason: randomText(r, 3000), CreatedAt: now.Add(-time.Duration(r.IntN(1000)) * time.Hour),
		RespondBy: randomTime(r, now), ResolveBy: randomTime(r, now), PromisedBy: randomTime(r, now),
		AcknowledgedAt: randomTime(r, now), FirstResponseAt: randomTime(r, now), Reopens: r.IntN(3), FollowUpOf: []string{"", "C-1"}[r.IntN(2)],
	}
	if r.IntN(3) == 0 {
		c.Status, c.ClosedAt, c.Resolution, c.Category = router.StatusClosed, now, randomText(r, 6000), randomText(r, 300)
	}
	return c
}

// valid fails the test when a payload would be refused by Slack.
func valid(t *testing.T, what string, payload any) {
	t.Helper()
	if err := Validate(payload); err != nil {
		raw, _ := json.Marshal(payload)
		if len(raw) > 600 {
			raw = raw[:600]
		}
		var se slackgo.SlackErrorResponse
		errors.As(err, &se)
		t.Fatalf("%s would be refused by Slack: %v %v\n%s", what, err, se.ResponseMetadata.Messages, raw)
	}
}

// renderAll renders a random complaint into every message and view
// forgetmenot sends and checks each against Slack's limits.
func renderAll(t *testing.T, r *rand.Rand) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	names := func(id string) string {
		if id == "anna" {
			return "Anna de Vries"
		}
		return id + randomText(r, 100)
	}
	c := randomComplaint(r, now, 0)
	var history []router.Complaint
	for i := range r.IntN(8) {
		history = append(history, randomComplaint(r, now, i+1))
	}
	first := &router.Message{Channel: router.ChannelEmail, Subject: randomText(r, 1000), Body: randomText(r, 8000), ReceivedAt: now}
	v := caseView{Complaint: c, First: first, More: r.IntN(500), History: history, HistoryTotal: len(history) + r.IntN(400), Buttons: r.IntN(2) == 0}
	ev := &router.Event{Type: router.EventReassigned, Actor: "anna", Owner: "bas", PreviousOwner: "anna", Reason: randomText(r, 3000), Text: randomText(r, 8000),
		Details: map[string]string{"over_capacity": "true", "category": randomText(r, 300), "via": "email", "by": now.Format(time.RFC3339), "period": randomText(r, 50)}}
	kinds := []router.NotificationKind{router.NotifyAssigned, router.NotifyMessage, router.NotifyReopened, router.NotifyReassigned, router.NotifyClosed,
		router.NotifyAcknowledged, router.NotifyReplied, router.NotifyPromised, router.NotifyReminder, router.NotifyEscalation,
		router.NotifyDeliveryFailed, router.NotifyComplaintRate, "something_new"}
	for _, k := range kinds {
		n := router.Notification{ID: "n", Kind: k, Recipient: []string{"anna", "bas"}[r.IntN(2)], Complaint: c, Event: ev, Message: first}
		v.Headline = headline(n, names)
		valid(t, "top message ("+string(k)+")", Message{Text: caseText(v), Blocks: caseBlocks(v, names)})
		blocks, text := eventBlocks(n, names)
		valid(t, "thread reply ("+string(k)+")", Message{Text: text, Blocks: blocks})
		blocks, text = leadBlocks(n, names)
		valid(t, "lead channel ("+string(k)+")", Message{Text: text, Blocks: blocks})
		s := &Slack{cfg: Config{LinkBase: "https://support.example.com"}}
		valid(t, "plain fallback ("+string(k)+")", Message{Text: fit(":bell: "+s.plainSummary(n)+"\nEverything: "+s.complaintLink(c.ID), 3000)})
	}
	// /complaints C-1042: the case and its timeline.
	var tl []router.Entry
	for range r.IntN(30) {
		tl = append(tl, router.Entry{At: now, Message: first}, router.Entry{At: now, Event: ev})
	}
	show := append(caseBlocks(v, names), slackgo.NewDividerBlock(), slackgo.NewSectionBlock(mrkdwn(timelineText(tl, names)), nil, nil))
	valid(t, "/complaints show", ephemeral(caseText(v), show...))

	meta := `{"complaint":"` + c.ID + `","channel":"DUANNA"}`
	var cats []string
	for range r.IntN(120) {
		cats = append(cats, randomText(r, 100)+"x")
	}
	var owners []router.OwnerStatus
	for i := range r.IntN(150) {
		owners = append(owners, router.OwnerStatus{Owner: router.Owner{ID: fmt.Sprintf("o%d", i), Name: randomText(r, 200) + "x", Teams: []string{randomText(r, 50)}, Capacity: 10, Active: r.IntN(5) > 0}})
	}
	valid(t, "reply modal", replyModal(c, router.ChannelEmail, meta))
	valid(t, "promise modal", promiseModal(c, meta, now))
	valid(t, "close modal", closeModal(c, meta, cats))
	valid(t, "close modal (free root cause)", closeModal(c, meta, nil))
	valid(t, "reassign modal", reassignModal(c, meta, owners))
	valid(t, "away modal", awayModal(router.Owner{ID: "anna", Name: "Anna"}, owners, now))

	var list []router.Complaint
	for i := range r.IntN(80) {
		list = append(list, randomComplaint(r, now, i))
	}
	o := router.Owner{ID: "anna", Name: randomText(r, 300) + "Anna"}
	self := router.OwnerStatus{Owner: o}
	if r.IntN(2) == 0 {
		self.Away = &router.Absence{Owner: "anna", Until: now.Add(48 * time.Hour), Cover: "bas"}
		self.CoveredBy = []string{"bas", "daan"}[r.IntN(2)]
	}
	if r.IntN(2) == 0 {
		self.Planned = []router.Absence{{Owner: "anna", From: now.Add(96 * time.Hour), Until: now.Add(200 * time.Hour), Cover: randomText(r, 300) + "x"}}
	}
	valid(t, "App Home", homeView(o, r.IntN(2) == 0, list, self, now, names, func(router.Complaint) bool { return r.IntN(3) > 0 }))
}

// What must hold: whatever a customer writes, whatever their name, subject,
// language or history, every message and view forgetmenot renders passes
// Slack's documented limits (the property the Close modal and the 151-character
// header broke).
func TestRenderedPayloadsAreValid(t *testing.T) {
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			renderAll(t, rand.New(rand.NewPCG(seed, 11)))
		})
	}
}

// FuzzRenderedPayloads explores further: go test -fuzz FuzzRenderedPayloads.
func FuzzRenderedPayloads(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Fuzz(func(t *testing.T, a, b uint64) { renderAll(t, rand.New(rand.NewPCG(a, b))) })
}

// What must hold: the cut helpers never break an escape, count the "…" in
// the limit, and the header of an unbroken 150-character Japanese subject
// fits (it was 151 characters).
func TestTextsFitAfterEscaping(t *testing.T) {
	jp := strings.Repeat("日", 150)
	title := clipPlain("C-1042 · "+jp, blockkit.MaxHeaderText)
	if n := blockkit.PlainLen(title); n > blockkit.MaxHeaderText || !strings.HasSuffix(title, "…") {
		t.Errorf("header %d characters: %q", n, title)
	}
	// Emoji outside the BMP count as two (UTF-16), and are never split.
	emoji := clipPlain(strings.Repeat("🙂", 150), blockkit.MaxHeaderText)
	if n := blockkit.PlainLen(emoji); n > blockkit.MaxHeaderText || !utf8.ValidString(emoji) {
		t.Errorf("emoji header counts %d: %q", n, emoji)
	}
	amps := strings.Repeat("&", 5000)
	q, cut := quote(amps, topExcerpt)
	body := strings.TrimSuffix(strings.TrimPrefix(q, "> "), "…")
	if utf8.RuneCountInString(q) > topExcerpt || !cut || strings.ReplaceAll(body, "&amp;", "") != "" {
		t.Errorf("quote of 5,000 & is %d characters or breaks an escape: …%q", utf8.RuneCountInString(q), q[len(q)-20:])
	}
	if got, _ := clip("a & b", 100); got != "a &amp; b" {
		t.Errorf("clip = %q", got)
	}
	if got := fit(strings.Repeat("x", 2998)+"&amp;&amp;", 3000); strings.Contains(got, "&am…") || utf8.RuneCountInString(got) > 3000 {
		t.Errorf("fit broke an escape: …%q", got[len(got)-12:])
	}
	// Trust boundary: the notification text is mrkdwn too; a customer's
	// "<!channel>" must not ping the workspace.
	v := caseView{Complaint: router.Complaint{ID: "C-1", Subject: "<!channel> & <@U123>", Customer: router.Customer{Name: "<!here>"}}}
	if got := caseText(v); strings.ContainsAny(strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(got, "&lt;", ""), "&gt;", ""), "&amp;", ""), "<>&") {
		t.Errorf("caseText lets markup through: %q", got)
	}
	if got := clipPlain("short", 10); got != "short" {
		t.Errorf("clipPlain cut a short text: %q", got)
	}
}

// What must hold: the validator refuses what Slack refuses — each rule of
// CONTRACTS.md has a payload that breaks it.
func TestValidatorRefusesWhatSlackRefuses(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	in := func(max int) slackgo.ModalViewRequest {
		return modal("cb", "Title", "OK", "", textInput("b", "Label", "", false, max, false))
	}
	many := func(n int) []slackgo.Block {
		var bs []slackgo.Block
		for range n {
			bs = append(bs, slackgo.NewDividerBlock())
		}
		return bs
	}
	cases := []struct {
		name    string
		payload any
		code    string
	}{
		{"close modal max_length 4000", in(4000), "invalid_arguments"},
		{"max_length 3000 is fine", in(3000), ""},
		{"header 151", Message{Text: "t", Blocks: []slackgo.Block{slackgo.NewHeaderBlock(plain(long(151)))}}, "invalid_blocks"},
		{"header 150", Message{Text: "t", Blocks: []slackgo.Block{slackgo.NewHeaderBlock(plain(long(150)))}}, ""},
		{"header & counts escaped", Message{Text: "t", Blocks: []slackgo.Block{slackgo.NewHeaderBlock(plain(strings.Repeat("&", 31)))}}, "invalid_blocks"},
		{"section 3001", Message{Text: "t", Blocks: []slackgo.Block{slackgo.NewSectionBlock(mrkdwn(long(3001)), nil, nil)}}, "invalid_blocks"},
		{"no text fallback", Message{Blocks: []slackgo.Block{slackgo.NewDividerBlock()}}, "no_text"},
		{"text too long", Message{Text: long(4001)}, "msg_too_long"},
		{"51 blocks", Message{Text: "t", Blocks: many(51)}, "invalid_blocks"},
		{"101 blocks in a modal", modal("cb", "Title", "OK", "", many(101)...), "invalid_arguments"},
		{"modal title 25", modal("cb", long(25), "OK", ""), "invalid_arguments"},
		{"private_metadata 3001", modal("cb", "Title", "OK", long(3001)), "invalid_arguments"},
		{"button text 76", Message{Text: "t", Blocks: []slackgo.Block{slackgo.NewActionBlock("a", slackgo.NewButtonBlockElement("x", "v", plain(long(76))))}}, "invalid_blocks"},
		{"11 fields", Message{Text: "t", Blocks: []slackgo.Block{slackgo.NewSectionBlock(nil, func() []*slackgo.TextBlockObject {
			var fs []*slackgo.TextBlockObject
			for range 11 {
				fs = append(fs, mrkdwn("f"))
			}
			return fs
		}(), nil)}}, "invalid_blocks"},
		{"empty text object", Message{Text: "t", Blocks: []slackgo.Block{slackgo.NewSectionBlock(mrkdwn(""), nil, nil)}}, "invalid_blocks"},
		{"duplicate block_id", Message{Text: "t", Blocks: []slackgo.Block{slackgo.NewActionBlock("a", slackgo.NewButtonBlockElement("x", "v", plain("B"))), slackgo.NewActionBlock("a", slackgo.NewButtonBlockElement("y", "v", plain("B")))}}, "invalid_blocks"},
		{"home with 101 blocks", slackgo.HomeTabViewRequest{Type: slackgo.VTHomeTab, Blocks: slackgo.Blocks{BlockSet: many(101)}}, "invalid_arguments"},
	}
	for _, tc := range cases {
		err := Validate(tc.payload)
		if got := slackCode(err); got != tc.code {
			t.Errorf("%s: code %q (%v), want %q", tc.name, got, err, tc.code)
		}
	}
	if err := blockkit.CheckMessage("t", []byte(`[{"type":"carousel"}]`)); err == nil || !strings.Contains(err.Error(), "unknown block type") {
		t.Errorf("unknown block type: %v", err)
	}
}
