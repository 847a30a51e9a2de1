package queue

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// REVIEW (latent, fails on main at e7d77a4; not reachable from Commit
// today): a pieces argument made of ONE reference is sent as "\0s1" (or
// "\0<n>") without "\0+", so the script does not record it in joined; a
// later reference to that argument derefs ARGV, i.e. the 3-byte text
// "\0s1", while tx.text (which Go uses for offsets, entryPart, reuse) says
// it is the source's data.
func TestReviewReferenceToASingleReferenceArgument(t *testing.T) {
	emb, err := StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	rdb, err := Connect(emb.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	keys, _ := NewKeys("reviewref")
	ctx := context.Background()
	data := `{"id":"M-1","body":"hello"}`
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Inbound(), Values: []string{"data", data, "attempt", "0"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	tx := &tx{}
	src := tx.source(keys.Inbound(), id, data)
	first := tx.writePieces("RPUSH", keys.Timeline("C-1"), [][]txPiece{{{ref: &src}}})
	tx.writePieces("HSET", keys.Complaint("C-1"), [][]txPiece{{{lit: "copy"}}, {{ref: &first}}})
	if got := tx.text(first); got != data {
		t.Fatalf("tx.text %q", got)
	}
	if _, err := tx.run(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	if got, _ := rdb.HGet(ctx, keys.Complaint("C-1"), "copy").Result(); got != data {
		t.Errorf("copy of a single-reference argument: %q, want %q (what tx.text says)", got, data)
	}
}
