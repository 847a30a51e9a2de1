package logx

import (
	"bytes"
	"context"
	"encoding/json"
	"log"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			m = map[string]any{"NOT JSON": l}
		}
		out = append(out, m)
	}
	return out
}

// Repeated lines of one kind: the first passes, the rest are counted and
// summed up once when the interval ends; another kind is not held back.
func TestLimiterPassesFirstAndSummarisesTheRest(t *testing.T) {
	var buf syncBuf
	l := NewLimiter(slog.New(slog.NewJSONHandler(&buf, nil)), 200*time.Millisecond)
	r := Redis{l}
	for i := 0; i < 50; i++ {
		r.Printf(context.Background(), "redis: %s:%d: failed to dial after %d attempts: %v", "pool.go", 770, i, "connection refused")
	}
	r.Printf(context.Background(), "redis: cluster slots refresh failed: %v", "EOF")
	lines := buf.lines()
	if len(lines) != 2 || !strings.Contains(lines[0]["msg"].(string), "failed to dial after 0 attempts") || lines[0]["lib"] != "go-redis" || lines[0]["level"] != "WARN" {
		t.Fatalf("before the interval ends, want the first line of each kind only: %v", lines)
	}
	time.Sleep(400 * time.Millisecond)
	lines = buf.lines()
	if len(lines) != 3 || lines[2]["msg"] != "49 similar lines suppressed" || lines[2]["suppressed"] != float64(49) || !strings.Contains(lines[2]["like"].(string), "failed to dial") {
		t.Fatalf("want one summary of 49 suppressed lines: %v", lines)
	}
	// The next interval starts afresh.
	r.Printf(context.Background(), "redis: %s:%d: failed to dial after %d attempts: %v", "pool.go", 770, 99, "connection refused")
	if lines = buf.lines(); len(lines) != 4 || !strings.Contains(lines[3]["msg"].(string), "after 99 attempts") {
		t.Fatalf("a new interval passes its first line: %v", lines)
	}
	l.Close()
}

func TestStdLogBecomesJSONAndIsLimited(t *testing.T) {
	var buf syncBuf
	l := NewLimiter(slog.New(slog.NewJSONHandler(&buf, nil)), time.Hour)
	defer func() { log.SetOutput(os.Stderr); log.SetFlags(log.LstdFlags) }()
	StdLog(l)
	for i := 0; i < 5; i++ {
		log.Printf("http: TLS handshake error from 10.0.0.%d:5%d: EOF", i, i)
	}
	log.Print("something else")
	l.Close()
	lines := buf.lines()
	if len(lines) != 3 {
		t.Fatalf("want the first handshake line, the other line and the summary at close: %v", lines)
	}
	for _, m := range lines {
		if _, bad := m["NOT JSON"]; bad || m["lib"] == nil && m["suppressed"] == nil {
			t.Errorf("line %v", m)
		}
	}
	if lines[2]["msg"] != "4 similar lines suppressed" || lines[2]["lib"] != "log" {
		t.Errorf("summary at close: %v", lines[2])
	}
}
