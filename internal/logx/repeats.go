package logx

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Repeats wraps a handler so that a warning or error identical to one
// logged within the interval is counted rather than written, and summed up
// once when the interval ends: "N similar lines suppressed". Identical means
// the same level, message and attributes, with numbers in error texts (the
// port of a refused dial, a count of attempts) not counting; a line about
// another complaint, stream or owner is never held back. Info and debug
// lines (an assignment, a routed message) always pass.
//
// During a Redis outage every consumer loop reports each failed read; a log
// collector needs the first line and a count, not thousands of copies.
func Repeats(next slog.Handler, interval time.Duration) slog.Handler {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	return &repeatHandler{next: next, state: &repeatState{interval: interval, windows: map[string]*repeatWindow{}}}
}

// workerKey names which of a replica's workers (a stream consumer) wrote
// a line: during an outage every worker reports the same failed read, and
// merging them is the point, so it does not tell lines apart.
const workerKey = "consumer"

type repeatHandler struct {
	next  slog.Handler
	state *repeatState
	scope string // the attributes and groups added with With…
}

type repeatState struct {
	interval time.Duration
	mu       sync.Mutex
	windows  map[string]*repeatWindow
}

type repeatWindow struct {
	level      slog.Level
	msg        string
	handler    slog.Handler
	suppressed int
}

func (h *repeatHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *repeatHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	var key strings.Builder
	fmt.Fprintf(&key, "%s|%s|%s", h.scope, r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		v := a.Value.Resolve()
		switch v.Kind() {
		case slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindDuration, slog.KindTime:
			return true // a count, a backoff, a time: details, not another subject
		}
		if a.Key == workerKey {
			return true // which of the replica's workers: the same failure
		}
		text := v.String()
		if _, isErr := v.Any().(error); isErr || a.Key == "err" || a.Key == "error" {
			text = digits.ReplaceAllString(text, "0")
		}
		fmt.Fprintf(&key, "|%s=%s", a.Key, text)
		return true
	})
	k := key.String()
	s := h.state
	s.mu.Lock()
	if w, ok := s.windows[k]; ok {
		w.suppressed++
		s.mu.Unlock()
		return nil
	}
	s.windows[k] = &repeatWindow{level: r.Level, msg: r.Message, handler: h.next}
	time.AfterFunc(s.interval, func() { s.end(k) })
	s.mu.Unlock()
	return h.next.Handle(ctx, r)
}

func (s *repeatState) end(key string) {
	s.mu.Lock()
	w := s.windows[key]
	delete(s.windows, key)
	s.mu.Unlock()
	if w == nil || w.suppressed == 0 {
		return
	}
	lines := "lines"
	if w.suppressed == 1 {
		lines = "line"
	}
	r := slog.NewRecord(time.Now(), w.level, fmt.Sprintf("%d similar %s suppressed", w.suppressed, lines), 0)
	r.AddAttrs(slog.Int("suppressed", w.suppressed), slog.String("like", w.msg), slog.String("interval", s.interval.String()))
	_ = w.handler.Handle(context.Background(), r)
}

func (h *repeatHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	scope := h.scope
	for _, a := range attrs {
		if a.Key != workerKey {
			scope += "|" + a.String()
		}
	}
	return &repeatHandler{next: h.next.WithAttrs(attrs), state: h.state, scope: scope}
}

func (h *repeatHandler) WithGroup(name string) slog.Handler {
	return &repeatHandler{next: h.next.WithGroup(name), state: h.state, scope: h.scope + "|group:" + name}
}
