package daemon_test

import (
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
)

const (
	rosterBefore = `teams:
  - id: support
owners:
  - id: ann
    name: Ann
    email: ann@example.com
    teams: [support]
    capacity: 5
    active: true
  - id: ben
    name: Ben
    email: ben@example.com
    teams: [support]
    capacity: 5
    active: false
`
	rosterAfter = `teams:
  - id: support
  - id: vip
owners:
  - id: ann
    name: Ann
    email: ann@example.com
    teams: [support]
    capacity: 5
    active: true
  - id: zoe
    name: Zoe
    email: zoe@example.com
    teams: [vip]
    capacity: 5
    active: true
`
	routingBefore = "default_team: support\n"
	routingAfter  = `default_team: support
rules:
  - name: vip
    team: vip
    keywords: [platinum]
`
	rosterBroken = `teams:
  - id: support
owners:
  - id: ann
    name: Ann
    email: ann@example.com
    teams: [suport]
    capacity: 5
    active: true
`
)

// TestSIGHUPReloadsRosterAndRulesAndKeepsThemWhenBroken: after editing the
// files, SIGHUP puts them in force without a restart; a broken file is
// refused with the reason (file and line), the files in force stay, and
// routing goes on.
func TestSIGHUPReloadsRosterAndRulesAndKeepsThemWhenBroken(t *testing.T) {
	// A stray SIGHUP must never kill the test binary.
	guard := make(chan os.Signal, 8)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	dir := t.TempDir()
	owners, routing := filepath.Join(dir, "owners.yaml"), filepath.Join(dir, "routing.yaml")
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(owners, rosterBefore)
	write(routing, routingBefore)
	r := start(t, testredis.URL(t), func(c *configs.Config) { c.OwnersFile, c.RoutingFile = owners, routing })
	if code, _ := r.call("GET", "/readyz", nil, ""); code != 200 { // serving: the SIGHUP handler is in place
		t.Fatalf("readyz %d", code)
	}
	_, out := r.post(`{"source_id":"p1","customer":{"email":"p1@example.org"},"subject":"Platinum","body":"platinum member, where is my order"}`, "")
	if st := r.routed(out["message_id"].(string), ""); st["owner"] != "ann" {
		t.Fatalf("before the reload: %v", st)
	}

	hangup := func() {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	write(owners, rosterAfter)
	write(routing, routingAfter)
	hangup()
	testkit.WaitFor(t, "the reload", func() bool { return strings.Contains(r.log.String(), "roster and routing rules reloaded") })
	_, out = r.post(`{"source_id":"p2","customer":{"email":"p2@example.org"},"subject":"Platinum","body":"platinum member again"}`, "")
	if st := r.routed(out["message_id"].(string), ""); st["owner"] != "zoe" {
		t.Fatalf("after the reload a platinum complaint went to %v, want zoe", st["owner"])
	}
	if code, body := r.call("GET", "/v1/owners", nil, ""); code != 200 || !strings.Contains(toJSON(body), `"zoe"`) {
		t.Fatalf("owners after reload: %d %v", code, body)
	}

	write(owners, rosterBroken)
	hangup()
	testkit.WaitFor(t, "the refusal", func() bool { return strings.Contains(r.log.String(), "reload refused") })
	logs := r.log.String()
	if !strings.Contains(logs, "FORGETMENOT_OWNERS_FILE") || !strings.Contains(logs, `owners.yaml:4`) || !strings.Contains(logs, "suport") {
		t.Fatalf("the refusal must name the variable, file, line and problem:\n%s", logs)
	}
	_, out = r.post(`{"source_id":"p3","customer":{"email":"p3@example.org"},"subject":"Platinum","body":"platinum, third time"}`, "")
	if st := r.routed(out["message_id"].(string), ""); st["owner"] != "zoe" {
		t.Fatalf("after a refused reload routing changed: %v", st)
	}
	metrics := scrape(t, r.base, "")
	for _, want := range []string{
		"forgetmenot_config_last_reload_successful 0",
		`forgetmenot_config_reloads_total{result="ok"} 1`,
		`forgetmenot_config_reloads_total{result="failed"} 1`,
		`forgetmenot_owner_capacity{owner="zoe"} 5`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestReloadNamesOwnersWhoLeftWithOpenComplaints: nobody else will notice
// that their complaints wait for someone who is gone.
func TestReloadNamesOwnersWhoLeftWithOpenComplaints(t *testing.T) {
	dir := t.TempDir()
	owners, routing := filepath.Join(dir, "owners.yaml"), filepath.Join(dir, "routing.yaml")
	os.WriteFile(owners, []byte(strings.Replace(rosterBefore, "active: false", "active: true", 1)), 0o644)
	os.WriteFile(routing, []byte(routingBefore), 0o644)
	r := start(t, testredis.URL(t), func(c *configs.Config) { c.OwnersFile, c.RoutingFile = owners, routing })
	var bens int
	for i := 0; bens == 0 && i < 6; i++ {
		_, out := r.post(`{"source_id":"s`+string(rune('a'+i))+`","customer":{"email":"x`+string(rune('a'+i))+`@example.org"},"subject":"late","body":"my parcel is late"}`, "")
		if r.routed(out["message_id"].(string), "")["owner"] == "ben" {
			bens++
		}
	}
	if bens == 0 {
		t.Fatal("no complaint went to ben")
	}
	os.WriteFile(owners, []byte(rosterAfter), 0o644) // ben left
	if err := r.daemon.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.log.String(), "no longer on the roster still owns open complaints") || !strings.Contains(r.log.String(), "owner=ben") {
		t.Fatalf("the reload must name ben and his open complaints:\n%s", r.log)
	}
}

func scrape(t *testing.T, base, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// TestMetricsExistFromStartAndCarryNoCustomerData: the series alerts read
// are there with 0 before anything happened, and after a customer wrote in,
// no metric label nor anonymous /readyz answer carries a word of theirs.
func TestMetricsExistFromStartAndCarryNoCustomerData(t *testing.T) {
	r := start(t, testredis.URL(t), func(c *configs.Config) {
		c.ChatEnabled, c.ChatMaxMessageBytes, c.ChatRatePerMinute, c.ChatIPRatePerMinute = true, 4000, 20, 60
	})
	fresh := scrape(t, r.base, "")
	for _, want := range []string{
		`forgetmenot_messages_ingested_total{channel="webhook"} 0`,
		`forgetmenot_messages_ingested_total{channel="chat"} 0`,
		`forgetmenot_dead_lettered_total{stream="inbound"} 0`,
		`forgetmenot_dead_lettered_total{stream="outbox"} 0`,
		`forgetmenot_notifications_total{kind="assigned",result="failed"} 0`,
		`forgetmenot_notifications_total{kind="escalation",result="sent"} 0`,
		`forgetmenot_customer_messages_total{channel="chat",kind="reply",result="failed"} 0`,
		`forgetmenot_breaches_total{kind="deadline"} 0`,
		`forgetmenot_breaches_total{kind="promise"} 0`,
		`forgetmenot_complaint_rate_alerts_total 0`,
		`forgetmenot_consumers_removed_total{stream="inbound"} 0`,
		`forgetmenot_component_up{component="chat"} 1`,
		`forgetmenot_config_last_reload_successful 1`,
		`forgetmenot_redis_up 1`,
	} {
		if !strings.Contains(fresh, want) {
			t.Errorf("a fresh daemon does not export %s", want)
		}
	}
	if strings.Contains(fresh, `channel="email"`) && !strings.Contains(fresh, `forgetmenot_messages_ingested_total{channel="email"}`) {
		t.Error("e-mail intake is not configured: no ingest series for it")
	}

	const body = `{"source_id":"leak-1","customer":{"name":"Wilhelmina Secretname","email":"wilhelmina.secret@private.example"},"subject":"Subject-XYZZY","body":"Body-PLUGH my order 55-1234"}`
	code, out := r.post(body, "")
	if code != http.StatusAccepted {
		t.Fatalf("ingest: %d %v", code, out)
	}
	r.routed(out["message_id"].(string), "")
	after := scrape(t, r.base, "")
	if !strings.Contains(after, `forgetmenot_messages_ingested_total{channel="webhook"} 1`) {
		t.Fatalf("the message was not counted:\n%s", after)
	}
	req, _ := http.NewRequest("GET", r.base+"/readyz", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9") // not local: no details
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, secret := range []string{"Wilhelmina", "Secretname", "wilhelmina.secret", "private.example", "XYZZY", "PLUGH", "55-1234", out["message_id"].(string)} {
		if strings.Contains(after, secret) {
			t.Errorf("/metrics carries customer data %q", secret)
		}
		if strings.Contains(string(ready), secret) {
			t.Errorf("/readyz carries customer data %q", secret)
		}
	}
}
