//go:build race

package faults_test

// raceEnabled builds the daemon under test with the race detector too, so a
// data race that only faults provoke fails the suite.
const raceEnabled = true
