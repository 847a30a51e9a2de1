package chat

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// hub knows this replica's open sockets per session, fans live lines out to
// them, and keeps their sessions marked present for the senders of every
// replica.
type hub struct {
	state    State
	ttl      time.Duration
	log      *slog.Logger
	deliver  func(*client, said)
	mu       sync.Mutex
	sessions map[string]map[*client]bool
	ctx      context.Context // ends when the daemon stops
	stop     context.CancelFunc
	ready    chan struct{} // closed once live lines are subscribed to
}

func newHub(state State, ttl time.Duration, log *slog.Logger, deliver func(*client, said)) *hub {
	ctx, stop := context.WithCancel(context.Background())
	return &hub{state: state, ttl: ttl, log: log, deliver: deliver, sessions: map[string]map[*client]bool{}, ctx: ctx, stop: stop, ready: make(chan struct{})}
}

// context ties a socket to both its request and the hub's life, so sockets
// close on shutdown (the HTTP server does not track hijacked connections).
func (h *hub) context(req context.Context) context.Context {
	ctx, cancel := context.WithCancel(req)
	stop := context.AfterFunc(h.ctx, cancel)
	go func() { <-ctx.Done(); stop() }()
	return ctx
}

// liveTopic carries every live line of every session to every replica.
const liveTopic = "live"

// liveLine is what was said, not yet worded: each socket words it in its
// visitor's language and time zone.
type liveLine struct {
	Session string `json:"session"`
	Said    said   `json:"said"`
}

func (h *hub) run(ctx context.Context) error {
	defer h.stop()
	lines := h.state.Subscribe(ctx, liveTopic, h.liveLinesInterrupted)
	close(h.ready)
	t := time.NewTicker(h.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case raw, ok := <-lines:
			if !ok {
				return nil
			}
			var l liveLine
			if err := json.Unmarshal([]byte(raw), &l); err != nil {
				h.log.Warn("chat: undecodable live line", "err", err)
				continue
			}
			h.mu.Lock()
			for c := range h.sessions[l.Session] {
				h.deliver(c, l.Said)
			}
			h.mu.Unlock()
		case <-t.C:
			h.mu.Lock()
			ids := make([]string, 0, len(h.sessions))
			for id := range h.sessions {
				ids = append(ids, id)
			}
			h.mu.Unlock()
			for _, id := range ids {
				if err := h.state.Set(ctx, presenceKey(id), "1", h.ttl); err != nil {
					h.log.Warn("chat: could not refresh presence", "err", err)
					break
				}
			}
		}
	}
}

// liveLinesInterrupted closes this replica's chat sockets after the live
// subscription was lost and re-established: lines said in between reached
// no socket here. The widget reconnects at once and rebuilds its window
// from the stored history, which has them; without this, a visitor would
// not see a reply until they reloaded the page.
func (h *hub) liveLinesInterrupted() {
	h.mu.Lock()
	var open []*client
	for _, clients := range h.sessions {
		for c := range clients {
			open = append(open, c)
		}
	}
	h.mu.Unlock()
	h.log.Warn("chat: live lines were interrupted (the Redis subscription was re-established); reconnecting this replica's chat windows so they reload what was said", "sockets", len(open))
	for _, c := range open {
		c.closeWith(StatusReconnect, "live_interrupted", "live updates were interrupted: reconnecting")
	}
}

func presenceKey(session string) string { return "online:" + session }

func (h *hub) add(ctx context.Context, c *client) {
	h.mu.Lock()
	if h.sessions[c.session] == nil {
		h.sessions[c.session] = map[*client]bool{}
	}
	h.sessions[c.session][c] = true
	h.mu.Unlock()
	if err := h.state.Set(ctx, presenceKey(c.session), "1", h.ttl); err != nil {
		h.log.Warn("chat: could not mark the session present", "err", err)
	}
}

func (h *hub) remove(c *client) {
	h.mu.Lock()
	delete(h.sessions[c.session], c)
	last := len(h.sessions[c.session]) == 0
	if last {
		delete(h.sessions, c.session)
	}
	h.mu.Unlock()
	if last {
		// Another replica holding a socket of this session marks it present
		// again within a third of the TTL; until then a reply also goes by
		// e-mail, which is the safe side.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = h.state.Delete(ctx, presenceKey(c.session))
	}
}
