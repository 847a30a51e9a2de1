package daemon_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testdovecot"
	"github.com/forgetmenot/forgetmenot/router"
)

// assignedSignal is a notifier that reports each assignment's customer.
type assignedSignal chan string

func (s assignedSignal) Notify(_ context.Context, n router.Notification) error {
	if n.Kind == router.NotifyAssigned {
		s <- n.Complaint.Customer.Email
	}
	return nil
}

// BenchmarkEmailMailToOwnerNotifiedDovecot: from a mail appended to a real
// Dovecot mailbox to its owner being notified, through IDLE, the queue and
// the router. Reports p50 and p99 in milliseconds. Dovecot tells an idling
// client of new mail only after its own notify delay of about 500 ms, so
// that is the floor of these figures, not forgetmenot's own cost (see
// BenchmarkEmailNewMailToComplaint for the in-memory server without it).
func BenchmarkEmailMailToOwnerNotifiedDovecot(b *testing.B) {
	dc := testdovecot.Start(b, testdovecot.Options{})
	idling := make(chan struct{}, 1)
	d := newMailDaemon(b, dc.Host, dc.Port, dc.Username, dc.Password, idling)
	notified := make(assignedSignal, 16)
	d.SetNotifier(notified)
	runDaemon(b, d)

	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		addr := fmt.Sprintf("klant%d@voorbeeld.nl", i)
		raw := fmt.Sprintf("From: %s\r\nTo: support@winkel.example\r\nSubject: Vraag %d\r\nMessage-ID: <dc-bench-%d@voorbeeld.nl>\r\n\r\nWaar is mijn bestelling %d?\r\n", addr, i, i, i)
		b.StopTimer()
		select {
		case <-idling: // the mail arrives while the mailbox is idle, as real mail does
		case <-time.After(time.Minute):
			b.Fatal("the mailbox never went into IDLE")
		}
		b.StartTimer()
		dc.Append(b, "", "INBOX", []byte(raw))
		start := time.Now()
	wait:
		for {
			select {
			case who := <-notified:
				if who == addr {
					break wait
				}
			case <-time.After(time.Minute):
				b.Fatalf("mail %d: its owner was never notified", i)
			}
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	at := func(q float64) float64 {
		return float64(took[min(len(took)-1, int(q*float64(len(took))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
