package daemon_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/router"
)

// okSender accepts every customer message and remembers it.
type okSender struct {
	mu   sync.Mutex
	sent []router.CustomerMessage
}

func (s *okSender) Send(_ context.Context, m router.CustomerMessage) (router.Sent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, m)
	return router.Sent{Via: "webhook", Ref: m.ID}, nil
}

func (s *okSender) of(kind router.CustomerMessageKind) []router.CustomerMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []router.CustomerMessage
	for _, m := range s.sent {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

func TestTwoReplicasFireEachTimerOnceAndTheLeadIsAlerted(t *testing.T) {
	url := testredis.URL(t)
	ns := testredis.Namespace()
	fast := func(c *configs.Config) {
		c.Namespace = ns
		c.TargetsFile = "testdata/targets_fast.yaml"
		c.TimerPoll = configs.Duration(100 * time.Millisecond)
	}
	a, b := start(t, url, fast), start(t, url, fast)
	code, out := a.post(`{"source_id":"slow-1","customer":{"email":"wacht@voorbeeld.nl"},"body":"Niemand reageert op mijn klacht over de levering."}`, "")
	if code != http.StatusAccepted {
		t.Fatal(code, out)
	}
	st := a.routed(out["message_id"].(string), "")
	owner := st["owner"].(string)
	escalations := func() int { return a.notes.count(router.NotifyEscalation) + b.notes.count(router.NotifyEscalation) }
	testkit.WaitFor(t, "the breach escalated", func() bool { return escalations() >= 1 })
	// Nothing else is due for an hour: whatever fired has fired.
	if n := a.notes.count(router.NotifyReminder) + b.notes.count(router.NotifyReminder); n != 2 {
		t.Errorf("%d reminders across both replicas, want 2 (the reminder and the breach notice to the owner)", n)
	}
	if n := escalations(); n != 1 {
		t.Errorf("%d escalations, want exactly 1", n)
	}
	_, detail := a.call("GET", "/v1/complaints/"+st["complaint_id"].(string), nil, "")
	c := detail["complaint"].(map[string]any)
	if c["owner"] != owner || len(c["breaches"].([]any)) != 1 {
		t.Errorf("after the breach: owner %v (was %s), breaches %v", c["owner"], owner, c["breaches"])
	}
}

func TestAccountabilityAPI(t *testing.T) {
	const token = "api-token-for-tests"
	sender := &okSender{}
	r := start(t, testredis.URL(t), func(c *configs.Config) {
		c.APIToken = token
		c.TargetsFile = "../../configs/targets.yaml"
		c.PublicURL, c.CSATSecret = "https://support.example.nl", "csat-secret-for-tests"
	}, withSender{router.ChannelWebhook, sender})
	_, out := r.post(`{"source_id":"api-1","customer":{"email":"klant@example.co.uk"},"body":"My parcel arrived damaged, the box was crushed."}`, "")
	st := r.routed(out["message_id"].(string), token)
	id := st["complaint_id"].(string)
	_, detail := r.call("GET", "/v1/complaints/"+id, nil, token)
	if c := detail["complaint"].(map[string]any); c["respond_by"] == nil || c["resolve_by"] == nil || len(c["timers"].([]any)) == 0 {
		t.Fatalf("a new complaint must have its deadlines and timers: %v", c)
	}

	// Away and back.
	if code, out := r.call("POST", "/v1/owners/anna/away", map[string]string{"until": "2099-01-01", "cover": "bas"}, ""); code != http.StatusUnauthorized {
		t.Fatalf("away without token: %d %v", code, out)
	}
	if code, out := r.call("POST", "/v1/owners/anna/away", map[string]string{"until": "someday"}, token); code != 400 || out["field"] != "until" {
		t.Fatalf("away with a bad date: %d %v", code, out)
	}
	for path, body := range map[string]map[string]string{"/v1/owners/nobody/away": {"until": "2099-01-01"}, "/v1/owners/nobody/back": nil} {
		if code, out := r.call("POST", path, body, token); code != http.StatusNotFound {
			t.Errorf("%s: %d %v, want 404 for an owner not on the roster", path, code, out)
		}
	}
	// A date is the start of that day where the owner works, as in the
	// roster: anna's calendar is in Amsterdam.
	if code, out := r.call("POST", "/v1/owners/anna/away", map[string]string{"until": "2099-01-01", "cover": "bas", "actor": "sanne"}, token); code != 200 || out["cover"] != "bas" || out["until"] != "2098-12-31T23:00:00Z" {
		t.Fatalf("away: %d %v (want until midnight in Amsterdam)", code, out)
	}
	_, owners := r.call("GET", "/v1/owners", nil, token)
	awayShown := false
	for _, o := range owners["owners"].([]any) {
		o := o.(map[string]any)
		if o["id"] == "anna" && o["away"] != nil {
			awayShown = true
		}
	}
	if !awayShown {
		t.Errorf("owners list should show anna away: %v", owners)
	}
	if code, out := r.call("POST", "/v1/owners/anna/back", nil, token); code != 200 {
		t.Fatalf("back: %d %v", code, out)
	}

	// Close: the customer gets the satisfaction question with signed links.
	if code, out := r.call("POST", "/v1/complaints/"+id+"/close", map[string]string{"resolution": "Replacement sent", "category": "shipping-damage"}, token); code != 200 {
		t.Fatalf("close: %d %v", code, out)
	}
	testkit.WaitFor(t, "the satisfaction question sent", func() bool { return len(sender.of(router.ToCustomerCSAT)) == 1 })
	body := sender.of(router.ToCustomerCSAT)[0].Body
	var link string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "4 - ") {
			link = line[strings.Index(line, "https://"):]
		}
	}
	u, err := url.Parse(link)
	if err != nil || link == "" {
		t.Fatalf("no link for 4 in %q", body)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(r.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(path string) (int, string) {
		resp, err := http.Post(r.base+path, "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// A mail scanner fetching the link records nothing; the page it gets
	// submits the answer itself in a person's browser.
	if code, page := get(u.RequestURI()); code != 200 || !strings.Contains(page, `method="post"`) || !strings.Contains(page, "Satisfied") {
		t.Fatalf("csat link: %d %s", code, page)
	}
	_, detail = r.call("GET", "/v1/complaints/"+id, nil, token)
	if c := detail["complaint"].(map[string]any); c["csat"] != nil && c["csat"] != 0.0 {
		t.Fatalf("fetching the link recorded csat = %v; only the submitted answer may", c["csat"])
	}
	if code, page := post(u.RequestURI()); code != 200 || !strings.Contains(page, "Thank you") {
		t.Fatalf("csat answer: %d %s", code, page)
	}
	if code, _ := post(u.RequestURI()); code != 200 { // a second click is fine and changes nothing
		t.Fatalf("second click: %d", code)
	}
	if code, _ := post(strings.Replace(u.RequestURI(), "/4?", "/5?", 1)); code != 400 {
		t.Fatalf("a link with its score changed must be refused: %d", code)
	}
	_, detail = r.call("GET", "/v1/complaints/"+id, nil, token)
	if c := detail["complaint"].(map[string]any); c["csat"] != 4.0 {
		t.Errorf("csat = %v, want 4", c["csat"])
	}

	// Volume and report.
	week := router.ISOWeek(time.Now())
	if code, out := r.call("POST", "/v1/volume", map[string]any{"period": "2026-48", "count": 10}, token); code != 400 || out["field"] != "period" {
		t.Fatalf("bad period: %d %v", code, out)
	}
	if code, out := r.call("POST", "/v1/volume", map[string]any{"period": week, "count": 50}, token); code != 200 || out["alerted"] != 1.0 {
		t.Fatalf("volume: %d %v, want it to say it raised one alert", code, out)
	}
	// 1 complaint on 50 orders is 2 %, over the shipped 1 % threshold: the
	// lead is alerted once.
	testkit.WaitFor(t, "the complaint-rate alert", func() bool { return r.notes.count(router.NotifyComplaintRate) == 1 })
	code, rep := r.call("GET", "/v1/reports", nil, token)
	if code != 200 || rep["complaints"] != 1.0 || rep["csat"].(map[string]any)["responses"] != 1.0 {
		t.Fatalf("report: %d %v", code, rep)
	}
	if rates := rep["rates"].([]any); len(rates) != 1 || rates[0].(map[string]any)["alert"] != true {
		t.Errorf("rates = %v", rates)
	}
	for format, want := range map[string]string{"csv": "root_cause,shipping-damage,1", "text": "Top root causes:"} {
		req, _ := http.NewRequest("GET", r.base+"/v1/reports?format="+format, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("report as %s: %d\n%s", format, resp.StatusCode, b)
		}
	}
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The alert the posted volume raised is counted like the scheduler's.
	for _, want := range []string{`forgetmenot_open_complaints{owner="anna"} 0`, `forgetmenot_overdue_complaints{owner="bas"} 0`, `forgetmenot_promises_pending 0`, `forgetmenot_complaint_rate_alerts_total 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
