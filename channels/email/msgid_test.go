package email_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/forgetmenot/forgetmenot/channels/email"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
)

// TestMessageIDsArePerDeploymentStableAndUnguessable: the same customer
// message gets the same id in one deployment (across Sender instances and
// restarts: the secret is in Redis), different ids in two deployments that
// share a domain, and ids that cannot be made up from a complaint number.
// Replicas creating the secret at the same moment agree on one.
func TestMessageIDsArePerDeploymentStableAndUnguessable(t *testing.T) {
	ctx := context.Background()
	rdb, keysA := testredis.Client(t)
	_, keysB := testredis.Client(t)
	stateA := queue.NewStore(rdb, keysA, 0).State("email")
	stateB := queue.NewStore(rdb, keysB, 0).State("email")

	// Ten replicas start at once on a fresh deployment.
	ids := make([]string, 10)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			id, err := email.NewMessageIDs(stateA).For(ctx, "C-1001:v1:acknowledgement", "winkel.example")
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("replicas minted different ids for one message: %q vs %q", ids[0], id)
		}
	}
	a := ids[0]
	if !strings.HasPrefix(a, "fmn.C-1001.v1.acknowledgement.") || !strings.HasSuffix(a, "@winkel.example") || len(a) < len("fmn.C-1001.v1.acknowledgement.@winkel.example")+20 {
		t.Errorf("id %q lacks its readable part, its tag or the domain", a)
	}
	b, err := email.NewMessageIDs(stateB).For(ctx, "C-1001:v1:acknowledgement", "winkel.example")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two deployments sharing a domain minted the same id %q", a)
	}

	mine := email.NewMessageIDs(stateA)
	for id, want := range map[string]bool{
		a:                              true,
		strings.ToUpper(a[:4]) + a[4:]: false,
		b:                              false, // the other deployment's
		"fmn.C-1001.v1.acknowledgement@winkel.example":   false, // the old, guessable form
		"fmn.C-1002.v1.acknowledgement." + a[len(a)-39:]: false, // another complaint, a copied tag
		"q1@voorbeeld.nl": false,
		"fmn.@x":          false,
		"":                false,
	} {
		got, err := mine.Ours(ctx, id)
		if err != nil || got != want {
			t.Errorf("Ours(%q) = %v, %v; want %v", id, got, err, want)
		}
	}
}

// TestForgedBounceReachesNoComplaint: a delivery report naming a Message-ID
// we minted stays a delivery report (it will land on that mail's
// complaint); one naming a guessable or foreign id is an ordinary message.
func TestForgedBounceReachesNoComplaint(t *testing.T) {
	ctx := context.Background()
	peer := startIMAP(t, nil)
	w := newWorld(t)
	real, err := email.NewMessageIDs(w.state).For(ctx, "C-1002:v1:acknowledgement", "winkel.example")
	if err != nil {
		t.Fatal(err)
	}
	bounce, err := os.ReadFile("testdata/bounce_dsn.eml")
	if err != nil {
		t.Fatal(err)
	}
	const original = "fmn.C-1002.v1.acknowledgement@winkel.example"
	if !strings.Contains(string(bounce), original) {
		t.Fatalf("fixture no longer names %s", original)
	}
	withID := func(id, msgid string) []byte {
		s := strings.ReplaceAll(string(bounce), original, id)
		return []byte(strings.Replace(s, "20251111061244.3F2A1C0123@mail.winkel.example", msgid, 1))
	}
	peer.deliver(t, "INBOX", withID(real, "b1@mail.winkel.example"))
	peer.deliver(t, "INBOX", withID(original, "b2@mail.winkel.example"))          // guessed from a complaint number
	peer.deliver(t, "INBOX", withID("q1@voorbeeld.nl", "b3@mail.winkel.example")) // a customer's own mail
	stop := w.run(t, mailbox(peer))
	testkit.WaitFor(t, "three bounces ingested", func() bool { return len(w.inbound(t)) >= 3 })
	stop()
	for _, m := range w.inbound(t) {
		isReal := m.Metadata[email.MetaMessageID] == "b1@mail.winkel.example"
		if isReal && (m.DeliveryReport == nil || m.DeliveryReport.For != email.ThreadKey(real)) {
			t.Errorf("the bounce of our mail lost its report: %+v", m.DeliveryReport)
		}
		if !isReal && m.DeliveryReport != nil {
			t.Errorf("a forged bounce (%s) kept its report for %s", m.Metadata[email.MetaMessageID], m.DeliveryReport.For)
		}
		if !isReal && m.NoAutoReply == "" {
			t.Errorf("a forged bounce may still not be answered: %+v", m)
		}
	}
}
