package daemon_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/internal/testslack"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

const slackSecret = "e2e-signing-secret-0123456789"

// What must hold, end to end with a real Redis: a complaint from the webhook
// reaches its owner as a Slack DM with buttons; the customer's e-mail on the
// same complaint lands in the same thread; the owner closes it from Slack
// with a signed modal submission; /readyz reports Slack healthy.
func TestSlackEndToEnd(t *testing.T) {
	ws := testslack.New(t, map[string]string{
		"anna.devries@example.nl": "UANNA", "chloe.bakker@example.nl": "UCHLOE", "sanne.mulder@example.nl": "USANNE",
	})
	redisURL := testredis.URL(t)
	r := start(t, redisURL, componentNotifier{}, func(c *configs.Config) {
		c.SlackBotToken, c.SlackMode, c.SlackSigningSecret, c.SlackAPIURL = "xoxb-e2e", "http", slackSecret, ws.URL()
		c.SlackCategories = []string{"delivery", "other"}
	})
	code, out := r.post(`{"source_id":"e2e-1","customer":{"name":"Mila Jansen","email":"mila@example.com"},"subject":"Broken lamp","body":"The lamp I bought flickers."}`, "")
	if code != http.StatusAccepted {
		t.Fatal(code, out)
	}
	routed := r.routed(out["message_id"].(string), "")
	id, owner := routed["complaint_id"].(string), routed["owner"].(string)
	user := map[string]string{"anna": "UANNA", "chloe": "UCHLOE", "sanne": "USANNE"}[owner]

	var root testslack.Post
	testkit.WaitFor(t, "the owner's DM", func() bool {
		for _, p := range ws.Posts("chat.postMessage") {
			if p.Channel == "D"+user && p.ThreadTS == "" && strings.Contains(p.Blocks, id) {
				root = p
				return true
			}
		}
		return false
	})
	if !strings.Contains(root.Blocks, "fmn_close") || !strings.Contains(root.Blocks, "flickers") {
		t.Fatalf("top message %s", root.Blocks)
	}

	// The customer writes again by e-mail (as the e-mail channel would queue it).
	rdb, err := queue.Connect(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	keys, _ := queue.NewKeys(r.cfg.Namespace)
	if _, _, err := queue.NewStore(rdb, keys, 0).Enqueue(context.Background(), router.Message{
		Channel: router.ChannelEmail, SourceID: "<e2e-2@example.com>", ComplaintID: id, ReceivedAt: time.Now(),
		Customer: router.Customer{Email: "mila@example.com"}, Subject: "Re: Broken lamp", Body: "It now does not turn on at all.",
	}); err != nil {
		t.Fatal(err)
	}
	inThread := func(s string) bool {
		for _, p := range ws.Posts("chat.postMessage") {
			if p.Channel == root.Channel && p.ThreadTS == root.TS && strings.Contains(p.Blocks, s) {
				return true
			}
		}
		return false
	}
	testkit.WaitFor(t, "the e-mail in the same thread", func() bool { return inThread("does not turn on") })

	// Close from Slack: the button, then the signed modal submission.
	send := func(payload any) {
		body := testslack.InteractionBody(payload)
		req, _ := http.NewRequest("POST", r.base+"/slack/interactivity", bytes.NewReader(body))
		req.Header = testslack.Sign(slackSecret, body, time.Now())
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("interactivity answered %d", resp.StatusCode)
		}
	}
	send(map[string]any{"type": "block_actions", "trigger_id": "e2e-trigger", "user": map[string]any{"id": user},
		"container": map[string]any{"channel_id": root.Channel, "message_ts": root.TS},
		"actions":   []map[string]any{{"action_id": "fmn_close", "block_id": "actions", "value": id, "type": "button", "action_ts": "1.2"}}})
	testkit.WaitFor(t, "the close modal", func() bool {
		if len(ws.Views()) == 0 && len(ws.Posts("chat.postEphemeral")) > 0 {
			t.Fatalf("refused: %+v\nlog:\n%s", ws.Posts("chat.postEphemeral"), r.log)
		}
		if strings.Contains(r.log.String(), "slack action refused") {
			t.Fatalf("log:\n%s", r.log)
		}
		return len(ws.Views()) == 1
	})
	view := ws.Views()[0].View
	send(map[string]any{"type": "view_submission", "user": map[string]any{"id": user},
		"view": map[string]any{"id": "VE2E", "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
			"state": map[string]any{"values": map[string]any{
				"close_resolution": map[string]any{"v": map[string]any{"type": "plain_text_input", "value": "Replaced the lamp"}},
				"close_category":   map[string]any{"v": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "other"}}},
			}}}})
	testkit.WaitFor(t, "the complaint closed", func() bool {
		_, c := r.call("GET", "/v1/complaints/"+id, nil, "")
		cm, _ := c["complaint"].(map[string]any)
		return cm != nil && cm["status"] == "closed" && cm["resolution"] == "Replaced the lamp"
	})
	testkit.WaitFor(t, "the closing in the thread", func() bool { return inThread("Closed") })
	// A close from Slack counts like one from the API.
	testkit.WaitFor(t, "the close from Slack counted in forgetmenot_complaints_closed_total", func() bool {
		resp, err := http.Get(r.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		metrics, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(metrics), "\nforgetmenot_complaints_closed_total 1\n")
	})
	if _, ready := r.call("GET", "/readyz", nil, ""); ready["slack"] != "ok" {
		t.Errorf("readyz %v, want slack ok", ready)
	}
}
