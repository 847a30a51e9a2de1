package email_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/email"
	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/router"
)

// BenchmarkDrainMailbox: a mailbox of 10,000 waiting mails read into the
// queue (real IMAP server, real Redis); reports messages/s.
func BenchmarkDrainMailbox(b *testing.B) {
	const n = 10000
	srv := emailtest.StartIMAP(b, nil)
	for i := range n {
		srv.Deliver(b, "INBOX", mailN(i, ""))
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		b.StopTimer()
		w := newWorld(b) // a fresh namespace: nothing ingested yet
		var got atomic.Int64
		done := make(chan struct{})
		in, err := email.NewIngester(email.IngesterConfig{
			Mailbox: email.Mailbox{Name: "bench", Host: srv.Host, Port: srv.Port, TLS: email.TLSNone, Username: srv.Username, Password: srv.Password},
			Queue:   w.store, State: w.state, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnIngested: func(router.Message, bool) {
				if got.Add(1) == n {
					close(done)
				}
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		b.StartTimer()
		go func() { _ = in.Run(ctx) }()
		select {
		case <-done:
		case <-time.After(5 * time.Minute):
			b.Fatalf("drained %d of %d", got.Load(), n)
		}
		b.StopTimer()
		cancel()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "messages/s")
}

// BenchmarkNewMailToQueueWithIdle: how long a new mail takes from delivery
// into the mailbox until it is in the queue, with IDLE.
func BenchmarkNewMailToQueueWithIdle(b *testing.B) {
	srv := emailtest.StartIMAP(b, nil)
	w := newWorld(b)
	arrived := make(chan string, 1)
	idling := make(chan struct{}, 1)
	in, err := email.NewIngester(email.IngesterConfig{
		Mailbox: email.Mailbox{Name: "bench", Host: srv.Host, Port: srv.Port, TLS: email.TLSNone, Username: srv.Username, Password: srv.Password, PollInterval: time.Hour},
		Queue:   w.store, State: w.state, Logger: slog.New(emailtest.IdleSignal(idling)),
		OnIngested: func(m router.Message, _ bool) { arrived <- m.SourceID },
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = in.Run(ctx) }()
	b.ResetTimer()
	for i := range b.N {
		// The mail arrives while the ingester is idle, as real mail does.
		// (go-imap's in-memory server starts listening for changes just after
		// it acknowledged IDLE: give it that moment.)
		b.StopTimer()
		<-idling
		time.Sleep(5 * time.Millisecond)
		b.StartTimer()
		srv.Deliver(b, "INBOX", mailN(i, ""))
		select {
		case id := <-arrived:
			if !strings.HasPrefix(id, fmt.Sprintf("vraag-%d@voorbeeld.nl#", i)) {
				b.Fatalf("got %s for mail %d", id, i)
			}
		case <-time.After(time.Minute):
			b.Fatalf("mail %d never arrived", i)
		}
	}
}
