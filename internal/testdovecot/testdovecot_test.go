package testdovecot_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/forgetmenot/forgetmenot/internal/testdovecot"
)

const mail = "From: a@example.org\r\nTo: support@example.org\r\nSubject: hi\r\nMessage-ID: <m1@example.org>\r\n\r\nhello\r\n"

// TestServerLifecycle: the harness gives a working IMAP server with IDLE,
// APPEND with flags, folders, restart with the mail kept, and a new
// UIDVALIDITY on demand.
func TestServerLifecycle(t *testing.T) {
	s := testdovecot.Start(t, testdovecot.Options{})
	c := s.Dial(t, "")
	if !c.Caps().Has(imap.CapIdle) {
		t.Errorf("dovecot capabilities %v lack IDLE", c.Caps())
	}
	c.Close()

	uid := s.Append(t, "", "INBOX", []byte(mail), imap.FlagSeen)
	if uid != 1 {
		t.Errorf("first APPEND got UID %d, want 1", uid)
	}
	s.CreateFolder(t, "", "Done")
	msgs := s.Fetch(t, "", "INBOX")
	if len(msgs) != 1 || !slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Fatalf("INBOX = %+v, want one \\Seen mail", msgs)
	}

	before := s.UIDValidity(t, "", "INBOX")
	s.Restart(t)
	if n := len(s.Fetch(t, "", "INBOX")); n != 1 {
		t.Errorf("%d mails after restart, want 1", n)
	}
	if got := s.UIDValidity(t, "", "INBOX"); got != before {
		t.Errorf("restart changed UIDVALIDITY %d → %d", before, got)
	}

	s.Renumber(t, "", "INBOX", []byte(mail), []byte(strings.Replace(mail, "m1@", "m2@", 1)))
	if got := s.UIDValidity(t, "", "INBOX"); got == before {
		t.Errorf("UIDVALIDITY unchanged after Renumber")
	}
	if n := len(s.Fetch(t, "", "INBOX")); n != 2 {
		t.Errorf("%d mails after Renumber, want 2", n)
	}
}

// TestIdleWakesUp: an idling client hears of a new mail (after Dovecot's own
// notify delay).
func TestIdleWakesUp(t *testing.T) {
	s := testdovecot.Start(t, testdovecot.Options{})
	exists := make(chan uint32, 4)
	c := s.DialWith(t, "", func(n uint32) { exists <- n })
	defer c.Close()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	s.Append(t, "", "INBOX", []byte(mail))
	select {
	case n := <-exists:
		if n != 1 {
			t.Errorf("EXISTS %d, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no EXISTS during IDLE within 10 s")
	}
	_ = idle.Close()
	_ = idle.Wait()
}

// TestExtraConfigAndUsers: extra configuration and files reach Dovecot; a
// wrong password is refused.
func TestExtraConfigAndUsers(t *testing.T) {
	s := testdovecot.Start(t, testdovecot.Options{
		Users:       map[string]string{"alice": "a-secret", "bob": "b-secret"},
		Files:       map[string]string{"extra/note.txt": "{{dir}}"},
		ExtraConfig: "imap_idle_notify_interval = 1 mins\n",
	})
	out, err := s.Doveadm("config", "-h", "imap_idle_notify_interval")
	if err != nil || strings.TrimSpace(string(out)) != "1 mins" {
		t.Errorf("doveadm config = %q, %v; want the extra setting", out, err)
	}
	s.Dial(t, "bob").Close()
	if err := s.Login("alice", "wrong"); err == nil {
		t.Error("a wrong password was accepted")
	}
}

// TestMissingDovecotFailsUnderCI: without Dovecot a test is skipped on a
// developer's machine but fails under CI, which must run everything.
func TestMissingDovecotFailsUnderCI(t *testing.T) {
	if os.Getenv("TESTDOVECOT_CHILD") == "1" {
		testdovecot.Start(t, testdovecot.Options{})
		return
	}
	for _, tc := range []struct {
		ci   string
		fail bool
	}{{"1", true}, {"", false}} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestMissingDovecotFailsUnderCI$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTDOVECOT_CHILD=1", "CI="+tc.ci, testdovecot.EnvBinary+"=/nonexistent/dovecot")
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.fail {
			t.Errorf("CI=%q: failed=%v, want %v\n%s", tc.ci, failed, tc.fail, out)
		}
		if !strings.Contains(string(out), "no Dovecot for this test") {
			t.Errorf("CI=%q: the output does not say why:\n%s", tc.ci, out)
		}
		if !tc.fail && !strings.Contains(string(out), "SKIP") {
			t.Errorf("CI unset: want a skip:\n%s", out)
		}
	}
}

// TestTakenPortIsReplaced: when the chosen port is taken before Dovecot binds
// it, the server starts on another one.
func TestTakenPortIsReplaced(t *testing.T) {
	first := testdovecot.Start(t, testdovecot.Options{})
	second := testdovecot.StartOnPort(t, testdovecot.Options{}, first.Port)
	if second.Port == first.Port {
		t.Fatalf("both servers on port %d", first.Port)
	}
	second.Dial(t, "").Close()
}

// TestOwnPassdb: a passdb of the test's own (here a second passwd-file,
// written with Files) replaces the default one; {{dir}} names the server's
// directory in both.
func TestOwnPassdb(t *testing.T) {
	s := testdovecot.Start(t, testdovecot.Options{
		Files:  map[string]string{"custom-passwd": "support:{PLAIN}other-secret\n"},
		Passdb: "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {{dir}}/custom-passwd\n}\n",
	})
	if err := s.Login("support", "other-secret"); err != nil {
		t.Errorf("login with the custom passdb's password: %v", err)
	}
	if err := s.Login("support", "hunter2"); err == nil {
		t.Error("the default passdb still accepts its password")
	}
}
