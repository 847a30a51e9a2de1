// Package faults holds forgetmenot's proof under faults: a test suite that
// builds the real binary, runs several `serve` replicas against real
// redis-server processes on loopback, puts a steady signed webhook load on
// them and breaks things on purpose (kill -9, Redis restarts, a proxy that
// drops or stalls connections, SIGSTOP, poison messages, bad input, a Redis
// Cluster). After every scenario it checks the invariants:
//
//	I1 every message answered 2xx is on exactly one complaint;
//	I2 every open complaint has exactly one owner, changed only by an audited
//	   reassignment;
//	I3 every assignment is notified, and duplicates (a replica dying between
//	   notifying and acknowledging) are counted and bounded.
//
// `go test ./internal/faults` runs a short version (CI); -faults.cycles=N runs
// N kill -9 cycles. The benchmark report (scripts/bench) lives here too,
// because it drives the same harness.
package faults
