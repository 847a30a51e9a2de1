package queue

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// An argument built from one reference alone is sent as that reference
// ("\0s1", without "\0+"). A later reference to the argument must copy what
// it was built into, as tx.text (which Go computes offsets from) says, not
// the reference's own three bytes. Commit builds no such pair today; the
// next use of the pieces must not meet it.
func TestAReferenceToASingleReferenceArgumentCopiesWhatItBuilt(t *testing.T) {
	rdb := embeddedRedis(t)
	keys, _ := NewKeys("singleref")
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
