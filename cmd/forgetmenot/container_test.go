package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Docker cannot run in CI, so the Dockerfile and compose.yaml are checked
// as text: the image's health check is the binary's own `health` command in
// exec form (distroless has no shell), compose waits for a healthy Redis,
// checks forgetmenot the same way, and pins the Redis image.
func TestDockerfileHealthcheckUsesTheBinary(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := strings.ReplaceAll(string(raw), "\\\n", " ")
	bin := regexp.MustCompile(`(?m)^COPY --from=build \S+ (\S+)$`).FindStringSubmatch(df)
	if bin == nil {
		t.Fatal("Dockerfile: no COPY of the binary from the build stage")
	}
	m := regexp.MustCompile(`(?m)^HEALTHCHECK (.*) CMD (\[.*\])\s*$`).FindStringSubmatch(df)
	if m == nil {
		t.Fatal("Dockerfile: no HEALTHCHECK ... CMD [...] (exec form; distroless has no shell)")
	}
	var cmd []string
	if err := json.Unmarshal([]byte(m[2]), &cmd); err != nil {
		t.Fatalf("HEALTHCHECK CMD is not a JSON array (exec form): %v", err)
	}
	if cmd[0] != bin[1] {
		t.Errorf("HEALTHCHECK runs %s, but the binary is copied to %s", cmd[0], bin[1])
	}
	for _, opt := range []string{"--interval=", "--timeout=", "--start-period=", "--retries="} {
		if !strings.Contains(m[1], opt) {
			t.Errorf("HEALTHCHECK lacks %s", opt)
		}
	}
	checkHealthArgs(t, "Dockerfile HEALTHCHECK", cmd[1:])
}

func TestComposeHealthchecksAndPinnedRedis(t *testing.T) {
	raw, err := os.ReadFile("../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type service struct {
		Image       string                    `yaml:"image"`
		Hostname    string                    `yaml:"hostname"`
		Healthcheck struct{ Test []string }   `yaml:"healthcheck"`
		DependsOn   map[string]map[string]any `yaml:"depends_on"`
		Environment map[string]string         `yaml:"environment"`
	}
	var compose struct {
		Services map[string]service `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("compose.yaml: %v (depends_on must be the long form with conditions)", err)
	}
	redis, fmn := compose.Services["redis"], compose.Services["forgetmenot"]
	if !regexp.MustCompile(`^redis:\d+\.\d+\.\d+(-alpine|-bookworm)?$`).MatchString(redis.Image) {
		t.Errorf("redis image %q is not pinned to an exact version (redis:7.2.x-alpine)", redis.Image)
	}
	if len(redis.Healthcheck.Test) < 2 || !strings.Contains(strings.Join(redis.Healthcheck.Test, " "), "ping") {
		t.Errorf("redis healthcheck %q: want a redis-cli ping", redis.Healthcheck.Test)
	}
	if fmn.DependsOn["redis"]["condition"] != "service_healthy" {
		t.Errorf("forgetmenot depends_on redis %v: want condition service_healthy", fmn.DependsOn["redis"])
	}
	test := fmn.Healthcheck.Test
	if len(test) < 3 || test[0] != "CMD" || !strings.HasSuffix(test[1], "/forgetmenot") {
		t.Fatalf("forgetmenot healthcheck %q: want [CMD, /usr/local/bin/forgetmenot, health, ...] (no shell in the image)", test)
	}
	checkHealthArgs(t, "compose healthcheck", test[2:])
	if fmn.Hostname == "" && fmn.Environment["FORGETMENOT_CONSUMER_NAME"] == "" {
		t.Error("forgetmenot has neither a hostname nor FORGETMENOT_CONSUMER_NAME: its consumer name would change with every new container")
	}
}

// checkHealthArgs runs the real binary with the health check's arguments
// against a port nobody listens on: it must be a valid command line (exit 1,
// "unhealthy"), not a usage error (exit 2).
func checkHealthArgs(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 || args[0] != "health" {
		t.Fatalf("%s: %q does not run `forgetmenot health`", where, args)
	}
	bin := buildOnce(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cleanEnv(), "FORGETMENOT_HTTP_ADDR=127.0.0.1:1")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "unhealthy") {
		t.Errorf("%s: %q against no daemon: %v %s, want exit 1 saying unhealthy", where, args, err, out)
	}
}

var builtBinary string

func buildOnce(t *testing.T) string {
	t.Helper()
	if builtBinary != "" {
		return builtBinary
	}
	dir, err := os.MkdirTemp("", "forgetmenot-bin")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "forgetmenot")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	builtBinary = bin
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBinary != "" {
		os.RemoveAll(filepath.Dir(builtBinary))
	}
	os.Exit(code)
}
