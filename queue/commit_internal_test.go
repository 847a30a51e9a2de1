package queue

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The once-guard is claimed (SET NX) before the guards and the writes. A
// write that fails inside the script (a key of another type, a value that
// is not a number) leaves what the script wrote before it, as Redis does.
// What must hold: the claim and the capacity increment are taken back, so
// the message's redelivery applies the change instead of being taken for a
// duplicate of a change that never applied (the message would be on no
// complaint). (An internal test: it builds a tx that trips on purpose.)
func TestAFailedWriteTakesBackTheClaimAndIncrements(t *testing.T) {
	rdb := realRedis(t)
	keys, err := NewKeys("commitint")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	once, counts, bad := keys.MessageComplaint("M-1"), keys.OpenCounts(), keys.Complaint("C-1")
	defer rdb.Del(ctx, once, counts, bad)
	rdb.Del(ctx, once, counts, bad)
	// Something a write of the change trips over (here: a field that is
	// not a number for HINCRBY).
	rdb.HSet(ctx, bad, "n", "not a number")
	build := func() *tx {
		t := &tx{}
		t.onceString(once, "C-1", "60000", "", "")
		t.incrementAtMost("capacity of ann", counts, "ann", 5)
		t.write("HINCRBY", bad, "n", "1")
		return t
	}
	_, err = build().run(ctx, rdb)
	if err == nil || !strings.Contains(err.Error(), "commit:") {
		t.Fatalf("the change applied (%v); want the script to fail with a commit error", err)
	}
	if n, _ := rdb.Exists(ctx, once).Result(); n != 0 {
		t.Error("the once key was kept after the change failed")
	}
	if n, _ := rdb.HGet(ctx, counts, "ann").Result(); n != "0" {
		t.Errorf("ann's open count is %s after a change that failed, want 0", n)
	}
	res, err := build().run(ctx, rdb)
	if err == nil && res.status == "duplicate" {
		t.Error("the change failed, yet its redelivery is a duplicate")
	}
}

// A write may copy the data of a stream entry (a source). What must hold:
// a source that is gone, or not as long as the tx says, fails the change
// before anything is claimed or written, with the error Commit takes as
// the sign to send the change in full; a source that is there is copied,
// whole or in part.
// The same holds on the embedded Redis (miniredis and gopher-lua).
func TestASourceThatIsGoneFailsTheChangeBeforeAnythingIsWritten(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		checkSources(t, realRedis(t))
	})
	t.Run("embedded", func(t *testing.T) {
		checkSources(t, embeddedRedis(t))
	})
}

func checkSources(t *testing.T, rdb redis.UniversalClient) {
	keys, err := NewKeys("commitsrc")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	once, stream, list, dup := keys.MessageComplaint("M-1"), keys.Inbound(), keys.Timeline("C-1"), keys.Complaint("C-1")
	defer rdb.Del(ctx, once, stream, list, dup)
	rdb.Del(ctx, once, stream, list, dup)
	data := `{"id":"M-1","body":"a \"}"}`
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"data", data, "attempt", "0"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	build := func(have string) *tx {
		t := &tx{}
		t.onceString(once, "C-1", "60000", "", "")
		src := t.source(stream, id, have)
		part := src
		part.from, part.to = 0, len(data)-1
		joined := t.writePieces("RPUSH", list, [][]txPiece{{{lit: "["}, {ref: &src}, {lit: "]"}}, {{ref: &part}, {lit: `,"x":1}`}}})
		t.write("RPUSH", list, "plain")
		// A reference to a joined argument names what was joined.
		inner := joined
		inner.from, inner.to = 1, len(data)+1
		t.writePieces("HSET", dup, [][]txPiece{{{lit: "whole"}}, {{ref: &joined}}, {{lit: "inner"}}, {{ref: &inner}}})
		return t
	}
	for _, have := range []string{data + " ", data} {
		if have == data {
			// Gone altogether.
			rdb.XDel(ctx, stream, id)
		}
		_, err := build(have).run(ctx, rdb)
		if err == nil || !strings.Contains(err.Error(), sourceGone) {
			t.Fatalf("source of length %d (entry %d bytes): %v, want %q", len(have), len(data), err, sourceGone)
		}
		if n, _ := rdb.Exists(ctx, once, list, dup).Result(); n != 0 {
			t.Fatal("the change claimed or wrote something, yet its source was gone")
		}
	}
	id, err = rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"data", data, "attempt", "0"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if res, err := build(data).run(ctx, rdb); err != nil || res.status != "ok" {
		t.Fatalf("%+v, %v", res, err)
	}
	got, _ := rdb.LRange(ctx, list, 0, -1).Result()
	want := []string{"[" + data + "]", data[:len(data)-1] + `,"x":1}`, "plain"}
	if !slices.Equal(got, want) {
		t.Errorf("written %q, want %q", got, want)
	}
	if h, _ := rdb.HGetAll(ctx, dup).Result(); h["whole"] != want[0] || h["inner"] != data {
		t.Errorf("copies of a joined argument: %q, want %q and %q", h, want[0], data)
	}
}

// A conflict names the guard that failed, though only its number travels.
func TestAConflictNamesTheGuardThatFailed(t *testing.T) {
	rdb := realRedis(t)
	keys, err := NewKeys("commitguard")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, z := keys.Complaint("C-1"), keys.Complaints()
	defer rdb.Del(ctx, h, z)
	rdb.Del(ctx, h, z)
	rdb.HSet(ctx, h, "version", "2")
	tx := &tx{}
	tx.addNew("new complaint C-2", z, "1", "C-2")
	tx.fieldEquals("version of C-1", h, "version", "1")
	tx.write("HSET", h, "x", "1")
	res, err := tx.run(ctx, rdb)
	if err != nil || res.status != "conflict" || res.value != "version of C-1" {
		t.Fatalf("%+v, %v; want a conflict of \"version of C-1\"", res, err)
	}
	if n, _ := rdb.ZCard(ctx, z).Result(); n != 0 {
		t.Error("the guard before the one that failed was not undone")
	}
}

// realRedis connects to the test run's redis-server (scripts/test starts
// one), closed when the test ends; without one the test is skipped.
func realRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	url := os.Getenv("FORGETMENOT_TEST_REDIS_URL")
	if url == "" {
		t.Skip("FORGETMENOT_TEST_REDIS_URL not set (scripts/test sets it)")
	}
	rdb, err := Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// embeddedRedis starts the embedded Redis the daemon runs on by default and
// connects to it, both closed when the test ends.
func embeddedRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	emb, err := StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	rdb, err := Connect(emb.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}
