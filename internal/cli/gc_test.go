package cli

import (
	"math"
	"runtime/debug"
	"testing"
)

// What must hold: serve collects at GOGC 400 under a 32 MiB soft limit
// unless the operator set GOGC or GOMEMLIMIT, which then win.
func TestServeTunesTheCollectorUnlessTheOperatorDid(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	tuneGC()
	if got := debug.SetGCPercent(100); got != daemonGCPercent {
		t.Errorf("GOGC unset: collector at %d %%, want %d", got, daemonGCPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != daemonMemoryLimit {
		t.Errorf("GOMEMLIMIT unset: limit %d, want %d", got, daemonMemoryLimit)
	}

	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetGCPercent(150)
	tuneGC()
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("GOGC=150 set by the operator: collector at %d %%, want 150", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set by the operator: limit changed to %d", got)
	}
}
