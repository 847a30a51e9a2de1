package cli_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/forgetmenot/forgetmenot/configs"
)

// secretValues sets every secret variable (and a password in REDIS_URL)
// to a value that must never be printed.
func secretValues(t *testing.T) map[string]string {
	t.Helper()
	secrets := map[string]string{
		"FORGETMENOT_WEBHOOK_SECRET":           "hook-secret-0123456789,hook-secret-abcdefghij",
		"FORGETMENOT_API_TOKEN":                "api-token-0123456789",
		"FORGETMENOT_DISCOURSE_WEBHOOK_SECRET": "discourse-hook-0123456789",
		"FORGETMENOT_DISCOURSE_API_KEY":        "discourse-key-0123456789",
		"FORGETMENOT_SLACK_BOT_TOKEN":          "xoxb-bot-0123456789",
		"FORGETMENOT_SLACK_APP_TOKEN":          "xapp-app-0123456789",
		"FORGETMENOT_SLACK_SIGNING_SECRET":     "signing-0123456789",
		"FORGETMENOT_CSAT_SECRET":              "csat-secret-0123456789",
		"FORGETMENOT_REPORT_LINK_SECRET":       "report-secret-0123456789",
		"FORGETMENOT_SMTP_PASSWORD":            "smtp-password-0123456789",
		"FORGETMENOT_METRICS_TOKEN":            "metrics-token-0123456789",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	t.Setenv("FORGETMENOT_REDIS_URL", "redis://:redis-password-0123456789@redis.internal:6379/0")
	secrets["FORGETMENOT_REDIS_URL"] = "redis-password-0123456789"
	return secrets
}

// configVariables are the variables of configs.Config, read from its tags
// here rather than through the code under test.
func configVariables() []string {
	var out []string
	t := reflect.TypeOf(configs.Config{})
	for i := range t.NumField() {
		if key := t.Field(i).Tag.Get("envconfig"); key != "" {
			out = append(out, configs.Var(key))
		}
	}
	return out
}

type configJSON struct {
	Settings []configs.Setting `json:"settings"`
}

func TestConfigJSONListsEveryVariable(t *testing.T) {
	secretValues(t)
	t.Setenv("FORGETMENOT_ROUTER_WORKERS", "12")
	t.Setenv("FORGETMENOT_NAMESPACE", "  ") // blank counts as unset, as for the daemon
	code, out, errOut := run("config", "--json")
	var got configJSON
	if code != 0 || errOut != "" {
		t.Fatalf("config --json: exit %d, stderr %q", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("config --json is not JSON: %v\n%s", err, out)
	}
	if !strings.Contains(out, "<lang>.tmpl") {
		t.Errorf("descriptions must read as written, not with \\u003c escapes")
	}
	byName := map[string]configs.Setting{}
	for _, s := range got.Settings {
		byName[s.Name] = s
		if s.Description == "" {
			t.Errorf("%s has no description", s.Name)
		}
	}
	vars := configVariables()
	if len(got.Settings) != len(vars) {
		t.Errorf("%d settings, want one for each of the %d variables", len(got.Settings), len(vars))
	}
	for _, v := range vars {
		if _, ok := byName[v]; !ok {
			t.Errorf("config --json lacks %s", v)
		}
	}
	want := map[string]configs.Setting{
		"FORGETMENOT_ROUTER_WORKERS": {Value: "12", Default: "8", Source: configs.SourceEnvironment},
		"FORGETMENOT_NAMESPACE":      {Value: "fmn", Default: "fmn", Source: configs.SourceDefault},
		"FORGETMENOT_SMTP_HOST":      {Value: "", Default: "", Source: configs.SourceUnset},
		"FORGETMENOT_API_TOKEN":      {Value: configs.Redacted, Source: configs.SourceEnvironment, Secret: true},
		"FORGETMENOT_REDIS_URL":      {Value: "redis://redis.internal:6379/0", Source: configs.SourceEnvironment},
	}
	for name, w := range want {
		g := byName[name]
		if g.Value != w.Value || g.Default != w.Default || g.Source != w.Source || g.Secret != w.Secret {
			t.Errorf("%s = %+v, want value %q, default %q, source %q, secret %v", name, g, w.Value, w.Default, w.Source, w.Secret)
		}
	}
}

// The text form fits a 100-column terminal: only a value that cannot be
// broken without changing it may be wider.
func TestConfigTextFitsIn100Columns(t *testing.T) {
	long := "https://support.example.com/" + strings.Repeat("x", 100)
	t.Setenv("FORGETMENOT_PUBLIC_URL", long)
	t.Setenv("FORGETMENOT_CATEGORIES", strings.Repeat("a long category name,", 8)+"other")
	code, out, errOut := run("config")
	if code != 0 || errOut != "" {
		t.Fatalf("config: exit %d, stderr %q", code, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		if utf8.RuneCountInString(line) > 100 && strings.TrimSpace(line) != "value:   "+long {
			t.Errorf("line of %d columns:\n%s", utf8.RuneCountInString(line), line)
		}
	}
	for _, v := range configVariables() {
		if !strings.Contains(out, "\n"+v+" (") && !strings.HasPrefix(out, v+" (") {
			t.Errorf("config lacks a block for %s", v)
		}
	}
	if !strings.Contains(out, "FORGETMENOT_PUBLIC_URL (set in the environment)\n    value:   "+long+"\n") {
		t.Errorf("an unbreakable value must be shown whole on its line:\n%s", out)
	}
}

func TestConfigRedactsSecretsInTextAndJSON(t *testing.T) {
	secrets := secretValues(t)
	for _, args := range [][]string{{"config"}, {"config", "--json"}} {
		code, out, errOut := run(args...)
		if code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", args, code, errOut)
		}
		for name, v := range secrets {
			for _, part := range strings.Split(v, ",") {
				if strings.Contains(out+errOut, part) {
					t.Errorf("%q shows the secret of %s", args, name)
				}
			}
			if name != "FORGETMENOT_REDIS_URL" && !strings.Contains(out, configs.Redacted) {
				t.Errorf("%q does not say %s is set (%s)", args, name, configs.Redacted)
			}
		}
	}
	_, out, _ := run("config")
	if !strings.Contains(out, "FORGETMENOT_SMTP_PASSWORD (set in the environment)\n    value:   "+configs.Redacted+"\n") {
		t.Errorf("a set secret must read %s:\n%s", configs.Redacted, out)
	}
}
