package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/forgetmenot/forgetmenot/internal/httpx"
)

// TestRealClientBelievesOnlyTrustedProxies: a forwarding header counts only
// when a trusted proxy sent it, and then only its rightmost untrusted hop;
// nothing a caller writes into the headers can make it local.
func TestRealClientBelievesOnlyTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		proxies []string
		peer    string
		headers map[string][]string
		client  string
		local   bool
	}{
		{"direct local caller", nil, "127.0.0.1:5000", nil, "127.0.0.1", true},
		{"direct IPv6 local caller", nil, "[::1]:5000", nil, "::1", true},
		{"direct remote caller", nil, "198.51.100.4:5000", nil, "198.51.100.4", false},
		{"remote caller claims to be local", nil, "198.51.100.4:5000",
			map[string][]string{"X-Forwarded-For": {"127.0.0.1"}}, "198.51.100.4", false},
		{"remote caller claims via Forwarded", []string{"10.0.0.0/8"}, "198.51.100.4:5000",
			map[string][]string{"Forwarded": {"for=127.0.0.1"}}, "198.51.100.4", false},
		{"nginx on this host, not declared: the Internet caller is not local", nil, "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.9"}}, "127.0.0.1", false},
		{"nginx on this host, not declared, X-Real-IP only", nil, "127.0.0.1:5000",
			map[string][]string{"X-Real-Ip": {"203.0.113.9"}}, "127.0.0.1", false},
		{"nginx on this host, declared: the Internet caller is named", []string{"127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.9"}}, "203.0.113.9", false},
		{"caller's own X-Forwarded-For left of the proxy's hop is ignored", []string{"127.0.0.1/32"}, "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"127.0.0.1, 203.0.113.9"}}, "203.0.113.9", false},
		{"spoofed hop in a second header line is ignored too", []string{"127.0.0.1/32"}, "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"127.0.0.1", "203.0.113.9"}}, "203.0.113.9", false},
		{"a local caller through the declared proxy stays local", []string{"127.0.0.1/32"}, "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"127.0.0.1"}}, "127.0.0.1", true},
		{"the local CLI next to a declared proxy stays local", []string{"127.0.0.0/8"}, "127.0.0.1:5000", nil, "127.0.0.1", true},
		{"a chain of trusted proxies is walked", []string{"10.0.0.0/8", "127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"192.0.2.1, 198.51.100.7, 10.1.2.3"}}, "198.51.100.7", false},
		{"garbage from a trusted proxy names nobody", []string{"127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"localhost"}}, "unknown", false},
		{"hop with a port", []string{"10.0.0.0/8"}, "10.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"[2001:db8::7]:4711"}}, "2001:db8::7", false},
		{"IPv4-mapped peer matches an IPv4 proxy", []string{"10.0.0.0/8"}, "[::ffff:10.0.0.1]:5000",
			map[string][]string{"X-Forwarded-For": {"::ffff:198.51.100.8"}}, "198.51.100.8", false},
		// nginx's other common ways to name the client.
		{"declared proxy names the caller by X-Real-IP", []string{"127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"X-Real-Ip": {"203.0.113.9"}}, "203.0.113.9", false},
		{"declared proxy names the caller by Forwarded", []string{"127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"Forwarded": {"for=203.0.113.9;proto=https"}}, "203.0.113.9", false},
		{"Forwarded: quoted IPv6 with a port, the caller's own element ignored", []string{"127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"Forwarded": {`for=127.0.0.1, for="[2001:db8::17]:4711"`}}, "2001:db8::17", false},
		{"Forwarded: an obfuscated client names nobody", []string{"127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"Forwarded": {"for=_hidden"}}, "unknown", false},
		// Headers that disagree name nobody: not local, and no address the
		// caller chose counts for their limits.
		{"the caller's X-Forwarded-For says local, the proxy's X-Real-IP says not", []string{"127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"127.0.0.1"}, "X-Real-Ip": {"203.0.113.9"}}, "unknown", false},
		{"the caller's Forwarded says local, the proxy's X-Forwarded-For says not", []string{"127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.9"}, "Forwarded": {"for=127.0.0.1"}}, "unknown", false},
		{"a forged X-Forwarded-For beside the proxy's X-Real-IP", []string{"127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"198.51.100.77"}, "X-Real-Ip": {"203.0.113.9"}}, "unknown", false},
		// A header that names no client, or one the caller garbled, leaves
		// the client the other headers name (never local).
		{"Forwarded with no for= beside X-Forwarded-For", []string{"127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.9"}, "Forwarded": {"proto=https;host=support.example"}}, "203.0.113.9", false},
		{"the caller's garbled Forwarded beside the proxy's X-Real-IP", []string{"127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"X-Real-Ip": {"203.0.113.9"}, "Forwarded": {"for=garbage"}}, "203.0.113.9", false},
		{"the caller's garbled Forwarded beside a local X-Real-IP is not local", []string{"127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"X-Real-Ip": {"127.0.0.1"}, "Forwarded": {"for=garbage"}}, "127.0.0.1", false},
		{"every header names a local caller", []string{"127.0.0.1"}, "127.0.0.1:5000",
			map[string][]string{"X-Forwarded-For": {"127.0.0.1"}, "X-Real-Ip": {"::1"}}, "127.0.0.1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proxies, err := httpx.ParseTrustedProxies(tc.proxies)
			if err != nil {
				t.Fatal(err)
			}
			var got httpx.Client
			h := httpx.RealClient(proxies, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = httpx.ClientOf(r)
				if httpx.IsLoopback(r) != got.IsLoopback() || httpx.ClientIP(r) != got.String() {
					t.Error("the helpers disagree")
				}
			}))
			req := httptest.NewRequest("GET", "/", nil)
			req.Host = "127.0.0.1:8080"
			req.RemoteAddr = tc.peer
			for k, vs := range tc.headers {
				req.Header[k] = vs
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if got.String() != tc.client || got.IsLoopback() != tc.local {
				t.Fatalf("client %s local %v, want %s local %v", got, got.IsLoopback(), tc.client, tc.local)
			}
		})
	}
}

func TestClientOfWithoutMiddlewareTrustsNoProxy(t *testing.T) {
	req := httptest.NewRequest("GET", "/", nil)
	req.Host = "localhost:8080"
	req.RemoteAddr = "127.0.0.1:5000"
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	if httpx.IsLoopback(req) {
		t.Fatal("a relayed request must not be local")
	}
	if got := httpx.ClientIP(req); got != "127.0.0.1" {
		t.Fatalf("client %s, want the peer", got)
	}
}

func TestParseTrustedProxiesNamesTheBadEntry(t *testing.T) {
	if _, err := httpx.ParseTrustedProxies([]string{"10.0.0.0/8", " 127.0.0.1 ", "::1"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"10.0.0.0/33", "nginx", "10.0.0.1/8/1"} {
		_, err := httpx.ParseTrustedProxies([]string{bad})
		if err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestLoopbackIsNotAWebPageOfAnotherOriginNorAnotherName: without a token, a
// surface admits requests from this host. A browser on this host is on this
// host too: a page of another origin (a cross-site form or fetch), or a
// page whose own name was made to resolve to 127.0.0.1 (DNS rebinding),
// must not be admitted.
func TestLoopbackIsNotAWebPageOfAnotherOriginNorAnotherName(t *testing.T) {
	tests := []struct {
		name    string
		host    string
		headers map[string]string
		local   bool
	}{
		{"curl on this host", "127.0.0.1:8080", nil, true},
		{"the CLI by name", "localhost:8080", nil, true},
		{"IPv6 loopback", "[::1]:8080", nil, true},
		{"no Host (HTTP/1.0)", "", nil, true},
		{"a page of the daemon itself", "127.0.0.1:8080", map[string]string{"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}, true},
		{"typed into the address bar", "localhost:8080", map[string]string{"Sec-Fetch-Site": "none"}, true},
		{"DNS rebinding: another name that resolves here", "evil.example:8080", nil, false},
		{"the machine's public name", "support.example.com", nil, false},
		{"a cross-site form (text/plain POST)", "127.0.0.1:8080", map[string]string{"Origin": "http://evil.example"}, false},
		{"a cross-site fetch marked by the browser", "127.0.0.1:8080", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"a sandboxed page", "127.0.0.1:8080", map[string]string{"Origin": "null"}, false},
		// A browser marks a page of another port as same-site: another
		// origin all the same, and refused like a page of another site.
		{"another port's page on this host", "127.0.0.1:8080", map[string]string{"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/v1/complaints/C-1/reply", nil)
			req.Host = tc.host
			req.RemoteAddr = "127.0.0.1:5000"
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			if got := httpx.IsLoopback(req); got != tc.local {
				t.Fatalf("admitted as local: %v, want %v", got, tc.local)
			}
		})
	}
}
