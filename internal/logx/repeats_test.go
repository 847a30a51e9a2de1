package logx

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRepeatedWarningsAreCountedNotWritten(t *testing.T) {
	var buf syncBuf
	log := slog.New(Repeats(slog.NewJSONHandler(&buf, nil), 300*time.Millisecond))
	stream := log.With("component", "queue")
	for i := 0; i < 40; i++ {
		// Every worker of the replica reports the same failed read: one.
		stream.Warn("queue read failed; retrying", "stream", "inbound", "consumer", "host-1-"+string(rune('0'+i%8)), "retry_in", time.Duration(i)*time.Millisecond, "attempt", i, "err", errors.New("dial tcp 127.0.0.1:"+strings.Repeat("4", i%3+1)+": connect: connection refused"))
		stream.Warn("queue read failed; retrying", "stream", "outbox", "err", errors.New("dial tcp 127.0.0.1:4: connect: connection refused"))
		log.Info("complaint assigned", "complaint", "C-1001") // never limited
	}
	log.Error("delivery failed", "complaint", "C-1001", "err", "550 mailbox unavailable")
	log.Error("delivery failed", "complaint", "C-1002", "err", "550 mailbox unavailable") // another complaint: passes
	lines := buf.lines()
	var warn, info, errs int
	for _, l := range lines {
		switch l["level"] {
		case "WARN":
			warn++
		case "INFO":
			info++
		case "ERROR":
			errs++
		}
	}
	if warn != 2 || info != 40 || errs != 2 {
		t.Fatalf("want 2 warnings (one per stream), 40 infos, 2 errors; got %d %d %d:\n%v", warn, info, errs, lines)
	}
	time.Sleep(600 * time.Millisecond)
	var summaries []map[string]any
	for _, l := range buf.lines() {
		if l["suppressed"] != nil {
			summaries = append(summaries, l)
		}
	}
	if len(summaries) != 2 || summaries[0]["msg"] != "39 similar lines suppressed" || summaries[0]["component"] != "queue" || summaries[0]["like"] != "queue read failed; retrying" {
		t.Fatalf("want one summary per stream with the logger's attributes: %v", summaries)
	}
}
