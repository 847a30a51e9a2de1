package faults_test

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxy sits between one replica and Redis and breaks the connection on
// demand: drop closes every connection and refuses new ones (accepting and
// closing at once, as a restarting load balancer does); stall stops moving
// bytes in both directions until released, so commands arrive late, after
// their sender gave up. It also counts connection attempts, which shows
// whether a replica reconnects in a busy loop.
type proxy struct {
	ln       net.Listener
	upstream string
	attempts atomic.Int64

	mu      sync.Mutex
	mode    proxyMode
	flowing chan struct{} // closed while bytes may flow
	conns   map[net.Conn]struct{}
}

type proxyMode int

const (
	proxyPass proxyMode = iota
	proxyDrop
	proxyStall
)

func startProxy(t testing.TB, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream, flowing: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.flowing)
	go p.serve()
	t.Cleanup(func() { _ = ln.Close(); p.set(proxyDrop) })
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

// set switches the proxy's behaviour.
func (p *proxy) set(m proxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m == p.mode {
		return
	}
	if p.mode == proxyStall {
		close(p.flowing)
	}
	p.mode = m
	switch m {
	case proxyStall:
		p.flowing = make(chan struct{})
	case proxyDrop:
		for c := range p.conns {
			_ = c.Close()
		}
		clear(p.conns)
	}
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.attempts.Add(1)
		go p.handle(c)
	}
}

func (p *proxy) handle(client net.Conn) {
	p.mu.Lock()
	drop := p.mode == proxyDrop
	p.mu.Unlock()
	if drop {
		_ = client.Close()
		return
	}
	server, err := net.DialTimeout("tcp", p.upstream, time.Second)
	if err != nil {
		_ = client.Close() // Redis is down: the client sees a reset
		return
	}
	p.mu.Lock()
	if p.mode == proxyDrop {
		p.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	}
	p.conns[client], p.conns[server] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go p.pipe(client, server)
	go p.pipe(server, client)
}

// pipe copies src to dst, holding data back while stalled.
func (p *proxy) pipe(src, dst net.Conn) {
	defer func() {
		_ = src.Close()
		_ = dst.Close()
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			flowing := p.flowing
			p.mu.Unlock()
			<-flowing
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
