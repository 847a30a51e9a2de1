package configs_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/configs"
)

// Secrets are known by their names; this list is what that rule must
// find, so a variable added with a secret's name, or one that is secret
// without the name, is noticed here.
func TestSecretsAreKnownByNameAndNeverShown(t *testing.T) {
	env := func(name string) (string, bool) { return "value-of-" + name, true }
	var secret []string
	for _, s := range configs.Settings(env) {
		if s.Secret {
			secret = append(secret, strings.TrimPrefix(s.Name, "FORGETMENOT_"))
			if s.Value != configs.Redacted {
				t.Errorf("%s = %q, want %s", s.Name, s.Value, configs.Redacted)
			}
		}
	}
	slices.Sort(secret)
	want := []string{"API_TOKEN", "CSAT_SECRET", "DISCOURSE_API_KEY", "DISCOURSE_WEBHOOK_SECRET", "METRICS_TOKEN",
		"REPORT_LINK_SECRET", "SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SMTP_PASSWORD", "WEBHOOK_SECRET"}
	if !slices.Equal(secret, want) {
		t.Errorf("secret variables = %v, want %v", secret, want)
	}
	var buf bytes.Buffer
	if err := configs.WriteSettings(&buf, configs.Settings(env)); err != nil {
		t.Fatal(err)
	}
	for _, name := range want {
		if strings.Contains(buf.String(), "value-of-FORGETMENOT_"+name+"\n") {
			t.Errorf("the text shows the value of %s", name)
		}
	}
}

func TestURLsAreShownWithoutCredentials(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://:pw@redis:6379/0":                "redis://redis:6379/0",
		"rediss://user:pw@redis:6380/2":           "rediss://redis:6380/2",
		"redis+cluster://:pw@n1:7000,n2:7001":     "redis+cluster://n1:7000,n2:7001",
		"https://forum.example.com":               "https://forum.example.com",
		"http://bad host/%zz":                     "(unparseable)",
		"https://support.example.com/path?x=1#yz": "https://support.example.com/path?x=1#yz",
	} {
		if got := configs.RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// A value with a newline in it cannot break the layout into lines that
// look like other settings.
func TestControlCharactersInValuesAreQuoted(t *testing.T) {
	env := func(name string) (string, bool) {
		if name == "FORGETMENOT_CONSUMER_NAME" {
			return "replica\nFORGETMENOT_API_TOKEN (set in the environment)", true
		}
		return "", false
	}
	var buf bytes.Buffer
	if err := configs.WriteSettings(&buf, configs.Settings(env)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `    value:   "replica\nFORGETMENOT_API_TOKEN (set in the environment)"`+"\n") {
		t.Errorf("the value must be quoted on one line:\n%s", buf.String())
	}
}
