package testredis

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

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

// StoredMemory is Redis's used_memory without what its clients'
// connections take: what the data takes. Those buffers grow and shrink with
// how many connections a pool happens to hold open and how busy they were a
// moment ago, which says nothing about what a stored complaint costs. INFO's
// own figure for the clients is brought up to date only now and then, and was
// off by 20 KB on a busy machine; CLIENT LIST works each one out as it lists
// it.
func StoredMemory(tb testing.TB, rdb redis.UniversalClient) int64 {
	tb.Helper()
	used := InfoInt(tb, rdb, "memory", "used_memory")
	clients, err := rdb.ClientList(context.Background()).Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(clients, "\n") {
		for _, field := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(field, "tot-mem="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				used -= n
			}
		}
	}
	return used
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

// Keyspace is how many keys database 0 holds, and how many of them have a
// lifetime.
func Keyspace(tb testing.TB, rdb redis.UniversalClient) (keys, expiring int64) {
	tb.Helper()
	for _, kv := range strings.Split(InfoField(tb, rdb, "keyspace", "db0"), ",") {
		name, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch name {
		case "keys":
			keys = n
		case "expires":
			expiring = n
		}
	}
	return keys, expiring
}

// SettledHashTables waits until Redis has finished moving database 0's hash
// tables (keys, and keys with a lifetime) into grown ones, and returns their
// sizes. While it moves them both the old and the new table take memory, so
// a memory figure read meanwhile is off by the old table. The server must
// allow DEBUG from local clients (--enable-debug-command local).
func SettledHashTables(tb testing.TB, rdb redis.UniversalClient) string {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stats, err := rdb.Do(context.Background(), "DEBUG", "HTSTATS", "0").Text()
		if err != nil {
			tb.Fatalf("reading the hash tables' state (DEBUG HTSTATS): %v", err)
		}
		if !strings.Contains(stats, "rehashing target") {
			var sizes []string
			for _, line := range strings.Split(stats, "\n") {
				if strings.Contains(line, "table size:") {
					sizes = append(sizes, strings.TrimSpace(line))
				}
			}
			return strings.Join(sizes, "; ")
		}
		if time.Now().After(deadline) {
			tb.Fatal("Redis was still moving its hash tables after 10 s")
		}
		// Redis moves them in its background cycle, ten times a second.
		time.Sleep(20 * time.Millisecond)
	}
}
