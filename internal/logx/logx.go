// Package logx brings the log lines of libraries (go-redis's pool, the
// standard log package that net/http and others write to) into the daemon's
// slog logger, so that with FORGETMENOT_LOG_FORMAT=json every line is JSON,
// and rate-limits their repetition: during a Redis outage go-redis reports
// every failed dial, and a log collector needs the first line and a count,
// not thousands of copies.
package logx

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Limiter passes the first line of each kind in an interval and counts the
// rest; when the interval ends with lines suppressed it logs one summary:
// "N similar lines suppressed". Lines of different kinds do not limit each
// other.
type Limiter struct {
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	windows map[string]*window
	closed  bool
}

type window struct {
	first      string // the message passed for this kind
	level      slog.Level
	attrs      []any
	suppressed int
	timer      *time.Timer
}

// NewLimiter logs to l, passing one line per kind per interval (0: 10 s).
func NewLimiter(l *slog.Logger, interval time.Duration) *Limiter {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	return &Limiter{log: l, interval: interval, windows: map[string]*window{}}
}

// Log logs msg at level with attrs unless a line of the same kind was logged
// within the interval; kind groups lines that differ only in details (an
// address, a count, a time).
func (l *Limiter) Log(ctx context.Context, level slog.Level, kind, msg string, attrs ...any) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.log.Log(ctx, level, msg, attrs...)
		return
	}
	if w, ok := l.windows[kind]; ok {
		w.suppressed++
		l.mu.Unlock()
		return
	}
	w := &window{first: msg, level: level, attrs: attrs}
	w.timer = time.AfterFunc(l.interval, func() { l.end(kind) })
	l.windows[kind] = w
	l.mu.Unlock()
	l.log.Log(ctx, level, msg, attrs...)
}

// end closes a kind's interval: the summary when lines were suppressed.
func (l *Limiter) end(kind string) {
	l.mu.Lock()
	w, ok := l.windows[kind]
	if ok {
		delete(l.windows, kind)
	}
	l.mu.Unlock()
	if ok && w.suppressed > 0 {
		l.summary(w)
	}
}

func (l *Limiter) summary(w *window) {
	l.log.Log(context.Background(), w.level, fmt.Sprintf("%d similar lines suppressed", w.suppressed),
		append(append([]any{}, w.attrs...), "suppressed", w.suppressed, "like", w.first, "interval", l.interval.String())...)
}

// Close logs the summaries of open intervals now (at shutdown) and passes
// every later line through unlimited.
func (l *Limiter) Close() {
	l.mu.Lock()
	l.closed = true
	windows := l.windows
	l.windows = map[string]*window{}
	l.mu.Unlock()
	for _, w := range windows {
		if w.timer.Stop() && w.suppressed > 0 {
			l.summary(w)
		}
	}
}

// Redis adapts the limiter to go-redis's logger interface (redis.SetLogger):
// its lines become slog records (level WARN, lib=go-redis), one per kind of
// message per interval. The format string is the kind, so "failed to dial"
// lines for every connection attempt count as one.
type Redis struct{ L *Limiter }

// Printf implements go-redis's internal.Logging.
func (r Redis) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	if !strings.HasPrefix(msg, "redis:") {
		msg = "redis: " + msg
	}
	r.L.Log(ctx, slog.LevelWarn, "go-redis: "+format, msg, "lib", "go-redis")
}

// StdLog sends the standard log package's default logger (net/http's
// server errors, libraries that log.Printf) through the limiter at level
// WARN with lib=log; its own prefix and time stamp are dropped, slog adds
// them. Lines that differ only in numbers (addresses, ports, counts) are one
// kind.
func StdLog(l *Limiter) {
	log.SetFlags(0)
	log.SetPrefix("")
	log.SetOutput(stdWriter{l})
}

type stdWriter struct{ l *Limiter }

var digits = regexp.MustCompile(`[0-9]+`)

func (w stdWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			w.l.Log(context.Background(), slog.LevelWarn, "log: "+digits.ReplaceAllString(line, "0"), line, "lib", "log")
		}
	}
	return len(p), nil
}
