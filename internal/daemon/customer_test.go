package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/daemon"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/router"
)

// withSender plugs a channel sender into the daemon under test.
type withSender struct {
	channel router.Channel
	sender  daemon.CustomerSender
}

// mailbox stands in for a channel's far end: it records what customers were
// sent, and fails the first `transient` sends and every send to `refuse`.
type mailbox struct {
	mu        sync.Mutex
	sent      []router.CustomerMessage
	attempts  int
	transient int
	refuse    string
}

func (m *mailbox) Send(ctx context.Context, msg router.CustomerMessage) (router.Sent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts++
	if m.attempts <= m.transient {
		return router.Sent{}, fmt.Errorf("421 4.3.0 try again later")
	}
	if msg.Complaint.Customer.Email == m.refuse {
		return router.Sent{}, router.Permanent(fmt.Errorf("550 5.1.1 <%s>: mailbox unknown", m.refuse))
	}
	m.sent = append(m.sent, msg)
	ref := fmt.Sprintf("<%s@support.example>", strings.ReplaceAll(msg.ID, ":", "."))
	return router.Sent{Ref: ref, ThreadKeys: []string{"email:" + ref}}, nil
}

func (m *mailbox) delivered(kind router.CustomerMessageKind) []router.CustomerMessage {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []router.CustomerMessage
	for _, s := range m.sent {
		if s.Kind == kind {
			out = append(out, s)
		}
	}
	return out
}

func timelineEvents(r *running, id, typ string) []map[string]any {
	r.t.Helper()
	_, detail := r.call("GET", "/v1/complaints/"+id, nil, "")
	var out []map[string]any
	for _, e := range detail["timeline"].([]any) {
		if ev, ok := e.(map[string]any)["event"].(map[string]any); ok && ev["type"] == typ {
			out = append(out, ev)
		}
	}
	return out
}

func TestReplyReachesTheCustomerThroughTheOutboxWithRetries(t *testing.T) {
	mail := &mailbox{transient: 1}
	r := start(t, testredis.URL(t), withSender{router.ChannelEmail, mail})
	// A webhook complaint from a customer with an address: webhook cannot
	// answer, so e-mail carries the acknowledgement and the reply.
	code, out := r.post(`{"source_id":"form-7","customer":{"name":"Jan","email":"jan@voorbeeld.nl"},"subject":"Kapotte stoel","body":"De stoel die ik kocht is kapot aangekomen."}`, "")
	if code != http.StatusAccepted {
		t.Fatalf("ingest: %d %v", code, out)
	}
	id := r.routed(out["message_id"].(string), "")["complaint_id"].(string)
	testkit.WaitFor(t, "the acknowledgement to be sent (after one transient failure)", func() bool {
		return len(mail.delivered(router.ToCustomerAcknowledgement)) == 1
	})

	code, res := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": "Excuses, er komt vandaag een nieuwe.", "actor": "anna"}, "")
	if code != 200 {
		t.Fatalf("reply: %d %v", code, res)
	}
	testkit.WaitFor(t, "the reply to be sent and recorded", func() bool {
		return len(mail.delivered(router.ToCustomerReply)) == 1 && len(timelineEvents(r, id, "sent")) == 2
	})
	if got := mail.delivered(router.ToCustomerReply)[0].Body; got != "Excuses, er komt vandaag een nieuwe." {
		t.Errorf("customer got %q", got)
	}
	if n := len(mail.delivered(router.ToCustomerAcknowledgement)); n != 1 {
		t.Errorf("acknowledgements delivered = %d, want exactly 1 (no duplicate after the retry)", n)
	}

	sent := timelineEvents(r, id, "sent")[1]["details"].(map[string]any)
	if sent["kind"] != "reply" || !strings.HasSuffix(sent["ref"].(string), "@support.example>") {
		t.Errorf("reply recorded as sent with %v, want its kind and the channel's reference", sent)
	}
}

func TestUndeliverableReplyIsRecordedAndToldToTheOwner(t *testing.T) {
	mail := &mailbox{refuse: "weg@voorbeeld.nl"}
	r := start(t, testredis.URL(t), withSender{router.ChannelEmail, mail}, func(c *configs.Config) { c.MaxAttempts = 3 })
	code, out := r.post(`{"source_id":"form-9","customer":{"email":"weg@voorbeeld.nl"},"body":"Mijn rekening klopt niet."}`, "")
	if code != http.StatusAccepted {
		t.Fatalf("ingest: %d %v", code, out)
	}
	id := r.routed(out["message_id"].(string), "")["complaint_id"].(string)
	if code, res := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": "Wij kijken ernaar."}, ""); code != 200 {
		t.Fatalf("reply: %d %v", code, res)
	}
	testkit.WaitFor(t, "both failures on the timeline and the owner told", func() bool {
		return len(timelineEvents(r, id, "delivery_failed")) == 2 && r.notes.count(router.NotifyDeliveryFailed) == 2
	})
	if mail.attempts != 2 {
		t.Errorf("%d send attempts, want 2: a permanent failure is not retried", mail.attempts)
	}
	failed := timelineEvents(r, id, "delivery_failed")[1]
	if !strings.Contains(failed["reason"].(string), "550 5.1.1") || failed["text"] != "Wij kijken ernaar." {
		t.Errorf("failure recorded as %v", failed)
	}
}

func TestReplyWithoutAChannelIsRefusedAtOnce(t *testing.T) {
	r := start(t, testredis.URL(t)) // no sender configured at all
	code, out := r.post(`{"source_id":"form-10","customer":{"email":"jan@voorbeeld.nl"},"body":"Kapot."}`, "")
	if code != http.StatusAccepted {
		t.Fatalf("ingest: %d %v", code, out)
	}
	id := r.routed(out["message_id"].(string), "")["complaint_id"].(string)
	code, res := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": "We are on it."}, "")
	if code != http.StatusBadRequest || res["field"] != "channel" || !strings.Contains(res["error"].(string), "e-mail is not configured") {
		t.Fatalf("reply without a channel: %d %v, want 400 naming the channel problem", code, res)
	}
	for _, step := range []struct{ path, body string }{
		{"acknowledge", `{}`}, {"notes", `{"text":"Called, no answer."}`}, {"promise", `{"by":"2099-01-02T10:00:00Z","note":"Call back"}`},
	} {
		code, res := r.do("POST", "/v1/complaints/"+id+"/"+step.path, []byte(step.body), nil)
		if code != 200 {
			t.Errorf("%s: %d %v", step.path, code, res)
		}
	}
	if n := len(timelineEvents(r, id, "promised")); n != 1 {
		t.Errorf("%d promised events, want 1", n)
	}
}
