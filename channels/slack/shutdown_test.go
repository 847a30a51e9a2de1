package slack_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/slack"
	"github.com/forgetmenot/forgetmenot/router"
)

// At shutdown the daemon's Slack component stops (Stop, on ctx.Done) while
// the outbox consumer still finishes its in-flight delivery. When that
// delivery fails every route, the "Not delivered" alert must be posted
// before Notify returns: background work started after Stop is waited for
// by nobody, and the process would exit without the alarm.
func TestUndeliveredAlertDuringShutdownIsPostedBeforeNotifyReturns(t *testing.T) {
	m := &mailer{}
	f := newFixture(t, func(c *slack.Config) {
		c.LeadChannel, c.Mailer, c.LinkBase = "CLEAD", m, "https://support.example.com"
		c.Pace = time.Second // Slack's pace for one channel, as in production
	})
	f.ws.AddChannel("CLEAD")
	out := f.route(router.Message{Channel: router.ChannelWebhook, SourceID: "rv1", Customer: router.Customer{Name: "Bo", Email: "bo@example.com"}, Body: "No answer."})
	ns := f.pending()
	m.err = router.Permanent(errors.New("550 mailbox unavailable"))
	f.ws.Fail("chat.postMessage", 3, 0, "invalid_blocks")

	f.slack.Stop() // shutdown began: the component waited for its background work
	err := f.slack.Notify(f.ctx, ns[0])
	if !router.IsPermanent(err) {
		t.Fatalf("every route failed: %v, want permanent", err)
	}
	// Notify returned: the outbox dead-letters the entry, the consumer and
	// then the daemon return. Whatever is not posted now is never waited for.
	time.Sleep(50 * time.Millisecond)
	found := false
	for _, p := range f.leadPosts() {
		found = found || (strings.Contains(p.Text, "Not delivered") && strings.Contains(p.Text, out.ComplaintID))
	}
	if !found {
		t.Errorf("the undelivered alert for %s was not posted by the time Notify returned after Stop: lost at exit", out.ComplaintID)
	}
	f.slack.Wait()
}
