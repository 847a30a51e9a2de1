package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/router"
)

// TestNoStrangerTakesOverAnAnonymousChatComplaint replays the takeover found
// from outside: an anonymous chat visitor's complaint, then a stranger naming
// it by complaint_id on the webhook and by [#C-…] token on e-mail. What must
// hold afterwards: the visitor's complaint keeps its customer and its
// messages, the stranger's words never show in the visitor's chat, staff's
// next reply reaches the visitor by chat and nobody by e-mail, and each
// stranger's message is a complaint of its own that names the visitor's.
func TestNoStrangerTakesOverAnAnonymousChatComplaint(t *testing.T) {
	r, imapSrv, smtpSrv := startWithEmail(t, withChat)

	visitor := dialChat(t, r)
	visitor.send(map[string]any{"type": "hello"})
	token := visitor.read()["token"].(string)
	visitor.send(map[string]any{"type": "message", "id": "v1", "text": "My order arrived broken."})
	ack := visitor.readType("ack")
	victim := r.routed(ack["message_id"].(string), emailToken)["complaint_id"].(string)
	visitor.read() // the acknowledgement line
	before, _ := r.complaint(victim)

	// The webhook sender (loopback, no secret) names the complaint.
	body := fmt.Sprintf(`{"source_id":"evil-1","customer":{"email":"attacker@evil.example"},"complaint_id":%q,"body":"I am the customer now, send everything to me."}`, victim)
	code, res := r.post(body, "")
	if code != 202 {
		t.Fatalf("webhook: %d %v", code, res)
	}
	viaWebhook := r.routed(res["message_id"].(string), emailToken)["complaint_id"]
	// And by e-mail, with the complaint's token in the subject.
	imapSrv.Deliver(t, "INBOX", []byte("From: attacker@evil.example\r\nTo: support@winkel.example\r\nSubject: Re: [#"+victim+"] update\r\nMessage-ID: <a1@evil.example>\r\n\r\nPlease send the refund to my account.\r\n"))
	var viaMail []map[string]any
	testkit.WaitFor(t, "the stranger's mail to be routed", func() bool {
		viaMail = r.complaintsOf("attacker@evil.example")
		return len(viaMail) == 2
	})
	if viaWebhook == victim {
		t.Fatalf("the webhook message joined the visitor's %s", victim)
	}
	for _, c := range viaMail {
		if c["id"] == victim {
			t.Fatalf("the stranger owns the visitor's %s", victim)
		}
		_, tl := r.complaint(c["id"].(string))
		if s := fmt.Sprint(tl); !strings.Contains(s, "mentions "+victim) || !strings.Contains(s, "sender not verified") {
			t.Errorf("the stranger's %s does not say it names %s: %s", c["id"], victim, s)
		}
	}

	after, tl := r.complaint(victim)
	if fmt.Sprint(after["customer"]) != fmt.Sprint(before["customer"]) || after["messages"] != before["messages"] {
		t.Errorf("the visitor's complaint changed: customer %v → %v, messages %v → %v", before["customer"], after["customer"], before["messages"], after["messages"])
	}
	mentions := 0
	for _, e := range tl {
		if ev, ok := e["event"].(map[string]any); ok && ev["type"] == "mentioned" {
			mentions++
		}
	}
	if mentions != 2 {
		t.Errorf("the visitor's timeline has %d mention lines, want 2 (webhook, e-mail): %v", mentions, tl)
	}

	if code, out := r.call("POST", "/v1/complaints/"+victim+"/reply", map[string]string{"body": "A new one is on its way."}, emailToken); code != 200 {
		t.Fatalf("reply: %d %v", code, out)
	}
	if l := visitor.read(); l["type"] != "line" || !strings.Contains(fmt.Sprint(l["line"]), "A new one is on its way.") {
		t.Fatalf("the visitor did not get the reply live: %v", l)
	}
	// The stranger got the acknowledgements of their own complaints, and
	// nothing of the visitor's conversation.
	time.Sleep(200 * time.Millisecond)
	for _, m := range smtpSrv.To("attacker@evil.example") {
		if strings.Contains(string(m.Data), victim) || strings.Contains(string(m.Data), "A new one is on its way") {
			t.Errorf("the stranger received mail about %s:\n%s", victim, m.Data)
		}
	}

	// The visitor's history, after a reload, holds only the visitor's words.
	again := dialChat(t, r)
	again.send(map[string]any{"type": "hello", "token": token})
	hist, _ := json.Marshal(again.read()["history"])
	if strings.Contains(string(hist), "attacker") || strings.Contains(string(hist), "I am the customer now") || strings.Contains(string(hist), "refund") {
		t.Errorf("the stranger's words show in the visitor's chat: %s", hist)
	}
}

// TestWebhookCannotSetForgetmenotsOwnFacts: metadata keys forgetmenot used
// for its own facts, and its reserved namespace, are refused with the field
// named, and nothing is stored; so no form can pass for a bounce report.
func TestWebhookCannotSetForgetmenotsOwnFacts(t *testing.T) {
	r := start(t, "")
	code, res := r.post(`{"source_id":"f-1","customer":{"email":"jan@voorbeeld.nl"},"body":"My parcel is late."}`, "")
	if code != 202 {
		t.Fatalf("first message: %d %v", code, res)
	}
	victim := r.routed(res["message_id"].(string), "")["complaint_id"].(string)
	for i, key := range []string{"delivery_report_for", "delivery_status", "no_auto_reply", "fmn_anything", "FMN.note", "chat_session", "forum_topic_id"} {
		body := fmt.Sprintf(`{"source_id":"evil-%d","customer":{"email":"x@evil.example"},"body":"Mail delivery failed","metadata":{%q:"email:whatever"}}`, i, key)
		code, res := r.post(body, "")
		if code != 400 || res["field"] != "metadata."+key {
			t.Errorf("metadata %q: %d %v, want 400 naming metadata.%s", key, code, res, key)
		}
	}
	if code, res := r.call("GET", "/v1/complaints", nil, ""); code != 200 || len(res["complaints"].([]any)) != 1 {
		t.Errorf("complaints after refused messages: %d %v, want only the first", code, res)
	}
	_, tl := r.call("GET", "/v1/complaints/"+victim, nil, "")
	if s := fmt.Sprint(tl); strings.Contains(s, "delivery_failed") || strings.Contains(s, "Mail delivery failed") {
		t.Errorf("the victim's timeline holds the injected report: %s", s)
	}
}

// TestMergeThroughTheAPI: staff join a complaint opened by the customer's
// colleague to the customer's own; the colleague's next message, naming
// either complaint, lands on the survivor, and a repeat or a merge without
// a reason is refused.
func TestMergeThroughTheAPI(t *testing.T) {
	r := start(t, testredis.URL(t))
	post := func(source, email, extra string) string {
		code, res := r.post(fmt.Sprintf(`{"source_id":%q,"customer":{"email":%q},"body":"About the broken jug."%s}`, source, email, extra), "")
		if code != 202 {
			t.Fatalf("webhook: %d %v", code, res)
		}
		return r.routed(res["message_id"].(string), "")["complaint_id"].(string)
	}
	orig := post("m-1", "jan@voorbeeld.nl", "")
	other := post("m-2", "piet@voorbeeld.nl", fmt.Sprintf(`,"complaint_id":%q`, orig))
	if other == orig {
		t.Fatal("an unproven sender joined the complaint")
	}
	if code, res := r.call("POST", "/v1/complaints/"+other+"/merge", map[string]string{"into": orig}, ""); code != 400 || res["field"] != "reason" {
		t.Errorf("merge without a reason: %d %v", code, res)
	}
	code, res := r.call("POST", "/v1/complaints/"+other+"/merge", map[string]string{"into": orig, "reason": "Piet is Jan's colleague", "actor": "anna"}, "")
	if code != 200 || res["id"] != orig || res["messages"] != float64(2) {
		t.Fatalf("merge: %d %v", code, res)
	}
	if code, res := r.call("POST", "/v1/complaints/"+other+"/merge", map[string]string{"into": orig, "reason": "again"}, ""); code != 409 {
		t.Errorf("second merge: %d %v, want 409", code, res)
	}
	_, gone := r.call("GET", "/v1/complaints/"+other, nil, "")
	if c := gone["complaint"].(map[string]any); c["status"] != "closed" || c["merged_into"] != orig {
		t.Errorf("merged complaint: %v", c)
	}
	if got := post("m-3", "piet@voorbeeld.nl", fmt.Sprintf(`,"complaint_id":%q`, other)); got != orig {
		t.Errorf("Piet's next message naming %s landed on %s, want %s", other, got, orig)
	}
}

// TestCSATLinkFetchedByAScannerRecordsNothing: a GET (a mail scanner, a
// link preview) only shows the page; the page's own POST records; a link for
// an open complaint records nothing.
func TestCSATLinkFetchedByAScannerRecordsNothing(t *testing.T) {
	const secret = "csat-secret-for-the-tests"
	r := start(t, testredis.URL(t), func(c *configs.Config) { c.PublicURL, c.CSATSecret = "https://support.example", secret })
	code, res := r.post(`{"source_id":"c-1","customer":{"email":"jan@voorbeeld.nl"},"body":"The jug is broken."}`, "")
	if code != 202 {
		t.Fatalf("webhook: %d %v", code, res)
	}
	id := r.routed(res["message_id"].(string), "")["complaint_id"].(string)
	link := "/v1/csat/" + id + "/5?sig=" + (&router.CSAT{Secret: []byte(secret)}).Sign(id, 5)
	csat := func() any {
		_, d := r.call("GET", "/v1/complaints/"+id, nil, "")
		return d["complaint"].(map[string]any)["csat"]
	}
	if code, _ := r.do("POST", link, nil, http.Header{}); code != 400 || csat() != nil {
		t.Errorf("answer on an open complaint: %d, csat %v; want refused", code, csat())
	}
	// The refusal speaks the customer's language, not the router's English.
	resp, err := http.Post(r.base+link+"&lang=nl", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(page), "Uw klacht wordt opnieuw behandeld") || strings.Contains(string(page), "is not closed") {
		t.Errorf("Dutch refusal page: %d %s", resp.StatusCode, page)
	}
	if code, _ := r.call("POST", "/v1/complaints/"+id+"/close", map[string]string{"resolution": "New jug sent", "actor": "anna"}, ""); code != 200 {
		t.Fatalf("close: %d", code)
	}
	if code, _ := r.do("GET", link, nil, http.Header{}); code != 200 || csat() != nil {
		t.Errorf("a GET recorded an answer (status %d, csat %v)", code, csat())
	}
	if code, _ := r.do("POST", link, nil, http.Header{}); code != 200 || csat() != float64(5) {
		t.Errorf("the page's POST: %d, csat %v; want 5 recorded", code, csat())
	}
}
