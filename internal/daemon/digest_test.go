package daemon_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/internal/testslack"
)

// What must hold, with two replicas on one real Redis and the Slack test
// double: the weekly digest, due today, is posted in the lead channel
// exactly once; its button opens last week's HTML report without the API
// token (the link is signed); a close by API must name a configured
// category, and the refusal names them.
func TestWeeklyDigestOnceAcrossReplicasWithASignedReportLink(t *testing.T) {
	ws := testslack.New(t, map[string]string{"anna.devries@example.nl": "UANNA"})
	ws.AddChannel("C0LEADS01")
	url0 := testredis.URL(t)
	ns := testredis.Namespace()
	const token = "digest-api-token"
	today := strings.ToLower(time.Now().Weekday().String())
	cfg := func(c *configs.Config) {
		c.Namespace = ns
		c.APIToken = token
		c.SlackBotToken, c.SlackMode, c.SlackSigningSecret, c.SlackAPIURL = "xoxb-digest", "http", slackSecret, ws.URL()
		c.SlackLeadChannel = "C0LEADS01"
		c.Categories = []string{"delivery", "billing"}
		c.Digest = today + " 00:00"
		c.PublicURL, c.CSATSecret = "https://support.example.nl", "csat-secret-for-tests"
		c.ReportLinkSecret, c.ReportLinkTTL = "report-link-secret-for-tests", configs.Duration(24*time.Hour)
		c.TimerPoll = configs.Duration(100 * time.Millisecond)
	}
	// Replicas are separate processes, each its own consumer of the outbox.
	name := func(n string) func(*configs.Config) { return func(c *configs.Config) { c.ConsumerName = n } }
	a, b := start(t, url0, componentNotifier{}, cfg, name("replica-a")), start(t, url0, componentNotifier{}, cfg, name("replica-b"))
	digests := func() []testslack.Post {
		var out []testslack.Post
		for _, p := range ws.Posts("chat.postMessage") {
			if p.Channel == "C0LEADS01" && strings.Contains(p.Blocks, "Weekly complaints digest") {
				out = append(out, p)
			}
		}
		return out
	}
	testkit.WaitFor(t, "the digest in the lead channel", func() bool { return len(digests()) >= 1 })
	// Both replicas keep polling every 100 ms; give them ten rounds to
	// post a second one if they would.
	time.Sleep(time.Second)
	got := digests()
	if len(got) != 1 {
		t.Fatalf("%d digests posted across two replicas, want exactly 1: %+v\nlog a:\n%s\nlog b:\n%s", len(got), got, a.log, b.log)
	}

	// The button's signed link opens the HTML report without the token.
	raw := strings.NewReplacer(`\u0026`, "&").Replace(got[0].Blocks)
	i := strings.Index(raw, `"url":"`)
	if i < 0 {
		t.Fatalf("the digest has no report link: %s", raw)
	}
	link, err := url.Parse(raw[i+7 : i+7+strings.Index(raw[i+7:], `"`)])
	if err != nil || link.Host != "support.example.nl" || link.Query().Get("sig") == "" {
		t.Fatalf("report link %v %v", link, err)
	}
	res, err := http.Get(b.base + link.RequestURI())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), "<svg") || !strings.Contains(string(page), "Complaints per week") {
		t.Fatalf("signed report link: %d %.300s", res.StatusCode, page)
	}
	if res, err := http.Get(b.base + "/v1/report?format=html"); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the report without token or signature: %v %v", res.StatusCode, err)
	}

	// Categories: the API refuses one that is not configured.
	code, out := a.post(`{"source_id":"digest-cat-1","customer":{"email":"klant@example.com"},"body":"Mijn pakket is niet gekomen."}`, "")
	if code != http.StatusAccepted {
		t.Fatal(code, out)
	}
	id := a.routed(out["message_id"].(string), token)["complaint_id"].(string)
	code, out = a.call("POST", "/v1/complaints/"+id+"/close", map[string]string{"resolution": "Found", "category": "weather"}, token)
	if msg, _ := out["error"].(string); code != http.StatusBadRequest || out["field"] != "category" || !strings.Contains(msg, "delivery, billing") {
		t.Errorf("close with an unknown category: %d %v", code, out)
	}
	if code, out := a.call("POST", "/v1/complaints/"+id+"/close", map[string]string{"resolution": "Found", "category": "Delivery", "prevention": "Ask the carrier for a photo"}, token); code != 200 || out["category"] != "delivery" {
		t.Errorf("close with a configured category: %d %v", code, out)
	}
}
