package main_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
)

// TestServeOnAFreshMachineAndStopOnSIGTERM runs the real binary the way the
// README's quick start does: no configuration at all, from the repository root.
func TestServeOnAFreshMachineAndStopOnSIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "forgetmenot")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	port, err := testredis.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Dir = "../.."
	cmd.Env = append(cleanEnv(), "FORGETMENOT_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port))
	var logs testkit.LockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	testkit.WaitFor(t, "the daemon to answer", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	resp, err := http.Post(base+"/v1/messages", "application/json", strings.NewReader(`{"source_id":"q1","body":"My parcel never arrived."}`))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("ingest: %v %v", err, resp)
	}
	resp.Body.Close()
	testkit.WaitFor(t, "the assignment in the log", func() bool { return strings.Contains(logs.String(), "complaint assigned") })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGTERM\n%s", logs.String())
	}
	for _, want := range []string{"IN-MEMORY MODE", "shutdown complete"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestBadConfigurationStopsAtStartNamingTheProblem(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "forgetmenot")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "owners.yaml"), []byte("teams:\n  - id: support\nowners:\n  - id: anna\n    name: Anna\n    email: anna@example.nl\n    teams: [suport]\n    capacity: 3\n"), 0o644)
	cmd := exec.Command(bin, "serve")
	cmd.Dir = "../.."
	cmd.Env = append(cleanEnv(), "FORGETMENOT_OWNERS_FILE="+filepath.Join(dir, "owners.yaml"), "FORGETMENOT_HTTP_ADDR=127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `owners.yaml:4: owner "anna": team "suport" is not declared`) {
		t.Fatalf("want a failed start naming file, line and problem; got %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "serve")
	cmd.Env = append(cleanEnv(), "FORGETMENOT_REOPEN_WINDOW=fortnight")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "FORGETMENOT_REOPEN_WINDOW") {
		t.Fatalf("want a failed start naming the variable; got %v\n%s", err, out)
	}
}

// cleanEnv is the test's environment without FORGETMENOT_ variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FORGETMENOT_") {
			env = append(env, kv)
		}
	}
	return env
}
