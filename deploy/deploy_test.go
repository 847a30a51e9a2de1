package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/daemon"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"go.yaml.in/yaml/v3"
)

func TestMain(m *testing.M) { os.Exit(testredis.Main(m)) }

// needTool finds a command line tool the scripts/test installs; on CI a
// missing one fails the test instead of skipping it.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (./scripts/test installs it)", name)
		}
		t.Skipf("%s is not installed; ./scripts/test installs it", name)
	}
	return p
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAlertRulesPassPromtool: the rules load, and each alert fires on the
// series that mean trouble and stays quiet on healthy ones.
func TestAlertRulesPassPromtool(t *testing.T) {
	promtool := needTool(t, "promtool")
	run(t, "prometheus", promtool, "check", "rules", "alerts.yaml")
	out := run(t, "prometheus", promtool, "test", "rules", "alerts_test.yaml", "alerts_week_test.yaml")
	if strings.Count(out, "SUCCESS") != 2 {
		t.Fatalf("promtool test rules:\n%s", out)
	}
	// Every alert has a unit test.
	var tested []string
	for _, f := range []string{"prometheus/alerts_test.yaml", "prometheus/alerts_week_test.yaml"} {
		raw, _ := os.ReadFile(f)
		for _, m := range regexp.MustCompile(`alertname: (\w+)`).FindAllStringSubmatch(string(raw), -1) {
			tested = append(tested, m[1])
		}
	}
	for _, r := range alertRules(t) {
		if !slices.Contains(tested, r.Alert) {
			t.Errorf("alert %s has no test in alerts_test.yaml", r.Alert)
		}
	}
}

type rule struct {
	Alert string `yaml:"alert"`
	Expr  string `yaml:"expr"`
}

func alertRules(t *testing.T) []rule {
	t.Helper()
	raw, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) < 10 {
		t.Fatalf("only %d alert rules", len(out))
	}
	return out
}

type panel struct {
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// dashboardQueries returns every PromQL query of the Grafana dashboard, by
// panel title, with Grafana's interval variables filled in.
func dashboardQueries(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile("grafana/forgetmenot.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1d")
	out := map[string][]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q has an empty query", p.Title)
				}
				out[p.Title] = append(out[p.Title], vars.Replace(tg.Expr))
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(out) < 10 {
		t.Fatalf("only %d panels with queries", len(out))
	}
	return out
}

// TestDashboardQueriesAreValidPromQL: promtool parses every dashboard query
// (as a recording rule), so a typo shows here, not as an empty panel.
func TestDashboardQueriesAreValidPromQL(t *testing.T) {
	promtool := needTool(t, "promtool")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	i := 0
	for _, qs := range dashboardQueries(t) {
		for _, q := range qs {
			i++
			quoted, _ := json.Marshal(q)
			fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, quoted)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard-rules.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, promtool, "check", "rules", "dashboard-rules.yaml")
}

// series is one line of a /metrics scrape.
type series struct {
	name   string
	labels map[string]string
}

var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s`)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// freshScrape starts a daemon (real Redis, the shipped configuration, the
// web chat on) and scrapes /metrics at once, before anything happened.
func freshScrape(t *testing.T) []series {
	t.Helper()
	cfg := configs.Config{
		RedisURL: testredis.URL(t), Namespace: testredis.Namespace(), HTTPAddr: "127.0.0.1:0",
		OwnersFile: "../configs/owners.yaml", RoutingFile: "../configs/routing.yaml", TargetsFile: "../configs/targets.yaml",
		EmailTemplates: "../configs/email-templates", ChatEnabled: true, ChatMaxMessageBytes: 4000, ChatRatePerMinute: 20, ChatIPRatePerMinute: 60,
		ReopenWindow: configs.Duration(14 * 24 * time.Hour), MaxMessageBytes: 1 << 20,
		RouterWorkers: 1, DeliveryWorkers: 1, MaxAttempts: 3, ReclaimIdle: configs.Duration(5 * time.Second),
		ShutdownTimeout: configs.Duration(5 * time.Second), LogLevel: "error", LogFormat: "text",
		ConsumerExpiry: configs.Duration(time.Hour), MetricsToken: "metrics-token-0123456789",
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	req, _ := http.NewRequest("GET", "http://"+d.Addr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+cfg.MetricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %s", resp.StatusCode, raw)
	}
	var out []series
	for _, line := range strings.Split(string(raw), "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s := series{name: m[1], labels: map[string]string{}}
		for _, p := range labelPair.FindAllStringSubmatch(m[3], -1) {
			s.labels[p[1]] = p[2]
		}
		out = append(out, s)
	}
	return out
}

// selector is a metric name with its label matchers, as a query uses it.
type selector struct {
	text     string
	name     string
	matchers []matcher
}

type matcher struct{ label, op, value string }

var (
	grouping   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	ranges     = regexp.MustCompile(`\[[^\]]*\]`)
	offsets    = regexp.MustCompile(`\boffset\s+-?\w+`)
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	matcherRe  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	keywords   = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// selectors finds the metric selectors of a PromQL expression: identifiers
// that are not functions, keywords, label names of a grouping, or part of a
// number, with the label matchers that follow them.
func selectors(expr string) []selector {
	e := grouping.ReplaceAllString(expr, " ")
	e = ranges.ReplaceAllString(e, " ")
	e = offsets.ReplaceAllString(e, " ")
	var out []selector
	for _, loc := range identifier.FindAllStringIndex(e, -1) {
		if loc[0] > 0 && strings.ContainsAny(e[loc[0]-1:loc[0]], "0123456789.}\"") {
			continue // part of a number (1e3), or inside a matcher
		}
		if inBraces(e, loc[0]) {
			continue
		}
		name := e[loc[0]:loc[1]]
		rest := strings.TrimLeft(e[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || slices.Contains(keywords, name) {
			continue
		}
		s := selector{name: name, text: name}
		if strings.HasPrefix(rest, "{") {
			body := rest[1:strings.Index(rest, "}")]
			s.text += "{" + body + "}"
			for _, m := range matcherRe.FindAllStringSubmatch(body, -1) {
				s.matchers = append(s.matchers, matcher{m[1], m[2], m[3]})
			}
		}
		out = append(out, s)
	}
	return out
}

func inBraces(e string, at int) bool {
	return strings.LastIndex(e[:at], "{") > strings.LastIndex(e[:at], "}")
}

// matches reports whether a series a daemon exports satisfies s. The job
// and instance labels are Prometheus' own (added at scrape time).
func (s selector) matches(all []series) bool {
	for _, x := range all {
		if x.name != s.name {
			continue
		}
		ok := true
		for _, m := range s.matchers {
			if m.label == "job" || m.label == "instance" {
				continue
			}
			v := x.labels[m.label]
			switch m.op {
			case "=":
				ok = ok && v == m.value
			case "!=":
				ok = ok && v != m.value
			case "=~":
				ok = ok && regexp.MustCompile("^(?:"+m.value+")$").MatchString(v)
			case "!~":
				ok = ok && !regexp.MustCompile("^(?:"+m.value+")$").MatchString(v)
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// TestEveryQueryReadsSeriesAFreshDaemonExports: every metric and label value
// the alerts and the dashboard read is exported by a daemon that has just
// started, with 0 where nothing happened yet. Otherwise an alert waits for
// its first failure to have a baseline (increase() misses the first event)
// and a dashboard panel says "no data" instead of 0.
func TestEveryQueryReadsSeriesAFreshDaemonExports(t *testing.T) {
	scraped := freshScrape(t)
	queries := map[string][]string{}
	for _, r := range alertRules(t) {
		queries["alert "+r.Alert] = []string{r.Expr}
	}
	for title, qs := range dashboardQueries(t) {
		queries["panel "+title] = qs
	}
	checked := 0
	for where, qs := range queries {
		for _, q := range qs {
			sels := selectors(q)
			if len(sels) == 0 {
				t.Errorf("%s: no metric found in %q", where, q)
			}
			for _, s := range sels {
				checked++
				if s.name == "up" { // Prometheus' own, per scrape target
					continue
				}
				if !s.matches(scraped) {
					t.Errorf("%s reads %s, which a freshly started daemon does not export", where, s.text)
				}
			}
		}
	}
	if checked < 40 {
		t.Fatalf("only %d selectors checked: is the extraction broken?", checked)
	}
}

func TestSelectorExtraction(t *testing.T) {
	got := selectors(`histogram_quantile(0.95, sum by (le, channel) (rate(forgetmenot_routing_latency_seconds_bucket{job="forgetmenot",stream=~"in.*"}[5m]))) > 1e3 and on (x) up offset 1w or vector(0)`)
	var names []string
	for _, s := range got {
		names = append(names, s.text)
	}
	want := []string{`forgetmenot_routing_latency_seconds_bucket{job="forgetmenot",stream=~"in.*"}`, "up"}
	if !slices.Equal(names, want) {
		t.Fatalf("selectors %q, want %q", names, want)
	}
}

// configVariables are every FORGETMENOT_ variable the daemon reads.
func configVariables() []string {
	var out []string
	ty := reflect.TypeOf(configs.Config{})
	for i := range ty.NumField() {
		if k := ty.Field(i).Tag.Get("envconfig"); k != "" {
			out = append(out, configs.Var(k))
		}
	}
	return out
}

var envName = regexp.MustCompile(`FORGETMENOT_[A-Z0-9_]+`)

// checkVariables fails on every FORGETMENOT_ name in text that the daemon
// does not read (a typo would be silently ignored).
func checkVariables(t *testing.T, file, text string) {
	t.Helper()
	known := configVariables()
	for _, v := range envName.FindAllString(text, -1) {
		if !slices.Contains(known, v) {
			t.Errorf("%s names %s, which forgetmenot does not read", file, v)
		}
	}
}

// TestKubernetesManifests: probes on the daemon's health routes, secrets
// from a Secret, a PodDisruptionBudget that selects the Deployment's pods,
// and only variables the daemon reads.
func TestKubernetesManifests(t *testing.T) {
	raw, err := os.ReadFile("kubernetes/forgetmenot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checkVariables(t, "kubernetes/forgetmenot.yaml", string(raw))
	type probe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
	}
	type doc struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			MinAvailable any `yaml:"minAvailable"`
			Template     struct {
				Metadata struct {
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
				Spec struct {
					Containers []struct {
						Env []struct {
							Name      string `yaml:"name"`
							Value     string `yaml:"value"`
							ValueFrom struct {
								SecretKeyRef *struct {
									Name string `yaml:"name"`
									Key  string `yaml:"key"`
								} `yaml:"secretKeyRef"`
							} `yaml:"valueFrom"`
						} `yaml:"env"`
						LivenessProbe  *probe `yaml:"livenessProbe"`
						ReadinessProbe *probe `yaml:"readinessProbe"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	docs := map[string]doc{}
	for {
		var d doc
		if err := dec.Decode(&d); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("manifest: %v", err)
		}
		docs[d.Kind] = d
	}
	dep, ok := docs["Deployment"]
	if !ok || len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want a Deployment with one container: %v", docs)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes: liveness %+v readiness %+v, want /healthz and /readyz", c.LivenessProbe, c.ReadinessProbe)
	}
	secret := map[string]string{}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			secret[e.Name] = r.Name
		}
	}
	for _, v := range []string{"FORGETMENOT_REDIS_URL", "FORGETMENOT_API_TOKEN", "FORGETMENOT_WEBHOOK_SECRET", "FORGETMENOT_METRICS_TOKEN"} {
		if secret[v] == "" {
			t.Errorf("%s must come from a Secret", v)
		}
	}
	if env["FORGETMENOT_HTTP_ADDR"] != ":8080" {
		t.Errorf("the pod must listen on every interface: HTTP_ADDR %q", env["FORGETMENOT_HTTP_ADDR"])
	}
	pdb, ok := docs["PodDisruptionBudget"]
	if !ok || pdb.Spec.MinAvailable == nil {
		t.Fatal("want a PodDisruptionBudget with minAvailable")
	}
	if !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels) {
		t.Errorf("PDB selects %v, the Deployment %v", pdb.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels)
	}
	for k, v := range dep.Spec.Selector.MatchLabels {
		if dep.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("the Deployment's selector %s=%s does not match its pods", k, v)
		}
	}
	if !strings.Contains(string(raw), "appendonly") {
		t.Error("the manifest must tell operators how Redis must persist")
	}
}

// TestSystemdUnit: hardened, reloads with SIGHUP, and accepted by
// systemd-analyze verify where systemd is installed.
func TestSystemdUnit(t *testing.T) {
	raw, err := os.ReadFile("systemd/forgetmenot.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "ProtectHome=yes", "PrivateTmp=yes",
		"CapabilityBoundingSet=\n", "SystemCallFilter=@system-service", "ExecReload=/bin/kill -HUP $MAINPID", "EnvironmentFile="} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	// The service's dynamic user, in its own user namespace, reads the
	// configuration as "others": the install steps must leave it readable
	// (a 0750 root directory stopped the start), and only the environment
	// file, read by systemd as root, private.
	for _, want := range []string{"install -d -m 0755 /etc/forgetmenot", "install -m 0644 configs/owners.yaml", "chmod -R a+rX /etc/forgetmenot/email-templates", "install -m 0600 deploy/systemd/forgetmenot.env"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit's install steps lack %q", want)
		}
	}
	if strings.Contains(unit, "-m 0750 /etc/forgetmenot") {
		t.Error("the install steps make /etc/forgetmenot unreadable to the service's dynamic user")
	}
	env, err := os.ReadFile("systemd/forgetmenot.env")
	if err != nil {
		t.Fatal(err)
	}
	checkVariables(t, "systemd/forgetmenot.env", string(env))
	checkVariables(t, "systemd/forgetmenot.service", unit)
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed; the unit was not verified by systemd")
		return
	}
	// verify checks that ExecStart exists: point it at a real build.
	dir := t.TempDir()
	bin := filepath.Join(dir, "forgetmenot")
	run(t, "..", "go", "build", "-o", bin, "./cmd/forgetmenot")
	unitFile := filepath.Join(dir, "forgetmenot.service")
	if err := os.WriteFile(unitFile, []byte(strings.ReplaceAll(unit, "/usr/local/bin/forgetmenot", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unitFile).CombinedOutput()
	if err != nil || strings.Contains(string(out), "forgetmenot.service:") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
