package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/cli"
	"github.com/forgetmenot/forgetmenot/internal/daemon"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
)

func TestMain(m *testing.M) { os.Exit(testredis.Main(m)) }

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = cli.Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// startDaemon runs a daemon on real Redis and points the CLI at it.
func startDaemon(t *testing.T) string {
	t.Helper()
	cfg := configs.Config{
		RedisURL: testredis.URL(t), Namespace: testredis.Namespace(), HTTPAddr: "127.0.0.1:0",
		OwnersFile: "../../configs/owners.yaml", RoutingFile: "../../configs/routing.yaml",
		ReopenWindow: configs.Duration(24 * time.Hour), MaxMessageBytes: 1 << 20, RouterWorkers: 1, DeliveryWorkers: 1,
		MaxAttempts: 3, ReclaimIdle: configs.Duration(5 * time.Second), ShutdownTimeout: configs.Duration(5 * time.Second),
		LogLevel: "error", LogFormat: "text", APIToken: "cli-test-token",
		Categories: []string{"delivery", "lost-parcel"},
	}
	d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + d.Addr()
	t.Setenv("FORGETMENOT_API_URL", base)
	t.Setenv("FORGETMENOT_API_TOKEN", "cli-test-token")
	return base
}

func ingest(t *testing.T, base, body string) string {
	t.Helper()
	resp, err := http.Post(base+"/v1/messages", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		MessageID string `json:"message_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", base+"/v1/messages/"+out.MessageID, nil)
		req.Header.Set("Authorization", "Bearer cli-test-token")
		r, err := http.DefaultClient.Do(req)
		if err == nil {
			var st struct {
				ComplaintID string `json:"complaint_id"`
			}
			_ = json.NewDecoder(r.Body).Decode(&st)
			r.Body.Close()
			if st.ComplaintID != "" {
				return st.ComplaintID
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("message not routed")
	return ""
}

func TestComplaintWorkflowFromTheCommandLine(t *testing.T) {
	base := startDaemon(t)
	id := ingest(t, base, `{"source_id":"cli-1","customer":{"name":"Jan","email":"jan@voorbeeld.nl"},"subject":"Pakket kwijt","body":"Mijn pakket is niet aangekomen, wat nu?"}`)

	code, out, errOut := run("complaints", "list", "--status", "open")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "Pakket kwijt") {
		t.Fatalf("list: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run("complaints", "show", id)
	if code != 0 || !strings.Contains(out, "Timeline:") || !strings.Contains(out, "Mijn pakket is niet aangekomen") || !strings.Contains(out, "assigned by router") {
		t.Fatalf("show: %d\n%s", code, out)
	}
	code, out, _ = run("complaints", "show", id, "--json")
	var detail struct {
		Complaint struct{ Owner string } `json:"complaint"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &detail) != nil || detail.Complaint.Owner == "" {
		t.Fatalf("show --json: %d\n%s", code, out)
	}
	to := "bas"
	if detail.Complaint.Owner == "bas" {
		to = "anna"
	}
	code, _, errOut = run("complaints", "reassign", id, "--to", to)
	if code != 2 || !strings.Contains(errOut, "reason") {
		t.Fatalf("reassign without reason: %d %q, want exit 2 (usage) naming the reason", code, errOut)
	}
	code, out, errOut = run("complaints", "reassign", "--to", to, id, "--reason", "speaks the customer's dialect")
	if code != 0 || !strings.Contains(out, "now owned by "+to) {
		t.Fatalf("reassign: %d %s %s", code, out, errOut)
	}
	code, out, errOut = run("complaints", "close", id, "--resolution", "Parcel found at the neighbours", "--category", "delivery")
	if code != 0 || !strings.Contains(out, "closed") {
		t.Fatalf("close: %d %s %s", code, out, errOut)
	}
	code, out, _ = run("complaints", "show", id)
	if code != 0 || !strings.Contains(out, "reassigned by cli:") || !strings.Contains(out, "Parcel found at the neighbours") {
		t.Fatalf("the timeline must show who reassigned and the resolution:\n%s", out)
	}
	code, out, _ = run("owners", "list")
	if code != 0 || !strings.Contains(out, "CAPACITY") || !strings.Contains(out, "Anna de Vries") {
		t.Fatalf("owners list: %d\n%s", code, out)
	}
	code, out, _ = run("deadletters", "list")
	if code != 0 || !strings.Contains(out, "No dead letters") {
		t.Fatalf("deadletters list: %d\n%s", code, out)
	}
	code, _, errOut = run("complaints", "show", "C-424242")
	if code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("unknown complaint: %d %q", code, errOut)
	}
}

func TestHelpAndUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"config", "--help"}, {"complaints", "--help"}, {"complaints", "list", "--help"},
		{"complaints", "show", "--help"}, {"complaints", "close", "--help"}, {"complaints", "reassign", "--help"},
		{"owners", "list", "--help"}, {"deadletters", "list", "--help"}, {"deadletters", "retry", "--help"},
	} {
		code, out, errOut := run(args...)
		if code != 0 || !strings.Contains(out+errOut, "forgetmenot") {
			t.Errorf("%v: exit %d, output %q", args, code, out+errOut)
		}
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"complaints"}, {"complaints", "show"}, {"complaints", "list", "--nope"}, {"complaints", "show", "C-1", "extra"}} {
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage error)", args, code)
		}
	}
}

func TestConfigCommandListsVariables(t *testing.T) {
	code, out, _ := run("config")
	if code != 0 || !strings.Contains(out, "FORGETMENOT_REDIS_URL") || !strings.Contains(out, "FORGETMENOT_REOPEN_WINDOW") {
		t.Fatalf("config: %d\n%s", code, out)
	}
}

func TestUnreachableDaemonSaysSo(t *testing.T) {
	t.Setenv("FORGETMENOT_API_URL", "http://127.0.0.1:1")
	code, _, errOut := run("owners", "list")
	if code != 1 || !strings.Contains(errOut, "cannot reach the daemon") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}

func TestAwayBackAndReportFromTheCommandLine(t *testing.T) {
	base := startDaemon(t)
	id := ingest(t, base, `{"source_id":"cli-r1","customer":{"email":"jan@voorbeeld.nl"},"subject":"Pakket kwijt","body":"Mijn pakket is niet aangekomen."}`)
	code, out, errOut := run("owners", "away", "anna", "--until", "2099-01-04", "--cover", "bas")
	if code != 0 || !strings.Contains(out, "anna is away until 2099-01-04") || !strings.Contains(out, "bas covers") {
		t.Fatalf("owners away: %d %s %s", code, out, errOut)
	}
	code, out, _ = run("owners", "list")
	if code != 0 || !strings.Contains(out, "cover bas") || strings.Contains(out, "stands in") {
		t.Fatalf("owners list should show the absence: %d\n%s", code, out)
	}
	// Bas goes away too: the list says who has anna's work now.
	if code, out, errOut = run("owners", "away", "bas", "--until", "2099-01-02", "--cover", "chloe"); code != 0 {
		t.Fatalf("owners away bas: %d %s %s", code, out, errOut)
	}
	code, out, _ = run("owners", "list")
	if code != 0 || !strings.Contains(out, "cover bas; chloe stands in") {
		t.Fatalf("owners list should name who stands in for an away cover: %d\n%s", code, out)
	}
	if code, _, errOut = run("owners", "back", "bas"); code != 0 {
		t.Fatalf("owners back bas: %d %s", code, errOut)
	}
	if code, _, errOut = run("owners", "away", "anna", "--until", "2099-01-04", "--cover", "nobody"); code != 1 || !strings.Contains(errOut, "cover") {
		t.Fatalf("unknown cover: %d %q", code, errOut)
	}
	if code, out, _ = run("owners", "back", "anna"); code != 0 || !strings.Contains(out, "anna is back") {
		t.Fatalf("owners back: %d %s", code, out)
	}
	if code, _, errOut = run("complaints", "close", id, "--resolution", "Found", "--category", "weather"); code != 1 || !strings.Contains(errOut, "delivery, lost-parcel") {
		t.Fatalf("close with an unconfigured category: %d %q, want exit 1 naming the configured ones", code, errOut)
	}
	if code, _, errOut = run("complaints", "close", id, "--resolution", "Found", "--category", "lost-parcel", "--prevention", "Photograph parcels at the door"); code != 0 {
		t.Fatal(errOut)
	}
	code, out, errOut = run("report")
	if code != 0 || !strings.Contains(out, "Complaints opened") || !strings.Contains(out, "lost-parcel") {
		t.Fatalf("report: %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run("report", "--format", "csv", "--since", "2020-01-01")
	if code != 0 || !strings.HasPrefix(out, "section,name,value") || !strings.Contains(out, "total,complaints,1") {
		t.Fatalf("report csv: %d\n%s", code, out)
	}
	code, out, _ = run("report", "--format", "json")
	var rep struct{ Complaints int }
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Complaints != 1 {
		t.Fatalf("report json: %d\n%s", code, out)
	}
	// --json, as the other client commands take it.
	code, out, _ = run("report", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Complaints != 1 {
		t.Fatalf("report --json: %d\n%s", code, out)
	}
	code, out, _ = run("report", "--format", "html")
	if code != 0 || !strings.HasPrefix(out, "<!DOCTYPE html>") || !strings.Contains(out, "<svg") || !strings.Contains(out, "Photograph parcels at the door") {
		t.Fatalf("report html: %d\n%.300s", code, out)
	}
	if code, _, errOut = run("report", "--format", "pdf"); code != 2 || !strings.Contains(errOut, "html") {
		t.Fatalf("unknown format: %d %q", code, errOut)
	}
	if code, _, errOut = run("report", "--since", "last week"); code != 2 || !strings.Contains(errOut, "--since") {
		t.Fatalf("bad date: %d %q", code, errOut)
	}
}

// TestMergeFromTheCommandLine: a colleague's message that named the
// complaint opened its own; staff merge it, and show says so on both.
func TestMergeFromTheCommandLine(t *testing.T) {
	base := startDaemon(t)
	orig := ingest(t, base, `{"source_id":"cli-m1","customer":{"email":"jan@voorbeeld.nl"},"body":"De kan is gebroken."}`)
	other := ingest(t, base, `{"source_id":"cli-m2","customer":{"email":"piet@voorbeeld.nl"},"complaint_id":"`+orig+`","body":"Ik ben Jans collega, over de kan."}`)
	if code, out, _ := run("complaints", "show", other); code != 0 || !strings.Contains(out, "mentions "+orig) {
		t.Fatalf("the colleague's complaint must say it names %s: %d\n%s", orig, code, out)
	}
	if code, _, errOut := run("complaints", "merge", other, "--into", orig); code != 2 || !strings.Contains(errOut, "reason") {
		t.Errorf("merge without a reason: %d %q, want exit 2 (usage) naming the reason", code, errOut)
	}
	code, out, errOut := run("complaints", "merge", other, "--into", orig, "--reason", "Piet is Jans collega", "--as", "anna")
	if code != 0 || !strings.Contains(out, other+" merged into "+orig) {
		t.Fatalf("merge: %d %s %s", code, out, errOut)
	}
	if _, out, _ := run("complaints", "show", other); !strings.Contains(out, "Merged into: "+orig) || !strings.Contains(out, "merged into "+orig+" by anna") {
		t.Errorf("show of the merged complaint:\n%s", out)
	}
	if _, out, _ := run("complaints", "show", orig); !strings.Contains(out, "merged "+other+" into this complaint by anna") || !strings.Contains(out, "Ik ben Jans collega") {
		t.Errorf("show of the survivor:\n%s", out)
	}
}

// What must hold: nothing anyone wrote can drive the terminal the CLI prints
// to. A reassignment reason (staff input through the API) with an escape
// sequence, a bell, a carriage return, a right-to-left override and a line
// break shows as visible escapes on the line it belongs to: no raw control
// or bidi character reaches the output, and no line of it starts with what
// the reason made up.
func TestCLIOutputCannotDriveTheTerminal(t *testing.T) {
	base := startDaemon(t)
	id := ingest(t, base, `{"source_id":"cli-esc","customer":{"name":"Eve","email":"eve@example.com"},"subject":"Order","body":"Where is it?"}`)
	_, out, _ := run("complaints", "show", id, "--json")
	var detail struct {
		Complaint struct{ Owner string } `json:"complaint"`
	}
	_ = json.Unmarshal([]byte(out), &detail)
	to := "bas"
	if detail.Complaint.Owner == "bas" {
		to = "anna"
	}
	reason := "because\x1b[2J\x1b]0;TITLE\x07\r\u202eevil\nC-1052  CLOSED"
	if code, out, errOut := run("complaints", "reassign", id, "--to", to, "--reason", reason); code != 0 {
		t.Fatalf("reassign: %d %s %s", code, out, errOut)
	}
	for _, args := range [][]string{{"complaints", "show", id}, {"complaints", "list"}} {
		code, out, errOut := run(args...)
		if code != 0 {
			t.Fatalf("%v: %d %s", args, code, errOut)
		}
		for _, bad := range []string{"\x1b", "\x07", "\r", "\u202e"} {
			if strings.Contains(out, bad) {
				t.Errorf("%v prints a raw %q:\n%s", args, bad, out)
			}
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "C-1052") {
				t.Errorf("%v prints a line the reason made up: %q", args, line)
			}
		}
		if args[1] == "show" && !strings.Contains(out, `because\x1b[2J\x1b]0;TITLE\x07 \u202eevil C-1052 CLOSED`) {
			t.Errorf("show does not print the reason with visible escapes on its line:\n%s", out)
		}
	}
}

// What must hold: with JSON logs, a configuration serve cannot start with
// is said as one JSON line too (a log collector reads every line), and
// durations in JSON logs are text ("20s"), as in the text logs.
func TestStartFailureIsJSONWhenTheLogsAre(t *testing.T) {
	t.Setenv("FORGETMENOT_LOG_FORMAT", "json")
	t.Setenv("FORGETMENOT_ROUTER_WORKERS", "many")
	code, _, errOut := run("serve")
	var line map[string]any
	if code != 1 || json.Unmarshal([]byte(strings.TrimSpace(errOut)), &line) != nil || line["level"] != "ERROR" || !strings.Contains(fmt.Sprint(line["err"]), "ROUTER_WORKERS") {
		t.Fatalf("serve with a bad setting and JSON logs: exit %d, stderr %q; want exit 1 and one JSON error line naming the setting", code, errOut)
	}
	var b bytes.Buffer
	cli.NewLogger(configs.Config{LogFormat: "json", LogLevel: "info"}, &b).Info("shutting down", "timeout", 20*time.Second)
	if !strings.Contains(b.String(), `"timeout":"20s"`) {
		t.Errorf("duration in a JSON log: %s, want \"20s\"", b.String())
	}
}
