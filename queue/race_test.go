//go:build race

package queue_test

// raceEnabled: the race detector slows handlers some tenfold, so batches
// of reads and acknowledgements are smaller and their share per message
// larger (see TestCostPerNewComplaint).
const raceEnabled = true
