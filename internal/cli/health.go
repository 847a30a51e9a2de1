package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
)

const healthUsage = `forgetmenot health [--ready] [--timeout D] [--url URL]

Asks the daemon on this host whether it is alive (GET /healthz) or, with
--ready, ready to take complaints (GET /readyz: Redis reachable). Exit 0 when
it is, 1 when it is not or does not answer in time, 2 on a usage error. It
finds the daemon from the same environment as serve (FORGETMENOT_HTTP_ADDR,
on loopback), so it works as a container health check without a shell:

  HEALTHCHECK CMD ["/usr/local/bin/forgetmenot", "health", "--ready"]`

func healthCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("health", healthUsage, stdout)
	ready := fs.Bool("ready", false, "check readiness (/readyz) rather than liveness (/healthz)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	base := fs.String("url", "", "the daemon's base URL (default: loopback at the port of FORGETMENOT_HTTP_ADDR)")
	if code, done := parseAll(fs, healthUsage, args, stderr); done {
		return code
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "error: --timeout must be positive\nusage: %s\n", firstLine(healthUsage))
		return 2
	}
	cfg, err := configs.FromEnv()
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	u := strings.TrimRight(*base, "/")
	if u == "" {
		u = LocalURL(cfg.HTTPAddr)
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+path, nil)
	if err != nil {
		fmt.Fprintf(stderr, "error: %s: %v\n", u, err)
		return 2
	}
	if cfg.APIToken != "" { // admits the readiness details (which component fails)
		req.Header.Set("Authorization", "Bearer "+cfg.APIToken)
	}
	resp, err := (&http.Client{Timeout: *timeout}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "unhealthy: no answer from %s%s: %v\n", u, path, unwrapURLError(err))
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	summary := strings.TrimSpace(string(body))
	var status struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(body, &status) == nil && status.Status != "" && resp.StatusCode == http.StatusOK {
		summary = status.Status
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "unhealthy: %s%s answered %d: %s\n", u, path, resp.StatusCode, summary)
		return 1
	}
	fmt.Fprintln(stdout, summary)
	return 0
}

// LocalURL is the base URL at which a process on this host reaches a daemon
// listening on addr (FORGETMENOT_HTTP_ADDR): an unspecified host (":8080",
// "0.0.0.0:8080", "[::]:8080") is reached on loopback.
func LocalURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		host, port = "", "8080"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
