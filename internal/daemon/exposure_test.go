package daemon_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/daemon"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
)

func exposureConfig(addr string) configs.Config {
	return configs.Config{
		Namespace: testredis.Namespace(), HTTPAddr: addr,
		OwnersFile: "../../configs/owners.yaml", RoutingFile: "../../configs/routing.yaml",
		ReopenWindow: configs.Duration(14 * 24 * time.Hour), MaxMessageBytes: 1 << 20,
		RouterWorkers: 1, DeliveryWorkers: 1, MaxAttempts: 3, ReclaimIdle: configs.Duration(5 * time.Second),
		ShutdownTimeout: configs.Duration(5 * time.Second), LogLevel: "info", LogFormat: "text",
	}
}

// TestServeRefusesToListenBeyondThisHostWithoutSecrets: on an address other
// hosts can reach, a surface without its secret is a forgotten variable, not
// a choice; serve stops and names the variables that fix it. Explicitly
// opened surfaces start, and say so loudly.
func TestServeRefusesToListenBeyondThisHostWithoutSecrets(t *testing.T) {
	const token, secret = "api-token-for-tests", "webhook-secret-0123456789"
	tests := []struct {
		name    string
		addr    string
		set     func(*configs.Config)
		refuse  []string // what the error must name; nil: it starts
		refrain []string // what the error must not name
		warns   []string
	}{
		{"every interface, nothing set", ":0", nil,
			[]string{"FORGETMENOT_API_TOKEN", "FORGETMENOT_INSECURE_OPEN_API", "FORGETMENOT_WEBHOOK_SECRET", "FORGETMENOT_INSECURE_OPEN_WEBHOOK", "127.0.0.1"}, nil, nil},
		{"IPv4 wildcard, token only", "0.0.0.0:0", func(c *configs.Config) { c.APIToken = token },
			[]string{"FORGETMENOT_WEBHOOK_SECRET"}, []string{"FORGETMENOT_API_TOKEN is not set"}, nil},
		{"IPv6 wildcard, secret only", "[::]:0", func(c *configs.Config) { c.WebhookSecret = configs.Secrets{secret} },
			[]string{"FORGETMENOT_API_TOKEN"}, []string{"FORGETMENOT_WEBHOOK_SECRET is not set"}, nil},
		{"loopback, nothing set", "127.0.0.1:0", nil, nil, nil, []string{"callers on this host only"}},
		{"localhost, nothing set", "localhost:0", nil, nil, nil, nil},
		{"every interface, both secrets", ":0", func(c *configs.Config) { c.APIToken, c.WebhookSecret = token, configs.Secrets{secret} },
			nil, nil, []string{"OPEN METRICS"}},
		{"every interface, both secrets and a metrics token", ":0", func(c *configs.Config) {
			c.APIToken, c.WebhookSecret, c.MetricsToken = token, configs.Secrets{secret}, "metrics-token-0123456789"
		}, nil, nil, nil},
		{"every interface, explicitly open", ":0", func(c *configs.Config) { c.InsecureOpenAPI, c.InsecureOpenWebhook = true, true },
			nil, nil, []string{"OPEN API", "OPEN WEBHOOK", "OPEN METRICS"}},
		{"open switch beside a token", "127.0.0.1:0", func(c *configs.Config) { c.APIToken, c.InsecureOpenAPI = token, true },
			nil, nil, []string{"FORGETMENOT_INSECURE_OPEN_API is ignored"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := exposureConfig(tc.addr)
			cfg.RedisURL = testredis.URL(t)
			if tc.set != nil {
				tc.set(&cfg)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			var logs testkit.LockedBuffer
			d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if tc.refuse != nil {
				if err == nil {
					t.Fatalf("started on %s; want a refusal", tc.addr)
				}
				for _, want := range tc.refuse {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("refusal does not name %s: %v", want, err)
					}
				}
				for _, not := range tc.refrain {
					if strings.Contains(err.Error(), not) {
						t.Errorf("refusal names %q though it is set: %v", not, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			d.Close()
			for _, want := range tc.warns {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("start log lacks %q:\n%s", want, logs.String())
				}
			}
			if tc.warns == nil && strings.Contains(logs.String(), "OPEN ") {
				t.Errorf("an open-mode warning without an open mode:\n%s", logs.String())
			}
		})
	}
}

// TestWebhookAndAPIBehindTrustedProxy: with nginx on this host declared as a
// trusted proxy, an Internet caller it relays is not local, so unsigned
// complaints and the API without a token are refused for it, while the
// local CLI and local form handlers keep working.
func TestWebhookAndAPIBehindTrustedProxy(t *testing.T) {
	r := start(t, testredis.URL(t), func(c *configs.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} })
	target, _ := url.Parse(r.base)
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Header["X-Forwarded-For"] = append(pr.In.Header.Values("X-Forwarded-For"), "203.0.113.9")
	}})
	defer proxy.Close()
	body := `{"source_id":"relayed-1","customer":{"email":"mallory@example.net"},"subject":"x","body":"unsigned from the Internet"}`
	for _, spoof := range []string{"", "127.0.0.1"} {
		req, _ := http.NewRequest("POST", proxy.URL+"/v1/messages", strings.NewReader(body))
		if spoof != "" {
			req.Header.Set("X-Forwarded-For", spoof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !bytes.Contains(msg, []byte("FORGETMENOT_WEBHOOK_SECRET")) {
			t.Fatalf("unsigned webhook relayed from the Internet (spoof %q): %d %s, want 403", spoof, resp.StatusCode, msg)
		}
		resp, err = http.Get(proxy.URL + "/v1/complaints")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("API relayed from the Internet without a token: %d, want 403", resp.StatusCode)
		}
	}
	if code, _ := r.call("GET", "/v1/complaints", nil, ""); code != 200 {
		t.Fatalf("local API call: %d", code)
	}
	if code, out := r.post(`{"source_id":"local-1","customer":{"email":"ann@example.org"},"subject":"x","body":"a local form handler"}`, ""); code != http.StatusAccepted {
		t.Fatalf("local unsigned webhook: %d %v", code, out)
	}
	if code, out := r.call("GET", "/v1/complaints", nil, ""); code != 200 || strings.Contains(toJSON(out), "mallory") {
		t.Fatalf("the refused message must not be stored: %d %v", code, out)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
