package httpx

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
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
	// trusted proxy, the rightmost X-Forwarded-For hop that is not one.
	// Invalid when a trusted proxy forwarded something unreadable.
	Addr netip.Addr
	// RelayedByStranger: the request carries forwarding headers although
	// its peer is not a trusted proxy. Either an unknown proxy relayed it
	// (nginx on this host without FORGETMENOT_TRUSTED_PROXIES), or the caller
	// made them up; either way it is not a local caller.
	RelayedByStranger bool
}

// IsLoopback reports whether the client is on this host.
func (c Client) IsLoopback() bool {
	return c.Addr.IsValid() && c.Addr.IsLoopback() && !c.RelayedByStranger
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

// IsLoopback reports whether the request's real client is on this host: the
// TCP peer when it is not a trusted proxy (and sent no forwarding headers),
// else the client the trusted proxies name.
func IsLoopback(r *http.Request) bool { return ClientOf(r).IsLoopback() }

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
	// Each proxy appends the address it was called from, so the list is read
	// from the right: entries written by trusted proxies are true; the first
	// one that is not a trusted proxy is the client. Whatever lies left of
	// it was written by the client and proves nothing.
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHop(hops[i])
		if !a.IsValid() {
			return Client{} // a trusted proxy forwarded garbage: nobody known
		}
		client = a
		if !proxies.Contains(a) {
			break
		}
	}
	return Client{Addr: client}
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
