package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
)

// The HTTP surfaces that authenticate with a shared secret (the /v1 API with
// API_TOKEN, the generic webhook with WEBHOOK_SECRET) answer callers on this
// host only while their secret is unset. Listening beyond this host without
// the secret is refused: it is almost always a forgotten variable, and a
// reverse proxy that hides the real client would turn "this host only" into
// "everyone". Opening a surface to everyone takes an explicit INSECURE_OPEN_
// switch, and every start says so.

// checkExposure refuses a listen address reachable from other hosts while a
// surface has neither its secret nor its explicit open switch.
func checkExposure(ctx context.Context, cfg configs.Config) error {
	local, err := listensLocally(ctx, cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("%s: %w", configs.Var("HTTP_ADDR"), err)
	}
	if local {
		return nil
	}
	var missing []string
	if cfg.APIToken == "" && !cfg.InsecureOpenAPI {
		missing = append(missing, fmt.Sprintf("%s is not set, so the management API would be reachable without a token (set it, or %s=true to open the API to everyone)",
			configs.Var("API_TOKEN"), configs.Var("INSECURE_OPEN_API")))
	}
	if len(cfg.WebhookSecret) == 0 && !cfg.InsecureOpenWebhook {
		missing = append(missing, fmt.Sprintf("%s is not set, so POST /v1/messages would take unsigned complaints (set it, or %s=true to accept them from everyone)",
			configs.Var("WEBHOOK_SECRET"), configs.Var("INSECURE_OPEN_WEBHOOK")))
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s (%s), which other hosts can reach: %s; or listen on 127.0.0.1:<port> only",
		cfg.HTTPAddr, configs.Var("HTTP_ADDR"), strings.Join(missing, "; "))
}

// listensLocally tells whether addr (host:port) binds loopback addresses
// only. An empty host or a wildcard binds every interface.
func listensLocally(ctx context.Context, addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("want host:port or :port: %w", err)
	}
	if host == "" {
		return false, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().IsLoopback(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return false, fmt.Errorf("cannot resolve %q: %w", host, err)
	}
	if len(ips) == 0 {
		return false, errors.New("resolves to no address")
	}
	for _, ip := range ips {
		if !ip.Unmap().IsLoopback() {
			return false, nil
		}
	}
	return true, nil
}

// warnExposure says at every start which surfaces are open, and how callers
// on this host are recognised.
func warnExposure(log *slog.Logger, cfg configs.Config, addr string) {
	local, _ := listensLocally(context.Background(), cfg.HTTPAddr)
	switch {
	case cfg.APIToken != "" && cfg.InsecureOpenAPI:
		log.Warn(configs.Var("INSECURE_OPEN_API") + " is ignored: " + configs.Var("API_TOKEN") + " is set, and the API asks for it")
	case cfg.InsecureOpenAPI:
		log.Warn("OPEN API: "+configs.Var("INSECURE_OPEN_API")+"=true and no "+configs.Var("API_TOKEN")+", so anyone who reaches this address can read and change every complaint",
			"http", addr)
	case cfg.APIToken == "":
		log.Info("no API token: the management API answers callers on this host only; a reverse proxy on this host that forwards without X-Forwarded-For, Forwarded or X-Real-IP cannot be told from a local caller, so set "+configs.Var("API_TOKEN")+" when one runs here", "trusted_proxies", len(cfg.TrustedProxies))
	}
	switch {
	case len(cfg.WebhookSecret) > 0 && cfg.InsecureOpenWebhook:
		log.Warn(configs.Var("INSECURE_OPEN_WEBHOOK") + " is ignored: " + configs.Var("WEBHOOK_SECRET") + " is set, and every webhook must be signed")
	case cfg.InsecureOpenWebhook:
		log.Warn("OPEN WEBHOOK: "+configs.Var("INSECURE_OPEN_WEBHOOK")+"=true and no "+configs.Var("WEBHOOK_SECRET")+", so anyone who reaches this address can file unsigned complaints",
			"http", addr)
	}
	if cfg.MetricsToken == "" && !local {
		log.Warn("OPEN METRICS: /metrics answers everyone who reaches this address (owner ids and workloads); set "+configs.Var("METRICS_TOKEN")+" to ask for a bearer token",
			"http", addr)
	}
	if len(cfg.TrustedProxies) == 0 && (cfg.APIToken == "" || len(cfg.WebhookSecret) == 0) {
		log.Info("no trusted proxies: a request that carries X-Forwarded-For, Forwarded or X-Real-IP is never taken as local; behind a reverse proxy set " + configs.Var("TRUSTED_PROXIES"))
	}
}
