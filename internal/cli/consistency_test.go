package cli_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"
)

// Every usage error exits 2 with a short hint on stderr (what is wrong and
// the synopsis), and nothing on stdout: never the whole help.
func TestUsageErrorsExit2WithAShortHintOnStderr(t *testing.T) {
	t.Setenv("FORGETMENOT_API_URL", "http://127.0.0.1:1") // nothing may be asked of a daemon
	for _, args := range [][]string{
		{}, {"frobnicate"}, {"complaints"}, {"complaints", "frob"}, {"complaints", "show"},
		{"complaints", "list", "--nope"}, {"complaints", "show", "C-1", "--bogus"}, {"complaints", "show", "C-1", "extra"},
		{"complaints", "list", "--limit", "many"},
		{"serve", "extra"}, {"serve", "--port", "1"}, {"config", "extra"}, {"config", "--x"},
		{"report", "extra"}, {"report", "--format", "xml"}, {"report", "--since", "yesterday"}, {"report", "--bogus"},
		{"complaints", "promise", "C-1", "--by", "someday", "--note", "x"},
		{"complaints", "promise", "C-1", "--by", "+2d 14:00", "--in", "48h", "--note", "x"},
		{"complaints", "promise", "C-1", "--in", "-3h", "--note", "x"},
		{"complaints", "promise", "C-1", "--note", "x"},
		{"health", "--bogus"}, {"health", "extra"}, {"health", "--timeout", "0s"},
		{"owners", "away"}, {"deadletters", "retry"}, {"version", "extra"},
		// Flags the help marks "(required)" are checked before the daemon is asked.
		{"complaints", "close", "C-1"}, {"complaints", "reassign", "C-1", "--to", "anna"},
		{"complaints", "merge", "C-2", "--reason", "same order"}, {"owners", "away", "anna"},
		{"customers", "erase", "jan@voorbeeld.nl"}, {"customers", "export", "jan@voorbeeld.nl", "--format", "pdf"},
	} {
		code, out, errOut := run(args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage error); stderr %q", args, code, errOut)
		}
		if out != "" {
			t.Errorf("%q: a usage error printed to stdout:\n%s", args, out)
		}
		if !strings.Contains(errOut, "error:") && len(args) > 0 {
			t.Errorf("%q: stderr %q does not say what is wrong", args, errOut)
		}
		if n := strings.Count(errOut, "\n"); n > 4 && len(args) > 0 { // no command at all: the command list
			t.Errorf("%q: %d lines on stderr, want a short hint:\n%s", args, n, errOut)
		}
	}
}

func TestHelpGoesToStdoutAndExits0(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"health", "--help"}, {"complaints", "promise", "--help"}, {"report", "-h"}} {
		code, out, errOut := run(args...)
		if code != 0 || !strings.Contains(out, "forgetmenot") || errOut != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if _, out, _ := run("complaints", "promise", "--help"); !strings.Contains(out, "--in") || !strings.Contains(out, "+2d 14:00") {
		t.Errorf("promise help must explain --in and the relative --by:\n%s", out)
	}
}

// Complaint ids are case-insensitive (c-1001 is C-1001), every time is
// shown with its zone, and promises take relative times.
func TestLowerCaseIdsZonesAndRelativePromises(t *testing.T) {
	base := startDaemon(t)
	id := ingest(t, base, `{"source_id":"cli-z1","customer":{"email":"jan@voorbeeld.nl"},"subject":"Lamp","body":"De lamp flikkert."}`)
	lower := strings.ToLower(id)
	code, out, errOut := run("complaints", "show", lower)
	if code != 0 || !strings.Contains(out, id+"  OPEN") {
		t.Fatalf("show %s: %d\n%s%s", lower, code, out, errOut)
	}
	zone := time.Now().Format("MST")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, time.Now().Format("2006-")) && !strings.Contains(line, " "+zone) {
			t.Errorf("a time without its zone (%s): %q", zone, line)
		}
	}
	code, out, errOut = run("complaints", "promise", lower, "--in", "48h", "--note", "Nieuwe lamp onderweg")
	if code != 0 || !strings.Contains(out, id+": follow-up promise recorded") {
		t.Fatalf("promise --in: %d %s %s", code, out, errOut)
	}
	code, out, _ = run("complaints", "show", id, "--json")
	var d struct {
		Complaint struct {
			PromisedBy time.Time `json:"promised_by"`
		} `json:"complaint"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
		t.Fatalf("show --json: %d %s", code, out)
	}
	if got := time.Until(d.Complaint.PromisedBy); got < 47*time.Hour || got > 49*time.Hour {
		t.Errorf("--in 48h promised by %v (in %v)", d.Complaint.PromisedBy, got)
	}
	code, out, errOut = run("complaints", "promise", id, "--by", "+2d 14:00", "--note", "Bel terug")
	if code != 0 {
		t.Fatalf("promise --by +2d 14:00: %d %s %s", code, out, errOut)
	}
	_, out, _ = run("complaints", "show", id)
	want := time.Now().AddDate(0, 0, 2).Format("2006-01-02") + " 14:00 " + zone
	if !strings.Contains(out, "Promised:  by "+want) || !strings.Contains(out, "follow-up by "+want) {
		t.Errorf("show must give the promise as %q, in the header and on the timeline:\n%s", want, out)
	}
}

func TestHealthAgainstTheLocalDaemon(t *testing.T) {
	base := startDaemon(t)
	for _, args := range [][]string{{"health", "--url", base}, {"health", "--ready", "--url", base}} {
		code, out, errOut := run(args...)
		if code != 0 || (!strings.Contains(out, "ok") && !strings.Contains(out, "ready")) {
			t.Errorf("%q: %d %q %q", args, code, out, errOut)
		}
	}
	// From the same environment as serve: FORGETMENOT_HTTP_ADDR, on loopback.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	t.Setenv("FORGETMENOT_HTTP_ADDR", ":"+port)
	if code, out, errOut := run("health", "--ready"); code != 0 || !strings.Contains(out, "ready") {
		t.Errorf("health --ready via FORGETMENOT_HTTP_ADDR=:%s: %d %q %q", port, code, out, errOut)
	}
	// Nobody listening: exit 1, quickly, saying so.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	t.Setenv("FORGETMENOT_HTTP_ADDR", dead)
	start := time.Now()
	if code, _, errOut := run("health", "--timeout", "2s"); code != 1 || !strings.Contains(errOut, "unhealthy") {
		t.Errorf("health with no daemon: %d %q, want 1", code, errOut)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("health took %v with no daemon", time.Since(start))
	}
}

// What must hold: an operator can tell which build runs (before stopping the
// replicas of an old version, say).
func TestVersionNamesTheBuild(t *testing.T) {
	code, out, errOut := run("version")
	if code != 0 || !strings.HasPrefix(out, "forgetmenot ") || errOut != "" {
		t.Fatalf("version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
