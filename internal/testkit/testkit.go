// Package testkit has small helpers shared by forgetmenot's tests.
package testkit

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing the test after 20 seconds. It
// waits for asynchronous work to happen; it never measures how fast.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
