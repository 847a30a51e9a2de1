package slack_test

import (
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/slack"
	"github.com/forgetmenot/forgetmenot/router"
)

// What must hold: the digest is posted once in the lead channel, through
// the paced sender, within Slack's limits even with long and hostile
// category names (the Slack double refuses what Slack refuses, so a post that
// broke one would not be recorded); a redelivery does not post it again.
func TestDigestIsPostedOnceInTheLeadChannelWithinSlackLimits(t *testing.T) {
	f := newFixture(t, func(c *slack.Config) { c.LeadChannel = "CLEAD" })
	f.ws.AddChannel("CLEAD")
	long := strings.Repeat("&<>", 33) + "x" // 100 bytes, 300 characters once escaped
	d := router.Digest{Week: "2026-W48", Since: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
		Complaints: 5, Volume: 200, RatePercent: 2.5, ThresholdPercent: 2.5, Alert: true, BusinessTime: true,
		FirstResponse: router.Durations{Count: 5, MedianSeconds: 3600}, Resolution: router.Durations{Count: 3, MedianSeconds: 43200},
		Promises: router.PromiseStats{Made: 4, Kept: 2, Broken: 1, KeptPercent: 66.7}, Breaches: 2,
		TopCauses:    []router.Count{{Name: "delivery", Count: 2}, {Name: `<script>alert(1)</script>`, Count: 1}, {Name: long, Count: 1}},
		OverCapacity: []router.OwnerReport{{Owner: "anna", Open: 2, Capacity: 1, OverCapacity: true}},
		ReportURL:    "https://support.example/v1/report?format=html&since=2026-11-23T00%3A00%3A00Z&sig=abc"}
	n := router.Notification{ID: "digest:2026-W48", Kind: router.NotifyDigest, Recipient: router.DigestRecipient, At: d.Until, Digest: &d}
	for range 2 { // the second is a redelivery
		if err := f.slack.Notify(f.ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	posts := f.ws.Posts("chat.postMessage")
	if len(posts) != 1 || posts[0].Channel != "CLEAD" {
		t.Fatalf("posts %+v, want one in CLEAD", posts)
	}
	p := posts[0]
	if refused := f.ws.Refused(); len(refused) > 0 {
		t.Errorf("Slack refused %+v", refused)
	}
	// As Slack reads it: JSON's \u0026-style escapes undone.
	blocks := strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">").Replace(p.Blocks)
	for _, want := range []string{"2026-W48", "5 complaints on 200 orders: 2.50%", "1.0 business hours", "12.0 business hours", "66.7% (2 of 3)",
		"1. delivery: 2", "&lt;script&gt;", "Anna de Vries: 2 open, capacity 1", `"url":"https://support.example/v1/report?format=html`} {
		if !strings.Contains(blocks, want) {
			t.Errorf("digest lacks %q:\n%s", want, blocks)
		}
	}
	if strings.Contains(blocks, "<script>") {
		t.Error("a category reached Slack unescaped")
	}

	// Without a link (no PUBLIC_URL), the digest says how to get the report.
	d.ReportURL, d.Week, n.ID = "", "2026-W49", "digest:2026-W49"
	if err := f.slack.Notify(f.ctx, n); err != nil {
		t.Fatal(err)
	}
	if posts := f.ws.Posts("chat.postMessage"); len(posts) != 2 || !strings.Contains(posts[1].Blocks, "forgetmenot report --format html") {
		t.Errorf("digest without a link: %+v", posts[len(posts)-1])
	}
}
