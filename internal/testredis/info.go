package testredis

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// InfoField is one field of a section of Redis's INFO ("" when absent), for
// tests and benchmarks that measure what Redis did.
func InfoField(tb testing.TB, rdb redis.UniversalClient, section, field string) string {
	tb.Helper()
	info, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// InfoInt is InfoField as a number (0 when absent).
func InfoInt(tb testing.TB, rdb redis.UniversalClient, section, field string) int64 {
	tb.Helper()
	v, _ := strconv.ParseInt(InfoField(tb, rdb, section, field), 10, 64)
	return v
}

// UsedMemory is Redis's used_memory in bytes.
func UsedMemory(tb testing.TB, rdb redis.UniversalClient) int64 {
	tb.Helper()
	return InfoInt(tb, rdb, "memory", "used_memory")
}

// CommandCalls is how often Redis has run each command, from INFO
// commandstats (commands run inside scripts counted as their own).
func CommandCalls(tb testing.TB, rdb redis.UniversalClient) map[string]int64 {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				out[strings.TrimPrefix(name, "cmdstat_")], _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return out
}
