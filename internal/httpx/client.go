package httpx

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// TrustedProxies are the reverse proxies (load balancers, ingress
// controllers, nginx on the same host) whose X-Forwarded-For is believed.
// Nobody else's is: a forwarding header is set by whoever sends the request.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies reads CIDRs (10.0.0.0/8, fd00::/8) or single
// addresses (127.0.0.1).
func ParseTrustedProxies(list []string) (TrustedProxies, error) {
	var out TrustedProxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR (10.0.0.0/8) nor an IP address", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Contains reports whether a is one of the trusted proxies.
func (t TrustedProxies) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client is who really sent a request, as far as can be proven.
type Client struct {
	// Addr is the client's address: the TCP peer, or, when the peer is a
	// trusted proxy, the client it names (the rightmost X-Forwarded-For or
	// Forwarded hop that is not a trusted proxy, else X-Real-IP). Invalid
	// when a trusted proxy forwarded something unreadable.
	Addr netip.Addr
	// RelayedByStranger: the request carries forwarding headers although
	// its peer is not a trusted proxy. Either an unknown proxy relayed it
	// (nginx on this host without FORGETMENOT_TRUSTED_PROXIES), or the caller
	// made them up; either way it is not a local caller.
	RelayedByStranger bool
	// NamedElsewhere: a trusted proxy's headers disagree, and one of them
	// names a client on another host. A proxy sets some headers and passes
	// others on as the caller wrote them, and which is which cannot be told
	// here; so the caller is not local when any of them says so.
	NamedElsewhere bool
}

// IsLoopback reports whether the client is on this host.
func (c Client) IsLoopback() bool {
	return c.Addr.IsValid() && c.Addr.IsLoopback() && !c.RelayedByStranger && !c.NamedElsewhere
}

// String is the client address for logs and per-address limits.
func (c Client) String() string {
	if !c.Addr.IsValid() {
		return "unknown"
	}
	return c.Addr.String()
}

type clientKey struct{}

// RealClient resolves every request's real client once, for ClientOf,
// IsLoopback and ClientIP further down. The daemon wraps its whole handler in
// it.
func RealClient(proxies TrustedProxies, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := resolve(r, proxies)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientKey{}, c)))
	})
}

// ClientOf returns the request's real client. Without RealClient upstream no
// proxy is trusted.
func ClientOf(r *http.Request) Client {
	if c, ok := r.Context().Value(clientKey{}).(Client); ok {
		return c
	}
	return resolve(r, nil)
}

// ClientIP is the real client's address as text ("unknown" when a trusted
// proxy forwarded something unreadable): for logs and per-address limits.
func ClientIP(r *http.Request) string { return ClientOf(r).String() }

// IsLoopback reports whether the request comes from this host and is meant
// for it, which is what a surface without a secret admits:
//   - its real client is on this host (the TCP peer when it is not a
//     trusted proxy and sent no forwarding headers, else the client the
//     trusted proxies name);
//   - it names this host: Host is localhost or a loopback address (a page
//     whose own name was made to resolve to 127.0.0.1, DNS rebinding,
//     names itself);
//   - no web page of another origin sent it: a browser on this host marks
//     such a request with Origin and Sec-Fetch-Site, and without a token a
//     page could otherwise post replies, reassign or erase.
func IsLoopback(r *http.Request) bool {
	return ClientOf(r).IsLoopback() && localHost(r.Host) && !fromAnotherOrigin(r)
}

// localHost reports whether host (as in a Host header, with or without a
// port) names this machine's loopback. No Host at all (HTTP/1.0) names no
// other machine either.
func localHost(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// fromAnotherOrigin reports whether a browser sent r from a page that is
// not on this host's loopback.
func fromAnotherOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	origin, ok := r.Header["Origin"]
	if !ok {
		return false
	}
	if len(origin) != 1 {
		return true
	}
	u, err := url.Parse(origin[0])
	return err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !localHost(u.Host)
}

// forwardingHeaders are the headers by which proxies name the client.
var forwardingHeaders = []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"}

func resolve(r *http.Request, proxies TrustedProxies) Client {
	peer := parseHop(r.RemoteAddr)
	if !peer.IsValid() || !proxies.Contains(peer) {
		c := Client{Addr: peer}
		for _, h := range forwardingHeaders {
			if _, ok := r.Header[h]; ok {
				c.RelayedByStranger = true
			}
		}
		return c
	}
	// Every header a trusted proxy may name the client by is read: nginx's
	// common configurations set X-Real-IP, or append to X-Forwarded-For,
	// and pass the other headers on as the caller wrote them. Which one the
	// proxy wrote cannot be told here, so: the caller is local only when
	// every header names this host and none is unreadable, and headers
	// that disagree name nobody (a caller who writes one of them must not
	// choose the address their limits count against).
	var named []netip.Addr
	unreadable := false
	for _, h := range forwardingHeaders {
		values, ok := r.Header[h]
		if !ok {
			continue
		}
		var hops []string
		switch h {
		case "Forwarded":
			for _, v := range values {
				hops = append(hops, forwardedFor(v)...)
			}
		case "X-Real-Ip":
			hops = values[len(values)-1:]
		default:
			for _, v := range values {
				hops = append(hops, strings.Split(v, ",")...)
			}
		}
		if len(hops) == 0 {
			continue // names no client (Forwarded: proto=https only)
		}
		client, ok := nameFromHops(hops, peer, proxies)
		if !ok {
			unreadable = true
			continue
		}
		named = append(named, client)
	}
	if len(named) == 0 {
		if unreadable {
			return Client{} // a trusted proxy forwarded garbage: nobody known
		}
		return Client{Addr: peer}
	}
	c := Client{Addr: named[0], NamedElsewhere: unreadable}
	for _, a := range named[1:] {
		if a != c.Addr && !(a.IsLoopback() && c.Addr.IsLoopback()) {
			c.Addr, c.NamedElsewhere = netip.Addr{}, true
		}
	}
	return c
}

// nameFromHops reads a list of hops from the right, as each proxy appends
// the address it was called from: entries written by trusted proxies are
// true; the first one that is not a trusted proxy is the client. Whatever
// lies left of it was written by the client and proves nothing. ok is false
// when a hop is unreadable.
func nameFromHops(hops []string, peer netip.Addr, proxies TrustedProxies) (client netip.Addr, ok bool) {
	client = peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHop(hops[i])
		if !a.IsValid() {
			return netip.Addr{}, false
		}
		client = a
		if !proxies.Contains(a) {
			break
		}
	}
	return client, true
}

// forwardedFor returns the for= values of a Forwarded header (RFC 7239:
// `for=192.0.2.60;proto=http, for="[2001:db8::17]:4711"`), in order. An
// element without one names no hop and is left out.
func forwardedFor(v string) []string {
	var out []string
	for _, element := range strings.Split(v, ",") {
		for _, pair := range strings.Split(element, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(k, "for") {
				out = append(out, strings.Trim(strings.TrimSpace(val), `"`))
			}
		}
	}
	return out
}

// parseHop reads "203.0.113.7", "203.0.113.7:4711", "[2001:db8::1]:4711" or
// "2001:db8::1".
func parseHop(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
