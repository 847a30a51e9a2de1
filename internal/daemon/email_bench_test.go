package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/daemon"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/router"
)

// BenchmarkEmailNewMailToComplaint: from a mail landing in the mailbox to an
// open complaint with an owner, through IDLE, the queue and the router.
func BenchmarkEmailNewMailToComplaint(b *testing.B) {
	imapSrv := emailtest.StartIMAP(b, nil)
	idling := make(chan struct{}, 1)
	d := newMailDaemon(b, imapSrv.Host, imapSrv.Port, imapSrv.Username, imapSrv.Password, idling)
	runDaemon(b, d)

	b.ResetTimer()
	for i := range b.N {
		addr := fmt.Sprintf("klant%d@voorbeeld.nl", i)
		raw := fmt.Sprintf("From: %s\r\nTo: support@winkel.example\r\nSubject: Vraag %d\r\nMessage-ID: <bench-%d@voorbeeld.nl>\r\n\r\nWaar is mijn bestelling %d?\r\n", addr, i, i, i)
		// The mail arrives while the mailbox is idle, as real mail does (the
		// in-memory server needs a moment after acknowledging IDLE).
		b.StopTimer()
		<-idling
		time.Sleep(5 * time.Millisecond)
		b.StartTimer()
		imapSrv.Deliver(b, "INBOX", []byte(raw))
		deadline := time.Now().Add(time.Minute)
		for {
			cs, err := d.Router().Complaints(context.Background(), router.Filter{Customer: addr})
			if err == nil && len(cs) == 1 && cs[0].Owner != "" {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("mail %d never became a complaint", i)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
}

// newMailDaemon builds a daemon reading one mailbox (support, team
// support-nl) on the IMAP server at host:port, that signals idling whenever
// the mailbox goes into IDLE; runDaemon runs it until the benchmark ends.
func newMailDaemon(b *testing.B, host string, port int, username, password string, idling chan struct{}) *daemon.Daemon {
	b.Helper()
	boxes := filepath.Join(b.TempDir(), "mailboxes.yaml")
	yaml := fmt.Sprintf("mailboxes:\n  - name: support\n    host: %s\n    port: %d\n    tls: none\n    username: %s\n    password: %s\n    default_team: support-nl\n",
		host, port, username, password)
	if err := os.WriteFile(boxes, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := configs.Config{
		RedisURL: testredis.URL(b), Namespace: testredis.Namespace(), HTTPAddr: "127.0.0.1:0",
		OwnersFile: "../../configs/owners.yaml", RoutingFile: "../../configs/routing.yaml",
		ReopenWindow: configs.Duration(24 * time.Hour), MaxMessageBytes: 1 << 20, RouterWorkers: 2, DeliveryWorkers: 1,
		MaxAttempts: 3, ReclaimIdle: configs.Duration(5 * time.Second), ShutdownTimeout: configs.Duration(5 * time.Second),
		LogLevel: "error", LogFormat: "text", MailboxesFile: boxes,
	}
	d, err := daemon.New(cfg, slog.New(emailtest.IdleSignal(idling)))
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func runDaemon(b *testing.B, d *daemon.Daemon) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
}
