package main_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
)

// TestEveryLogLineIsJSONDuringARedisOutage: with FORGETMENOT_LOG_FORMAT=json
// (the image's default) a log collector must be able to read every line,
// also go-redis's own ("failed to dial" for every connection attempt while
// Redis is down), and those repeat at most once per LOG_REPEAT_INTERVAL per
// kind, then are summed up.
func TestEveryLogLineIsJSONDuringARedisOutage(t *testing.T) {
	bin := buildOnce(t)
	srv, err := testredis.StartServer(t.TempDir())
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer srv.Cleanup()
	port, err := testredis.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Dir = "../.."
	cmd.Env = append(cleanEnv(), "FORGETMENOT_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port), "FORGETMENOT_REDIS_URL="+srv.URL(),
		"FORGETMENOT_LOG_FORMAT=json", "FORGETMENOT_LOG_REPEAT_INTERVAL=1s", "FORGETMENOT_NAMESPACE="+testredis.Namespace())
	var logs testkit.LockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	ready := func() bool {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	}
	testkit.WaitFor(t, "the daemon to be ready", ready)

	srv.Stop()
	// While Redis is down, senders keep trying (503 each time).
	outage := time.Now()
	for time.Since(outage) < 3500*time.Millisecond {
		resp, err := http.Post(base+"/v1/messages", "application/json", strings.NewReader(`{"source_id":"outage-`+strconv.Itoa(int(time.Since(outage)))+`","body":"Is anyone there?"}`))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				t.Errorf("a message was answered %d while Redis was down", resp.StatusCode)
			}
		}
		_ = ready()
		time.Sleep(100 * time.Millisecond)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the daemon to be ready again", ready)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()

	var redisLines, summaries int
	// Repeats: warnings and errors with the same message and text attributes
	// (error texts aside) at most twice in any second (interval 1 s).
	perSecond := map[string]map[int64]int{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not JSON: %q", line)
			continue
		}
		if _, ok := rec["suppressed"]; ok {
			summaries++
			continue
		}
		if rec["lib"] == "go-redis" {
			redisLines++
		}
		if rec["level"] != "WARN" && rec["level"] != "ERROR" {
			continue
		}
		var key []string
		for k, v := range rec {
			if s, ok := v.(string); ok && k != "time" && k != "err" {
				key = append(key, k+"="+s)
			}
		}
		sort.Strings(key)
		kind := strings.Join(key, " ")
		at, _ := time.Parse(time.RFC3339Nano, rec["time"].(string))
		if perSecond[kind] == nil {
			perSecond[kind] = map[int64]int{}
		}
		perSecond[kind][at.Unix()]++
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs.String())
		return
	}
	if redisLines == 0 {
		t.Logf("go-redis logged nothing during the outage (nothing to limit); log:\n%s", logs.String())
	}
	for kind, secs := range perSecond {
		for sec, n := range secs {
			if n > 2 {
				t.Errorf("%d lines %q within second %d: not rate-limited", n, kind, sec)
			}
		}
	}
	t.Logf("%d go-redis lines passed, %d summaries of suppressed lines", redisLines, summaries)
	if summaries == 0 {
		t.Error("no line was suppressed during a 3.5 s outage: the repeats are not limited")
	}
	if os.Getenv("FMN_SHOW_LOG") != "" {
		t.Log(logs.String())
	}
}
