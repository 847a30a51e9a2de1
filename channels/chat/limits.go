package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// --- origins -------------------------------------------------------------

// origins are the pages allowed to open the chat besides the daemon's own.
type origins []originRule

// originRule is an exact origin (scheme://host[:port], normalised) or a host
// pattern ("*.example.com", any scheme).
type originRule struct {
	origin  string
	pattern string
}

// parseOrigins normalises the configured origins once, at load: scheme and
// host lower-cased, a default port dropped, a trailing slash ignored; a path,
// query or user part is refused (a browser's Origin never has one, so such an
// entry could never match).
func parseOrigins(list []string) (origins, error) {
	var out origins
	for _, raw := range list {
		o := strings.TrimSpace(raw)
		if o == "" {
			continue
		}
		if !strings.Contains(o, "://") {
			p := strings.ToLower(o)
			if strings.ContainsAny(p, "/?#@ ") {
				return nil, fmt.Errorf("chat allowed origin %q: a host pattern is a host name with * wildcards, like *.example.com", raw)
			}
			if _, err := path.Match(p, "x"); err != nil {
				return nil, fmt.Errorf("chat allowed origin %q: %w", raw, err)
			}
			out = append(out, originRule{pattern: p})
			continue
		}
		n, err := normaliseOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("chat allowed origin %q: %w", raw, err)
		}
		out = append(out, originRule{origin: n})
	}
	return out, nil
}

// normaliseOrigin turns an origin or a site URL without a path into the form
// browsers send in Origin.
func normaliseOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", errors.New("want an http:// or https:// origin")
	case u.Host == "" || u.User != nil:
		return "", errors.New("want scheme://host[:port]")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return "", errors.New("an origin has no path, query or fragment: use scheme://host[:port]")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// check allows a request without Origin (not a browser page), one from the
// daemon's own host, and the configured origins and host patterns.
func (os origins) check(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	n, err := normaliseOrigin(origin)
	if err != nil {
		return fmt.Errorf("origin %q is not a web page's origin", origin)
	}
	u, _ := url.Parse(n)
	if strings.EqualFold(u.Host, r.Host) || strings.EqualFold(u.Hostname(), r.Host) {
		return nil
	}
	for _, rule := range os {
		if rule.origin == n {
			return nil
		}
		if rule.pattern != "" {
			if ok, _ := path.Match(rule.pattern, u.Host); ok {
				return nil
			}
			if ok, _ := path.Match(rule.pattern, u.Hostname()); ok {
				return nil
			}
		}
	}
	return fmt.Errorf("%s is not in the allowed origins", n)
}

// logRefusedOrigin logs a refused page once per origin per minute (a widget
// retrying would flood the log otherwise), with a hint for the usual cause
// of refusing the daemon's own pages: a reverse proxy that sends its own
// Host.
func (s *Server) logRefusedOrigin(r *http.Request, err error) {
	origin := r.Header.Get("Origin")
	if !s.refused.allow(origin) {
		return
	}
	attrs := []any{"origin", origin, "host", r.Host, "remote", r.RemoteAddr, "err", err}
	if h := r.Header.Get("X-Forwarded-Host"); h != "" {
		attrs = append(attrs, "x_forwarded_host", h)
	}
	if ip := net.ParseIP(strings.Trim(hostOnly(r.Host), "[]")); ip != nil || strings.HasPrefix(r.Host, "localhost") {
		attrs = append(attrs, "hint", "the request's Host is an address: if this is the daemon's own site behind a reverse proxy, forward the Host header (nginx: proxy_set_header Host $host), or list the site in FORGETMENOT_CHAT_ALLOWED_ORIGINS")
	}
	s.log.Warn("chat: refused a page not allowed to embed the chat (logged once a minute per origin)", attrs...)
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// onceEvery says yes to a key at most once per period; it forgets everything
// when it holds max keys, so a flood of made-up origins cannot grow it.
type onceEvery struct {
	mu     sync.Mutex
	period time.Duration
	max    int
	last   map[string]time.Time
}

func newOnceEvery(period time.Duration, max int) *onceEvery {
	return &onceEvery{period: period, max: max, last: map[string]time.Time{}}
}

func (o *onceEvery) allow(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if t, ok := o.last[key]; ok && now.Sub(t) < o.period {
		return false
	}
	if len(o.last) >= o.max {
		clear(o.last)
	}
	o.last[key] = now
	return true
}

// --- connection caps -----------------------------------------------------

// Why a connection was refused (also the metric label).
const (
	limitPerIP = "ip_limit"
	limitTotal = "capacity"
)

// limiter caps this replica's open sockets, in all and per client IP.
type limiter struct {
	mu       sync.Mutex
	total    int
	perIP    map[string]int
	maxTotal int
	maxPerIP int
}

// acquire takes a slot for ip, or says why not.
func (l *limiter) acquire(ip string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if why := l.full(ip); why != "" {
		return why
	}
	l.total++
	l.perIP[ip]++
	return ""
}

func (l *limiter) full(ip string) string {
	switch {
	case l.perIP[ip] >= l.maxPerIP:
		return limitPerIP
	case l.total >= l.maxTotal:
		return limitTotal
	}
	return ""
}

func (l *limiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

func (l *limiter) explain(why string) string {
	if why == limitPerIP {
		return fmt.Sprintf("too many chat connections from your network address (at most %d); close other chat windows or try again later", l.maxPerIP)
	}
	return "the chat is at capacity; try again in a minute"
}

// --- status for the widget --------------------------------------------------

// status tells a widget whose socket failed before it opened why (a browser
// shows a script nothing of a refused handshake): "not_enabled" for a page
// not allowed to embed the chat, "busy" at a connection cap, "ok"
// otherwise. Any page may ask; it reveals nothing but that.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	state, detail := "ok", ""
	if err := s.origins.check(r); err != nil {
		s.logRefusedOrigin(r, err)
		state, detail = "not_enabled", err.Error()
	} else {
		s.limits.mu.Lock()
		why := s.limits.full(clientIP(r))
		s.limits.mu.Unlock()
		if why != "" {
			state, detail = "busy", s.limits.explain(why)
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"state": state, "detail": detail})
}

// --- metrics ---------------------------------------------------------------

type socketMetrics struct {
	open    prometheus.Gauge
	refused *prometheus.CounterVec
	closed  *prometheus.CounterVec
}

func newSocketMetrics(reg prometheus.Registerer) *socketMetrics {
	m := &socketMetrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "forgetmenot_chat_sockets", Help: "Open chat WebSockets on this replica.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "forgetmenot_chat_refused_total", Help: "Chat connections refused, by reason: bad_request, origin, ip_limit, capacity, session_rate.",
		}, []string{"reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "forgetmenot_chat_closed_total", Help: "Chat sockets closed, by reason: ended (by the visitor or shutdown), hello_timeout, idle, session_rate.",
		}, []string{"reason"}),
	}
	for _, r := range []string{"bad_request", "origin", limitPerIP, limitTotal, "session_rate"} {
		m.refused.WithLabelValues(r)
	}
	for _, r := range []string{"ended", "hello_timeout", "idle", "session_rate"} {
		m.closed.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.open, m.refused, m.closed} {
			_ = reg.Register(c) // a second chat server in one process keeps its own
		}
	}
	return m
}
