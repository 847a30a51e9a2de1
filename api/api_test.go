package api_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
)

func TestMain(m *testing.M) { os.Exit(testredis.Main(m)) }

func handler(t *testing.T, token string) http.Handler {
	return accessHandler(t, api.Config{Access: api.Access{Token: token}})
}

func TestAccessControl(t *testing.T) {
	tests := []struct {
		name, token, remote, auth string
		headers                   map[string]string
		want                      int
	}{
		{"no token, loopback", "", "127.0.0.1:5000", "", nil, 200},
		{"no token, IPv6 loopback", "", "[::1]:5000", "", nil, 200},
		{"no token, remote", "", "198.51.100.4:5000", "", nil, 403},
		{"no token, loopback, sent by a page of another site", "", "127.0.0.1:5000", "", map[string]string{"Origin": "http://evil.example"}, 403},
		{"no token, loopback, addressed to another name (DNS rebinding)", "", "127.0.0.1:5000", "", map[string]string{"Host": "evil.example:8080"}, 403},
		{"token, none sent", "tok-123", "127.0.0.1:5000", "", nil, 401},
		{"token, wrong one", "tok-123", "198.51.100.4:5000", "Bearer tok-124", nil, 401},
		{"token, not bearer", "tok-123", "198.51.100.4:5000", "Basic dG9rLTEyMw==", nil, 401},
		{"token, right one", "tok-123", "198.51.100.4:5000", "Bearer tok-123", nil, 200},
		{"token, scheme in other case (RFC 7235)", "tok-123", "198.51.100.4:5000", "bearer tok-123", nil, 200},
		{"token, prefix of the right one", "tok-123", "198.51.100.4:5000", "Bearer tok-12", nil, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := handler(t, tc.token)
			req := httptest.NewRequest("GET", "/v1/owners", nil)
			req.Host = "localhost:8080"
			req.RemoteAddr = tc.remote
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			for k, v := range tc.headers {
				if k == "Host" {
					req.Host = v
					continue
				}
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tc.want)
			}
		})
	}
}

func TestHealthIsOpenAndBadInputIsNamed(t *testing.T) {
	h := handler(t, "tok-123")
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "198.51.100.4:5000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("%s: %d, want %d without a token (probes must work)", path, rec.Code, want)
		}
	}
	cases := []struct {
		method, path, body string
		want               int
		says               string
	}{
		{"GET", "/v1/complaints?status=pending", "", 400, "status"},
		{"GET", "/v1/complaints?limit=-1", "", 400, "limit"},
		{"GET", "/v1/complaints?owner=ghost", "", 400, "unknown owner"},
		{"POST", "/v1/complaints/C-1/close", `{"resolution":`, 400, "not valid JSON"},
		{"POST", "/v1/complaints/C-1/close", `{"resolution":"x","colour":"red"}`, 400, "unknown field"},
		{"POST", "/v1/complaints/C-1/close", `{"resolution":"x"}`, 404, "not found"},
		{"POST", "/v1/deadletters/1-1/retry", ``, 404, "no such dead letter"},
		{"GET", "/v1/messages/M-unknown", "", 404, "not on a complaint"},
	}
	for _, tc := range cases {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer tok-123")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.says) {
			t.Errorf("%s %s: %d %s, want %d saying %q", tc.method, tc.path, rec.Code, rec.Body, tc.want, tc.says)
		}
	}
}
