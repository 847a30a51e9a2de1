package slack

import "time"

// SetLastAttemptSlackBudget shortens the Slack share of a last attempt for a
// test, and returns how to put it back.
func SetLastAttemptSlackBudget(d time.Duration) (restore func()) {
	old := lastAttemptSlackBudget
	lastAttemptSlackBudget = d
	return func() { lastAttemptSlackBudget = old }
}
