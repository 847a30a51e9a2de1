package privacy

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/email"
	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/router"
)

// A customer whose mail the real e-mail channel read from a real IMAP
// server (checkpoints, the lease, headers kept as metadata) and answered
// through SMTP is erased from every key by their address.
func TestEraseACustomerWhoWroteByEmail(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	srv := emailtest.StartIMAP(t, nil)
	raw, err := os.ReadFile("../../channels/email/testdata/nl_iso8859_qp.eml")
	if err != nil {
		t.Fatal(err)
	}
	srv.Deliver(t, "INBOX", raw)
	got := make(chan router.Message, 4)
	logs := &testkit.LockedBuffer{}
	in, err := email.NewIngester(email.IngesterConfig{
		Mailbox: email.Mailbox{Name: "inbox-nl", Host: srv.Host, Port: srv.Port, TLS: email.TLSNone, Username: srv.Username, Password: srv.Password,
			DefaultTeam: "support", PollInterval: 50 * time.Millisecond},
		Queue: w.store, State: w.store.State("email"), Logger: slog.New(slog.NewTextHandler(logs, nil)),
		OnIngested: func(m router.Message, _ bool) { got <- m },
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = in.Run(runCtx); close(done) }()
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		t.Fatalf("the mail was not read:\n%s", logs)
	}
	cancel()
	<-done
	var c router.Complaint
	testkit.WaitFor(t, "the mail to be routed", func() bool {
		cs, err := w.store.Complaints(ctx, router.Filter{Customer: "jan.deboer@voorbeeld.nl"})
		if err != nil || len(cs) == 0 {
			return false
		}
		c = cs[0]
		return true
	})
	id := c.ID
	if _, err := w.router.Reply(ctx, id, c.Owner, "Beste Jan de Boër, het pakket komt morgen."); err != nil {
		t.Fatal(err)
	}
	w.settle()
	testkit.WaitFor(t, "the reply to be sent", func() bool { return len(w.smtp.To("jan.deboer@voorbeeld.nl")) >= 2 })

	needles := []string{"jan.deboer@voorbeeld.nl", "Jan de Boër", "AM0PR07MB4412C1D2E3F4A5B6", "sorteercentrum", "pakket komt morgen"}
	before := w.dump()
	for _, n := range needles {
		if len(traces(before, []string{n})) == 0 {
			t.Fatalf("the e-mail channel stored no %q", n)
		}
	}
	res, err := w.service(t, nil).Erase(ctx, EraseRequest{Customer: "jan.deboer@voorbeeld.nl", Reason: "request", Actor: "anna", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Complaints) != 1 || !strings.Contains(strings.Join(res.NotErased, " "), "e-mails already sent") {
		t.Errorf("result %+v", res)
	}
	w.settle()
	dump := w.dump()
	if got := traces(dump, needles); len(got) > 0 {
		t.Errorf("after the erasure the customer is still in:\n%s", strings.Join(got, "\n"))
	}
	for k := range dump {
		if _, ok := w.keys.KindOf(k); !ok {
			t.Errorf("key %s is of no kind in the erasure map", k)
		}
	}
	w.checkInvariants()
}
