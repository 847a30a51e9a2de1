package configs_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/router"
)

func TestShippedExamplesLoad(t *testing.T) {
	roster, err := configs.LoadRoster("owners.yaml")
	if err != nil {
		t.Fatalf("the shipped owners.yaml must load: %v", err)
	}
	rules, err := configs.LoadRouting("routing.yaml", roster)
	if err != nil {
		t.Fatalf("the shipped routing.yaml must load: %v", err)
	}
	if len(roster.Owners()) < 5 || len(rules.Rules) < 3 {
		t.Errorf("the examples should show a realistic team: %d owners, %d rules", len(roster.Owners()), len(rules.Rules))
	}
	if o, _ := roster.Owner("ruben"); o.Active {
		t.Error("the example's inactive owner should load as inactive")
	}
	if o, _ := roster.Owner("bas"); o.DiscourseUsername != "bas.jansen" {
		t.Errorf("bas's forum account = %q, want the example's bas.jansen", o.DiscourseUsername)
	}
	if o, _ := roster.Owner("anna"); !o.Active || o.Capacity != 25 {
		t.Errorf("anna = %+v", o)
	}
}

func TestBadConfigsNameFileAndLine(t *testing.T) {
	tests := []struct {
		file string
		want string // file:line and the problem
	}{
		{"bad/owner_unknown_team.yaml", `bad/owner_unknown_team.yaml:9: owner "bas": team "suport" is not declared (known: support)`},
		{"bad/owner_typo_field.yaml", `bad/owner_typo_field.yaml:8: unknown field "capcity" (known here: active, away, calendar, capacity, discourse_username, email, id,`},
		{"bad/owner_bad_email.yaml", `bad/owner_bad_email.yaml:4: owner "anna": email "anna at example.nl" is not a valid address`},
		{"bad/owner_duplicate.yaml", `bad/owner_duplicate.yaml:9: owner "anna" is declared twice (first on line 4)`},
		{"bad/owner_zero_capacity.yaml", `bad/owner_zero_capacity.yaml:4: owner "anna": capacity must be at least 1`},
		{"bad/owner_bad_language.yaml", `bad/owner_bad_language.yaml:4: owner "anna": language "dutch" is not a two-letter`},
		{"bad/owner_bad_discourse_username.yaml", `bad/owner_bad_discourse_username.yaml:4: owner "anna": discourse_username "@anna de vries" is not a Discourse username`},
		{"bad/owner_duplicate_discourse_username.yaml", `bad/owner_duplicate_discourse_username.yaml:10: owner "bas": discourse_username "Anna_DV" is already owner "anna"'s`},
		{"bad/team_unknown_lead.yaml", `bad/team_unknown_lead.yaml:2: team "support": lead "boss" is not an owner`},
		{"bad/team_without_owners.yaml", `bad/team_without_owners.yaml:3: team "billing" has no owners`},
		{"bad/missing.yaml", `no such file`},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := configs.LoadRoster("testdata/" + tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestBadRoutingNamesFileAndLine(t *testing.T) {
	roster, err := configs.LoadRoster("testdata/owners_ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file string
		want string
	}{
		{"bad/routing_unknown_team.yaml", `bad/routing_unknown_team.yaml:6: rule "billing": team "billing" is not a team in the owners file`},
		{"bad/routing_bad_regex.yaml", `bad/routing_bad_regex.yaml:3: rule "orders": subject_pattern is not a valid regular expression`},
		{"bad/routing_no_conditions.yaml", `bad/routing_no_conditions.yaml:3: rule "everything" has no conditions`},
		{"bad/routing_unknown_default.yaml", `bad/routing_unknown_default.yaml:2: default_team "sales" is not a team`},
		{"bad/routing_unknown_channel.yaml", `bad/routing_unknown_channel.yaml:3: rule "sms": unknown channel "sms"`},
		{"bad/routing_missing_default.yaml", `default_team is required`},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := configs.LoadRouting("testdata/"+tc.file, roster)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
	rules, err := configs.LoadRouting("testdata/routing_ok.yaml", roster)
	if err != nil || rules.Rules[0].Keywords[0] != "refund" {
		t.Fatalf("ok routing: %v %+v (keywords are matched lower-case)", err, rules)
	}
}

func TestEnvironment(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		clearEnv(t)
		c, err := configs.FromEnv()
		if err != nil {
			t.Fatal(err)
		}
		// The default listens on this host only: with no token that is the
		// only safe place (issue 10).
		if c.HTTPAddr != "127.0.0.1:8080" || c.OwnersFile != "configs/owners.yaml" || c.RoutingFile != "configs/routing.yaml" ||
			c.ReopenWindow.D() != 14*24*time.Hour || c.RedisURL != "" || c.Namespace != "fmn" {
			t.Fatalf("defaults = %+v", c)
		}
		if c.DaemonURL() != "http://127.0.0.1:8080" {
			t.Errorf("CLI default URL = %s", c.DaemonURL())
		}
	})
	t.Run("values", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("FORGETMENOT_REDIS_URL", "rediss://:pw@redis.internal:6380/2")
		t.Setenv("FORGETMENOT_REOPEN_WINDOW", "36h")
		t.Setenv("FORGETMENOT_WEBHOOK_SECRET", "old-secret-0123456789, new-secret-0123456789")
		t.Setenv("FORGETMENOT_HTTP_ADDR", "127.0.0.1:9090")
		c, err := configs.FromEnv()
		if err != nil {
			t.Fatal(err)
		}
		if c.ReopenWindow.D() != 36*time.Hour || len(c.WebhookSecret) != 2 || c.DaemonURL() != "http://127.0.0.1:9090" {
			t.Fatalf("parsed = %+v", c)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("FORGETMENOT_REDIS_URL", "redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002?read_only=false")
		if _, err := configs.FromEnv(); err != nil {
			t.Fatalf("a cluster URL with three seed nodes must be accepted: %v", err)
		}
	})
	bad := []struct{ key, value, want string }{
		{"FORGETMENOT_REOPEN_WINDOW", "two weeks", "FORGETMENOT_REOPEN_WINDOW"},
		{"FORGETMENOT_REDIS_URL", "http://localhost:6379", "FORGETMENOT_REDIS_URL: scheme"},
		{"FORGETMENOT_REDIS_URL", "redis+cluster://10.0.0.1:7000,10.0.0.2:7001/2", "FORGETMENOT_REDIS_URL: a Redis Cluster has only database 0"},
		{"FORGETMENOT_REDIS_URL", "redis+cluster://10.0.0.1:7000,10.0.0.2:", "FORGETMENOT_REDIS_URL: cluster node"},
		{"FORGETMENOT_REDIS_URL", "redis+cluster://10.0.0.1:7000,10.0.0.2:7001?read_only=true", "FORGETMENOT_REDIS_URL: read_only sends reads to replicas"},
		{"FORGETMENOT_REDIS_URL", "redis+cluster://10.0.0.1:7000?route_by_latency=1", "FORGETMENOT_REDIS_URL: route_by_latency sends reads to replicas"},
		{"FORGETMENOT_REDIS_URL", "redis+cluster://10.0.0.1:7000?route_randomly=TRUE", "FORGETMENOT_REDIS_URL: route_randomly sends reads to replicas"},
		{"FORGETMENOT_HTTP_ADDR", "8080", "FORGETMENOT_HTTP_ADDR"},
		{"FORGETMENOT_ROUTER_WORKERS", "0", "FORGETMENOT_ROUTER_WORKERS"},
		{"FORGETMENOT_ROUTER_WORKERS", "many", `FORGETMENOT_ROUTER_WORKERS: "many" is not valid: want a whole number`},
		{"FORGETMENOT_LOG_REPEAT_INTERVAL", "soon", "FORGETMENOT_LOG_REPEAT_INTERVAL"},
		{"FORGETMENOT_WEBHOOK_SECRET", "short", "FORGETMENOT_WEBHOOK_SECRET"},
		{"FORGETMENOT_LOG_FORMAT", "xml", "FORGETMENOT_LOG_FORMAT"},
		{"FORGETMENOT_NAMESPACE", "a:b", "FORGETMENOT_NAMESPACE"},
		{"FORGETMENOT_DEDUP_RETENTION", "10m", "FORGETMENOT_DEDUP_RETENTION"},
		{"FORGETMENOT_TRUSTED_PROXIES", "10.0.0.0/8,nginx", `FORGETMENOT_TRUSTED_PROXIES: "nginx" is neither a CIDR`},
		{"FORGETMENOT_CONSUMER_EXPIRY", "20s", "FORGETMENOT_CONSUMER_EXPIRY"},
		{"FORGETMENOT_INSECURE_OPEN_API", "yes please", `FORGETMENOT_INSECURE_OPEN_API: "yes please" is not valid: want true or false`},
	}
	for _, b := range bad {
		t.Run(b.key+"="+b.value, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(b.key, b.value)
			_, err := configs.FromEnv()
			if err == nil || !strings.Contains(err.Error(), b.want) {
				t.Fatalf("error = %v, want it to name %s", err, b.want)
			}
			if strings.Contains(err.Error(), "strconv") {
				t.Errorf("error %q shows Go internals", err)
			}
		})
	}
}

func TestUsageListsEveryVariable(t *testing.T) {
	var buf bytes.Buffer
	if err := configs.PrintUsage(&buf); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"FORGETMENOT_REDIS_URL", "FORGETMENOT_HTTP_ADDR", "127.0.0.1:8080", "FORGETMENOT_OWNERS_FILE", "FORGETMENOT_ROUTING_FILE",
		"FORGETMENOT_WEBHOOK_SECRET", "FORGETMENOT_API_TOKEN", "FORGETMENOT_REOPEN_WINDOW", "14d", "embedded in-memory Redis"} {
		if !strings.Contains(buf.String(), v) {
			t.Errorf("usage lacks %q:\n%s", v, buf.String())
		}
	}
}

func clearEnv(t *testing.T) {
	for _, v := range []string{"REDIS_URL", "REOPEN_WINDOW", "WEBHOOK_SECRET", "HTTP_ADDR", "ROUTER_WORKERS", "LOG_FORMAT", "NAMESPACE", "API_URL", "DEDUP_RETENTION",
		"TRUSTED_PROXIES", "CONSUMER_EXPIRY", "INSECURE_OPEN_API"} {
		t.Setenv("FORGETMENOT_"+v, "")
	}
}

var _ router.Directory = (*router.Roster)(nil)

func TestShippedTargetsLoad(t *testing.T) {
	roster, err := configs.LoadRoster("owners.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := configs.LoadTargets("targets.yaml", "owners.yaml", roster)
	if err != nil {
		t.Fatalf("the shipped targets.yaml must load: %v", err)
	}
	if p.DefaultCalendar == nil || p.DefaultCalendar.Location.String() != "Europe/Amsterdam" || p.ReminderAt != 0.75 {
		t.Errorf("policy = %+v", p)
	}
	if c := p.CalendarOf("chloe"); c == nil || c.Name != "uk-office" {
		t.Errorf("chloe's calendar = %+v, want uk-office", c)
	}
	if len(p.Targets) != 3 || p.Targets[2].FirstResponse.Hours != 4*time.Hour || p.Targets[2].Resolution.Days != 5 {
		t.Errorf("targets = %+v", p.Targets)
	}
	if len(p.Absences) != 1 || p.Absences[0].Owner != "joost" || p.Absences[0].Cover != "fatima" ||
		p.Absences[0].Until.Format(time.DateOnly) != "2027-01-04" {
		t.Errorf("absences = %+v", p.Absences)
	}
	if p.RateThreshold != 0.01 || len(p.RateAlert) != 1 {
		t.Errorf("rate watch = %v %v", p.RateThreshold, p.RateAlert)
	}
}

func TestBadTargetsNameFileAndLine(t *testing.T) {
	roster, err := configs.LoadRoster("testdata/owners_ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		targets, owners string
		want            string
	}{
		{"bad/targets_bad_zone.yaml", "owners_ok.yaml", `bad/targets_bad_zone.yaml:2: calendar "office": time_zone "Europe/Amsterdan" is not an IANA zone`},
		{"bad/targets_bad_span.yaml", "owners_ok.yaml", `bad/targets_bad_span.yaml:4: target "slow": resolution "five days"`},
		{"bad/targets_typo_field.yaml", "owners_ok.yaml", `bad/targets_typo_field.yaml:3: unknown field "first_respons" (known here:`},
		{"bad/targets_bad_hours.yaml", "owners_ok.yaml", `bad/targets_bad_hours.yaml:2: calendar "office": working hours must start before they end`},
		{"bad/targets_unknown_calendar.yaml", "owners_ok.yaml", `bad/targets_unknown_calendar.yaml:6: default_calendar "ofice" is not declared (known: office)`},
		{"bad/targets_rate.yaml", "owners_ok.yaml", `complaint_rate.threshold "0.01": want a percentage like 1%`},
		{"targets_ok.yaml", "bad/owner_bad_away.yaml", `bad/owner_bad_away.yaml:4: owner "anna": away until 2026-12-01 is not after 2026-12-21`},
		{"targets_ok.yaml", "bad/owner_unknown_calendar.yaml", `bad/owner_unknown_calendar.yaml:4: owner "anna": calendar "mars" is not declared in the targets file (known: office)`},
	} {
		t.Run(tc.targets+"+"+tc.owners, func(t *testing.T) {
			_, err := configs.LoadTargets("testdata/"+tc.targets, "testdata/"+tc.owners, roster)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// A YAML mistake is told in the file's terms: file, line, the field or the
// value, and what was expected there; never a Go type name.
func TestYAMLMistakesNameFieldAndLineNotGoTypes(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field", "teams:\n  - id: support\n    leed: anna\nowners: []\n", []string{":3: unknown field \"leed\" (known here: id, lead, name)"}},
		{"unknown top-level field", "teams:\n  - id: support\nownres: []\n", []string{":3: unknown field \"ownres\" (known here: owners, teams)"}},
		{"wrong kind", "teams:\n  - id: support\nowners:\n  - id: anna\n    name: Anna\n    email: anna@example.nl\n    teams: [support]\n    capacity: lots\n", []string{":8: \"lots\" is not a whole number"}},
		{"list expected", "teams:\n  - id: support\nowners:\n  - id: anna\n    teams: support\n", []string{":5: \"support\" is not a list"}},
		{"broken YAML", "teams:\n  - id: support\n   bad indent: [\n", []string{"not valid YAML"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := configs.LoadRoster(path)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), path+w) && !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
			for _, bad := range []string{"configs.", "YAML\"", "unmarshal", "!!"} {
				if strings.Contains(err.Error(), bad) {
					t.Errorf("error %q shows decoder internals (%q)", err, bad)
				}
			}
			if !strings.HasPrefix(err.Error(), path) {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
}

// The default consumer name survives a restart (host name and port), and
// two processes on one host never share one.
func TestDefaultConsumerNameIsStablePerReplica(t *testing.T) {
	host, _ := os.Hostname()
	a := configs.Config{HTTPAddr: ":8080"}.ConsumerNameOrDefault()
	if a != host+"-8080" || a != (configs.Config{HTTPAddr: "0.0.0.0:8080"}.ConsumerNameOrDefault()) {
		t.Errorf("default consumer name %q, want %q for port 8080 on any interface", a, host+"-8080")
	}
	if b := (configs.Config{HTTPAddr: "127.0.0.1:8081"}.ConsumerNameOrDefault()); b == a {
		t.Errorf("two ports on one host share the consumer name %q", a)
	}
	if r := (configs.Config{HTTPAddr: "127.0.0.1:0"}.ConsumerNameOrDefault()); !strings.Contains(r, "-pid") {
		t.Errorf("a random port gives %q, want the pid in it", r)
	}
	if n := (configs.Config{HTTPAddr: ":8080", ConsumerName: "fmn-0"}.ConsumerNameOrDefault()); n != "fmn-0" {
		t.Errorf("FORGETMENOT_CONSUMER_NAME ignored: %q", n)
	}
}
