package api_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/internal/httpx"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

func accessHandler(t *testing.T, cfg api.Config) http.Handler {
	rdb, keys := testredis.Client(t)
	store := queue.NewStore(rdb, keys, 0)
	roster, _ := router.NewRoster([]router.Team{{ID: "s"}}, []router.Owner{{ID: "a", Name: "A", Email: "a@example.com", Teams: []string{"s"}, Capacity: 1, Active: true}})
	r, err := router.New(router.Config{Store: store, Directory: roster, Rules: &router.Rules{DefaultTeam: "s"}, ReopenWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Complaints, cfg.DeadLetters = r, store
	if cfg.Store == nil {
		cfg.Store = store
	}
	return api.New(cfg)
}

// nginxLike is a reverse proxy on loopback in front of backend that, like
// nginx with proxy_add_x_forwarded_for, appends the address it saw the
// caller come from: internetCaller stands for a caller on the Internet.
func nginxLike(t *testing.T, backend string, internetCaller string) *httptest.Server {
	target, _ := url.Parse(backend)
	p := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		prior := pr.In.Header.Values("X-Forwarded-For")
		pr.Out.Header["X-Forwarded-For"] = append(prior, internetCaller)
	}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestNoTokenBehindAProxyOnThisHostIsNotOpen: without a token the API answers
// callers on this host only, and a reverse proxy on this host does not make
// every Internet caller local, whether or not it is declared; nor can a
// caller talk its way in with forwarding headers.
func TestNoTokenBehindAProxyOnThisHostIsNotOpen(t *testing.T) {
	tests := []struct {
		name      string
		proxies   []string
		via       string // "direct" or the address the proxy saw the caller at
		spoof     string // X-Forwarded-For the caller sends itself
		wantAdmit bool
	}{
		{"local caller, direct", nil, "direct", "", true},
		{"local caller claiming to be relayed", nil, "direct", "203.0.113.9", false},
		{"Internet caller via undeclared proxy", nil, "203.0.113.9", "", false},
		{"Internet caller via undeclared proxy, spoofing loopback", nil, "203.0.113.9", "127.0.0.1", false},
		{"Internet caller via declared proxy", []string{"127.0.0.1/32"}, "203.0.113.9", "", false},
		{"Internet caller via declared proxy, spoofing loopback", []string{"127.0.0.1/32"}, "203.0.113.9", "127.0.0.1", false},
		{"local caller via declared proxy", []string{"127.0.0.1/32"}, "127.0.0.1", "", true},
		{"local CLI beside a declared proxy", []string{"127.0.0.0/8"}, "direct", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proxies, err := httpx.ParseTrustedProxies(tc.proxies)
			if err != nil {
				t.Fatal(err)
			}
			backend := httptest.NewServer(accessHandler(t, api.Config{TrustedProxies: proxies}))
			t.Cleanup(backend.Close)
			base := backend.URL
			if tc.via != "direct" {
				base = nginxLike(t, backend.URL, tc.via).URL
			}
			hdr := map[string]string{}
			if tc.spoof != "" {
				hdr["X-Forwarded-For"] = tc.spoof
			}
			got := get(t, base+"/v1/owners", hdr)
			if want := map[bool]int{true: 200, false: 403}[tc.wantAdmit]; got != want {
				t.Fatalf("GET /v1/owners: %d, want %d", got, want)
			}
		})
	}
}

// TestOpenAPIAdmitsEveryoneAndATokenWins: the explicit open mode admits a
// relayed Internet caller; a token, when set, is asked of everyone.
func TestOpenAPIAdmitsEveryoneAndATokenWins(t *testing.T) {
	for _, tc := range []struct {
		access api.Access
		auth   string
		want   int
	}{
		{api.Access{Open: true}, "", 200},
		{api.Access{Open: true, Token: "tok-123"}, "", 401},
		{api.Access{Open: true, Token: "tok-123"}, "Bearer tok-123", 200},
	} {
		backend := httptest.NewServer(accessHandler(t, api.Config{Access: tc.access}))
		proxy := nginxLike(t, backend.URL, "203.0.113.9")
		hdr := map[string]string{}
		if tc.auth != "" {
			hdr["Authorization"] = tc.auth
		}
		if got := get(t, proxy.URL+"/v1/owners", hdr); got != tc.want {
			t.Errorf("%+v %q: %d, want %d", tc.access, tc.auth, got, tc.want)
		}
		backend.Close()
	}
}

func TestMetricsTokenIsAskedWhenSet(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "forgetmenot_up 1\n") })
	for _, tc := range []struct {
		token, auth string
		want        int
	}{
		{"", "", 200},
		{"m-secret-0123456789", "", 401},
		{"m-secret-0123456789", "Bearer wrong", 401},
		{"m-secret-0123456789", "Basic bS1zZWNyZXQ=", 401},
		{"m-secret-0123456789", "Bearer m-secret-0123456789", 200},
	} {
		h := accessHandler(t, api.Config{Metrics: metrics, MetricsToken: tc.token, Access: api.Access{Token: "api-token"}})
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.RemoteAddr = "198.51.100.4:5000"
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("token %q auth %q: %d, want %d", tc.token, tc.auth, rec.Code, tc.want)
		}
		if tc.want == 401 && (strings.Contains(rec.Body.String(), "forgetmenot_up") || rec.Header().Get("WWW-Authenticate") == "") {
			t.Errorf("a refused scrape must show no metric and ask for a bearer token: %s", rec.Body)
		}
	}
}

type downStore struct{}

func (downStore) Ping(context.Context) error {
	return errors.New("dial tcp redis.internal:6379: connection refused")
}

// TestReadyzTellsDetailsOnlyToAuthenticatedCallers: everyone gets the status
// code a probe needs; what is wrong (component errors naming people or
// servers) only a caller the API admits.
func TestReadyzTellsDetailsOnlyToAuthenticatedCallers(t *testing.T) {
	secret := "slack: owner jane.doe@example.com not found"
	checks := map[string]func(context.Context) error{
		"slack": func(context.Context) error { return errors.New(secret) },
	}
	cases := []struct {
		name       string
		store      api.Pinger
		auth       string
		wantStatus int
		wantDetail bool
	}{
		{"degraded, anonymous", nil, "", 200, false},
		{"degraded, wrong token", nil, "Bearer nope", 200, false},
		{"degraded, authenticated", nil, "Bearer tok-123", 200, true},
		{"redis down, anonymous", downStore{}, "", 503, false},
		{"redis down, authenticated", downStore{}, "Bearer tok-123", 503, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := accessHandler(t, api.Config{Access: api.Access{Token: "tok-123"}, Checks: checks, Store: tc.store})
			req := httptest.NewRequest("GET", "/readyz", nil)
			req.RemoteAddr = "198.51.100.4:5000"
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body := rec.Body.String()
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantStatus, body)
			}
			leaked := strings.Contains(body, "jane.doe") || strings.Contains(body, "redis.internal") || strings.Contains(body, "slack")
			if leaked != tc.wantDetail {
				t.Fatalf("details shown: %v, want %v: %s", leaked, tc.wantDetail, body)
			}
			if !strings.Contains(body, `"status"`) {
				t.Fatalf("no status: %s", body)
			}
		})
	}
}
