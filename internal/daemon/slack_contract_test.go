package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/internal/testslack"
)

// The shipped roster's Slack users, found by e-mail.
var rosterSlack = map[string]string{
	"anna.devries@example.nl": "UANNA", "bas.jansen@example.nl": "UBAS", "chloe.bakker@example.nl": "UCHLOE",
	"joost.visser@example.nl": "UJOOST", "fatima.elamrani@example.nl": "UFATIMA", "sanne.mulder@example.nl": "USANNE",
}

var slackOf = map[string]string{"anna": "UANNA", "bas": "UBAS", "chloe": "UCHLOE", "joost": "UJOOST", "fatima": "UFATIMA", "sanne": "USANNE"}

// slackDaemon runs the daemon against the contract-enforcing Slack double,
// with a lead channel and SMTP (customers' mail and the e-mail fallback).
func slackDaemon(t *testing.T, more ...func(*configs.Config)) (*running, *testslack.Workspace, *emailtest.SMTP) {
	t.Helper()
	ws := testslack.New(t, rosterSlack)
	ws.AddChannel("CLEAD")
	mail := emailtest.StartSMTP(t, nil)
	r := start(t, testredis.URL(t), componentNotifier{}, func(c *configs.Config) {
		c.SlackBotToken, c.SlackMode, c.SlackSigningSecret, c.SlackAPIURL = "xoxb-e2e", "http", slackSecret, ws.URL()
		c.SlackCategories = []string{"delivery", "quality", "other"}
		c.SlackLeadChannel = "CLEAD"
		c.SMTPHost, c.SMTPPort, c.SMTPTLS = mail.Host, mail.Port, "none"
		c.SMTPFrom = "Support <support@winkel.example>"
		c.EmailTemplates = "../../configs/email-templates"
		c.PublicURL, c.CSATSecret = "https://support.winkel.example", "csat-secret-for-the-tests"
		for _, m := range more {
			m(c)
		}
	})
	return r, ws, mail
}

// slackSend posts a signed Slack request to the daemon.
func (r *running) slackSend(path, contentType string, body []byte) []byte {
	r.t.Helper()
	req, _ := http.NewRequest("POST", r.base+path, bytes.NewReader(body))
	req.Header = testslack.Sign(slackSecret, body, time.Now())
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("%s answered %d %s", path, resp.StatusCode, out)
	}
	return out
}

func (r *running) click(user, action, id string) {
	r.slackSend("/slack/interactivity", "application/x-www-form-urlencoded", testslack.InteractionBody(map[string]any{
		"type": "block_actions", "trigger_id": "trig-" + action + "-" + user + "-" + fmt.Sprint(time.Now().UnixNano()), "user": map[string]any{"id": user},
		"container": map[string]any{"channel_id": "D" + user},
		"actions":   []map[string]any{{"action_id": action, "block_id": "actions", "value": id, "type": "button", "action_ts": fmt.Sprint(time.Now().UnixNano())}},
	}))
}

func (r *running) submitView(user string, view testslack.View, values map[string]any) []byte {
	state := map[string]any{}
	for block, v := range values {
		state[block] = map[string]any{"v": v}
	}
	return r.slackSend("/slack/interactivity", "application/x-www-form-urlencoded", testslack.InteractionBody(map[string]any{
		"type": "view_submission", "user": map[string]any{"id": user},
		"view": map[string]any{"id": "V-" + fmt.Sprint(time.Now().UnixNano()), "callback_id": view.View["callback_id"], "private_metadata": view.View["private_metadata"],
			"state": map[string]any{"values": state}},
	}))
}

func (r *running) command(user, text string) string {
	body := []byte(url.Values{"command": {"/complaints"}, "text": {text}, "user_id": {user}, "channel_id": {"D" + user}}.Encode())
	return string(r.slackSend("/slack/commands", "application/x-www-form-urlencoded", body))
}

func (r *running) complaintJSON(id string) (map[string]any, string) {
	_, c := r.call("GET", "/v1/complaints/"+id, nil, "")
	raw, _ := json.Marshal(c)
	cm, _ := c["complaint"].(map[string]any)
	return cm, string(raw)
}

func (r *running) awayOf(owner string) map[string]any {
	_, owners := r.call("GET", "/v1/owners", nil, "")
	for _, o := range owners["owners"].([]any) {
		o := o.(map[string]any)
		if o["id"] == owner {
			a, _ := o["away"].(map[string]any)
			return a
		}
	}
	r.t.Fatalf("no owner %s in GET /v1/owners", owner)
	return nil
}

func openedView(t *testing.T, ws *testslack.Workspace, n int, callback string) testslack.View {
	t.Helper()
	testkit.WaitFor(t, callback+" modal", func() bool { return len(ws.Views()) >= n })
	v := ws.Views()[n-1]
	if v.View["callback_id"] != callback {
		t.Fatalf("modal %d is %v, want %s", n, v.View["callback_id"], callback)
	}
	return v
}

// What must hold, end to end through the double that refuses what Slack
// refuses: a 150-character unbroken Japanese subject with a 5,000-"&" body
// reaches its owner; the Reply, Promise, Reassign and Close modals open, are
// submitted and applied; App Home is published and refreshed after the
// close; away and back from Slack show in GET /v1/owners.
func TestSlackContractEndToEnd(t *testing.T) {
	r, ws, mail := slackDaemon(t)
	subject := strings.Repeat("配送", 75)
	body, _ := json.Marshal(map[string]any{"source_id": "jp-1", "customer": map[string]any{"name": "Sato Hana", "email": "hana@example.com"},
		"subject": subject, "body": strings.Repeat("&", 5000)})
	code, out := r.post(string(body), "")
	if code != http.StatusAccepted {
		t.Fatal(code, out)
	}
	routed := r.routed(out["message_id"].(string), "")
	id, owner := routed["complaint_id"].(string), routed["owner"].(string)
	user := slackOf[owner]
	testkit.WaitFor(t, "the owner's DM", func() bool {
		for _, p := range ws.Posts("chat.postMessage") {
			if p.Channel == "D"+user && p.ThreadTS == "" && strings.Contains(p.Blocks, id) && strings.Contains(p.Blocks, "fmn_close") {
				return true
			}
		}
		return false
	})
	if refused := ws.Refused(); len(refused) > 0 {
		t.Fatalf("Slack refused: %+v", refused)
	}

	// App Home of the owner.
	home, _ := json.Marshal(map[string]any{"type": "event_callback", "event_id": "EvHome1", "team_id": "T1", "api_app_id": "A1",
		"event": map[string]any{"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": "home"}})
	r.slackSend("/slack/events", "application/json", home)
	testkit.WaitFor(t, "the App Home", func() bool {
		p := ws.Published(user)
		return len(p) > 0 && strings.Contains(fmt.Sprint(p[len(p)-1].View), id)
	})

	// Reply.
	r.click(user, "fmn_reply", id)
	v := openedView(t, ws, 1, "fmn_reply")
	r.submitView(user, v, map[string]any{"reply_body": map[string]any{"type": "plain_text_input", "value": "We are sending a new one today."}})
	testkit.WaitFor(t, "the reply mailed to the customer", func() bool {
		for _, m := range mail.To("hana@example.com") {
			if strings.Contains(string(m.Data), "sending a new one today") {
				return true
			}
		}
		return false
	})
	// Promise.
	r.click(user, "fmn_promise", id)
	v = openedView(t, ws, 2, "fmn_promise")
	by := time.Now().Add(26 * time.Hour).Truncate(time.Minute)
	r.submitView(user, v, map[string]any{
		"promise_by":   map[string]any{"type": "datetimepicker", "selected_date_time": by.Unix()},
		"promise_note": map[string]any{"type": "plain_text_input", "value": "Check with the courier"},
	})
	testkit.WaitFor(t, "the promise", func() bool {
		c, _ := r.complaintJSON(id)
		return c != nil && c["promised_by"] != nil && c["promised_by"] != ""
	})
	// Reassign, to the first colleague offered.
	r.click(user, "fmn_reassign", id)
	v = openedView(t, ws, 3, "fmn_reassign")
	raw, _ := json.Marshal(v.View)
	var modal struct {
		Blocks []struct {
			BlockID string `json:"block_id"`
			Element struct {
				Options []struct {
					Value string `json:"value"`
				} `json:"options"`
			} `json:"element"`
		} `json:"blocks"`
	}
	_ = json.Unmarshal(raw, &modal)
	to := ""
	for _, b := range modal.Blocks {
		if b.BlockID == "reassign_owner" && len(b.Element.Options) > 0 {
			to = b.Element.Options[0].Value
		}
	}
	if to == "" || slackOf[to] == "" {
		t.Fatalf("no colleague offered in %s", raw)
	}
	r.submitView(user, v, map[string]any{
		"reassign_owner":  map[string]any{"type": "static_select", "selected_option": map[string]any{"value": to}},
		"reassign_reason": map[string]any{"type": "plain_text_input", "value": "Knows the courier"},
	})
	testkit.WaitFor(t, "the reassignment", func() bool { c, _ := r.complaintJSON(id); return c != nil && c["owner"] == to })
	// The new owner opens their Home, then closes from Slack.
	toUser := slackOf[to]
	home, _ = json.Marshal(map[string]any{"type": "event_callback", "event_id": "EvHome2", "team_id": "T1", "api_app_id": "A1",
		"event": map[string]any{"type": "app_home_opened", "user": toUser, "channel": "D" + toUser, "tab": "home"}})
	r.slackSend("/slack/events", "application/json", home)
	testkit.WaitFor(t, "the new owner's App Home", func() bool {
		p := ws.Published(toUser)
		return len(p) > 0 && strings.Contains(fmt.Sprint(p[len(p)-1].View), id)
	})
	published := len(ws.Published(toUser))
	r.click(toUser, "fmn_close", id)
	v = openedView(t, ws, 4, "fmn_close")
	r.submitView(toUser, v, map[string]any{
		"close_resolution": map[string]any{"type": "plain_text_input", "value": "Replaced the parcel"},
		"close_category":   map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "delivery"}},
		"close_prevention": map[string]any{"type": "plain_text_input", "value": "Sturdier boxes for glass"},
	})
	testkit.WaitFor(t, "the close with its prevention note", func() bool {
		c, _ := r.complaintJSON(id)
		return c != nil && c["status"] == "closed" && c["prevention"] == "Sturdier boxes for glass" && c["category"] == "delivery"
	})
	testkit.WaitFor(t, "the App Home refreshed without the closed complaint", func() bool {
		p := ws.Published(toUser)
		return len(p) > published && !strings.Contains(fmt.Sprint(p[len(p)-1].View), id+"*")
	})

	// Away and back from Slack, visible in the API.
	until := time.Now().Add(5 * 24 * time.Hour).UTC().Format(time.DateOnly)
	if out := r.command("UANNA", "away "+until+" chloe"); !strings.Contains(out, "You are away until") {
		t.Fatalf("/complaints away answered %s", out)
	}
	if a := r.awayOf("anna"); a == nil || a["cover"] != "chloe" || !strings.HasPrefix(fmt.Sprint(a["until"]), until) {
		t.Fatalf("GET /v1/owners shows anna away as %v, want until %s covered by chloe", a, until)
	}
	if out := r.command("UANNA", "back"); !strings.Contains(out, "Welcome back") {
		t.Fatalf("/complaints back answered %s", out)
	}
	if a := r.awayOf("anna"); a != nil {
		t.Fatalf("GET /v1/owners shows anna still away: %v", a)
	}
	if refused := ws.Refused(); len(refused) > 0 {
		t.Fatalf("Slack refused: %+v", refused)
	}
}

// What must hold, end to end: a notification Slack refuses with
// invalid_blocks still reaches the owner as a plain-text DM, recorded on the
// timeline; when every route fails (Slack, the lead channel, the owner's
// e-mail) it is dead-lettered, on the timeline, counted, and announced in
// the lead channel. The alarm is raised even when the fallbacks used up the
// delivery's time: here 2 s (half of RECLAIM_IDLE), while Slack's pace of one
// post per second per channel alone holds the last fallbacks back that long.
func TestSlackNeverSilentEndToEnd(t *testing.T) {
	r, ws, mail := slackDaemon(t, func(c *configs.Config) { c.ReclaimIdle = configs.Duration(4 * time.Second) })
	ws.Fail("chat.postMessage", 1, 0, "invalid_blocks")
	code, out := r.post(`{"source_id":"ns-1","customer":{"name":"Mila Jansen","email":"mila@example.com"},"subject":"Broken lamp","body":"It flickers."}`, "")
	if code != http.StatusAccepted {
		t.Fatal(code, out)
	}
	routed := r.routed(out["message_id"].(string), "")
	id, user := routed["complaint_id"].(string), slackOf[routed["owner"].(string)]
	testkit.WaitFor(t, "the plain-text fallback in the owner's DM", func() bool {
		for _, p := range ws.Posts("chat.postMessage") {
			if p.Channel == "D"+user && p.Blocks == "" && strings.Contains(p.Text, id) && strings.Contains(p.Text, "https://support.winkel.example/v1/complaints/"+id) {
				return true
			}
		}
		return false
	})
	testkit.WaitFor(t, "the route on the timeline", func() bool {
		_, raw := r.complaintJSON(id)
		return strings.Contains(raw, `"notification_rerouted"`) && strings.Contains(raw, `"slack_plain"`)
	})

	// Every route fails: the top message, the plain DM and the lead channel
	// are refused, and the mail server refuses the owners' addresses.
	mail.RejectWith(func(to string) error {
		if strings.HasSuffix(to, "@example.nl") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}
		}
		return nil
	})
	ws.Fail("chat.postMessage", 3, 0, "invalid_blocks")
	code, out = r.post(`{"source_id":"ns-2","customer":{"name":"Joe","email":"joe@example.com"},"subject":"Refund","body":"Where is my refund?"}`, "")
	if code != http.StatusAccepted {
		t.Fatal(code, out)
	}
	id2 := r.routed(out["message_id"].(string), "")["complaint_id"].(string)
	testkit.WaitFor(t, "the dead letter", func() bool {
		_, dl := r.call("GET", "/v1/deadletters", nil, "")
		letters, _ := dl["dead_letters"].([]any)
		return len(letters) == 1 && strings.Contains(fmt.Sprint(letters[0]), id2)
	})
	testkit.WaitFor(t, "the failure on the timeline", func() bool {
		_, raw := r.complaintJSON(id2)
		return strings.Contains(raw, `"notification_failed"`) && strings.Contains(raw, "no route reached")
	})
	testkit.WaitFor(t, "the undelivered alert in the lead channel", func() bool {
		for _, p := range ws.Posts("chat.postMessage") {
			if p.Channel == "CLEAD" && strings.Contains(p.Text, "Not delivered") && strings.Contains(p.Text, id2) {
				return true
			}
		}
		return false
	})
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `forgetmenot_notifications_undelivered_total{kind="assigned"} 1`) ||
		!strings.Contains(string(metrics), `forgetmenot_slack_fallback_total{route="slack_plain"} 1`) {
		t.Errorf("metrics lack the fallback and the undelivered alert:\n%s", grepLines(string(metrics), "fallback", "undelivered"))
	}
}

func grepLines(s string, words ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
