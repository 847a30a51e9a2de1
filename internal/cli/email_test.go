package cli_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/email/emailtest"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/daemon"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
)

// TestEmailQuarantineCommand: mail the daemon could not read is listed by the
// CLI with where it is and why.
func TestEmailQuarantineCommand(t *testing.T) {
	imapSrv := emailtest.StartIMAP(t, nil)
	boxes := filepath.Join(t.TempDir(), "mailboxes.yaml")
	yaml := fmt.Sprintf("mailboxes:\n  - name: support\n    host: %s\n    port: %d\n    tls: none\n    username: %s\n    password: %s\n    default_team: support-nl\n",
		imapSrv.Host, imapSrv.Port, imapSrv.Username, imapSrv.Password)
	if err := os.WriteFile(boxes, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := configs.Config{
		RedisURL: testredis.URL(t), Namespace: testredis.Namespace(), HTTPAddr: "127.0.0.1:0",
		OwnersFile: "../../configs/owners.yaml", RoutingFile: "../../configs/routing.yaml",
		ReopenWindow: configs.Duration(24 * time.Hour), MaxMessageBytes: 1 << 20, RouterWorkers: 1, DeliveryWorkers: 1,
		MaxAttempts: 3, ReclaimIdle: configs.Duration(5 * time.Second), ShutdownTimeout: configs.Duration(5 * time.Second),
		LogLevel: "error", LogFormat: "text", APIToken: "cli-test-token", MailboxesFile: boxes,
	}
	d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	t.Setenv("FORGETMENOT_API_URL", "http://"+d.Addr())
	t.Setenv("FORGETMENOT_API_TOKEN", "cli-test-token")

	if code, out, _ := run("email", "quarantine"); code != 0 || !strings.Contains(out, "No quarantined mail.") {
		t.Fatalf("empty quarantine: %d %q", code, out)
	}
	imapSrv.Deliver(t, "INBOX", []byte(" Subject: kapot\r\n\r\nniet te lezen\r\n"))
	var out string
	testkit.WaitFor(t, "the broken mail in the quarantine", func() bool {
		_, out, _ = run("email", "quarantine")
		return strings.Contains(out, "support")
	})
	if !strings.Contains(out, "INBOX") || !strings.Contains(out, "unparseable") {
		t.Errorf("quarantine listing lacks where and why:\n%s", out)
	}
	if code, out, _ := run("email", "quarantine", "--json"); code != 0 || !strings.Contains(out, `"uid": 1`) {
		t.Errorf("--json: %d %s", code, out)
	}
}
