// Package testdovecot runs a real Dovecot IMAP server (Debian's
// dovecot-imapd) for tests: its own configuration, users, maildirs, sockets
// and logs in a temporary directory, listening on a free loopback port, and
// stopped when the test ends.
//
// Dovecot runs as the current user. As root (CI containers) the mail
// processes run as "nobody", because Dovecot refuses uid 0 for them; the
// login and auth processes use Debian's dovenull and dovecot users. Without
// root it runs entirely as the current user.
//
// Without Dovecot a test is skipped, except under CI (CI set), where it
// fails: CI must run everything.
//
// Dovecot's IDLE reports new mail only after its own notify delay of about
// half a second (NOTIFY_DELAY_MSECS in its mailbox watcher), so a mail
// appended to a mailbox reaches an idling client ~0.5 s later, never sooner.
// A failed login is answered after ~0.5 s; the growing per-IP auth penalty
// is switched off, since every test connects from 127.0.0.1.
package testdovecot

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Options shape the server. The zero value gives one user, support/hunter2,
// with password logins (PLAIN, LOGIN) over plain TCP.
type Options struct {
	// Users maps user names to passwords (passwd-file passdb). Empty means
	// {"support": "hunter2"}.
	Users map[string]string
	// AuthMechanisms replaces "plain login", e.g. "plain login xoauth2
	// oauthbearer".
	AuthMechanisms string
	// Passdb, when set, replaces the passwd-file passdb block entirely (the
	// users still exist for the userdb). {{dir}} is replaced by the
	// server's directory.
	Passdb string
	// ExtraConfig is appended to dovecot.conf; {{dir}} is replaced by the
	// server's directory. Later settings override earlier ones.
	ExtraConfig string
	// Files are written into the server's directory before start (name
	// relative to it → content, {{dir}} replaced), e.g. an oauth2 passdb's
	// args file.
	Files map[string]string
}

// Server is a running Dovecot.
type Server struct {
	Dir  string // everything of this server lives here
	Host string
	Port int
	Addr string // host:port of the IMAP listener

	// Username and Password are the first user (sorted by name).
	Username string
	Password string

	users  map[string]string
	conf   string
	logs   string
	binary string

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when the current process has been reaped.
	exited chan struct{}
	output string // the master's stdout and stderr
}

// EnvBinary names a variable that points the tests at a dovecot executable
// elsewhere than on PATH or in /usr/sbin.
const EnvBinary = "FORGETMENOT_TEST_DOVECOT"

// Binary finds the dovecot executable: $FORGETMENOT_TEST_DOVECOT, on PATH,
// or in /usr/sbin (which a non-root PATH often lacks).
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			return "", fmt.Errorf("%s=%s is not an executable", EnvBinary, p)
		}
		return p, nil
	}
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/dovecot", "/usr/local/sbin/dovecot"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("dovecot not found on PATH or in /usr/sbin (Debian package dovecot-imapd)")
}

// Require returns the dovecot binary, or skips the test (fails it under CI).
func Require(t testing.TB) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		msg := "no Dovecot for this test: " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// Start configures and starts a Dovecot; it is stopped and its directory
// removed when the test ends. On failure the test's log shows Dovecot's log.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	return startOn(t, opts, 0)
}

// startOn starts on port, or a free one when port is 0.
func startOn(t testing.TB, opts Options, port int) *Server {
	t.Helper()
	bin := Require(t)
	s, err := newServer(bin, opts, port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("dovecot log (%s):\n%s", s.Dir, s.Log())
		}
		_ = os.RemoveAll(s.Dir)
	})
	for attempt := 1; ; attempt++ {
		err := s.start()
		if err == nil {
			return s
		}
		// The free port was taken between choosing and binding it.
		if attempt < 5 && strings.Contains(s.Log(), "Address already in use") {
			if err := s.movePort(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Fatalf("starting dovecot: %v\n%s", err, s.Log())
	}
}

// movePort rewrites the configuration for another free port.
func (s *Server) movePort() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	conf, err := os.ReadFile(s.conf)
	if err != nil {
		return err
	}
	old, now := strconv.Itoa(s.Port), strconv.Itoa(port)
	text := strings.Replace(string(conf), "    port = "+old+"\n", "    port = "+now+"\n", 1)
	text = strings.Replace(text, "instance_name = testdovecot-"+old+"\n", "instance_name = testdovecot-"+now+"\n", 1)
	if err := os.WriteFile(s.conf, []byte(text), 0o644); err != nil {
		return err
	}
	s.Port, s.Addr = port, net.JoinHostPort(s.Host, now)
	return nil
}

func newServer(bin string, opts Options, port int) (*Server, error) {
	dir, err := os.MkdirTemp("", "testdovecot-")
	if err != nil {
		return nil, err
	}
	// The unprivileged mail and auth processes must reach their files.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	users := opts.Users
	if len(users) == 0 {
		users = map[string]string{"support": "hunter2"}
	}
	s := &Server{Dir: dir, Host: "127.0.0.1", users: users, binary: bin, output: filepath.Join(dir, "dovecot.out"),
		conf: filepath.Join(dir, "dovecot.conf"), logs: filepath.Join(dir, "dovecot.log")}
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	s.Username, s.Password = names[0], users[names[0]]

	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	s.Port = port
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))

	mailUID, mailGID, loginUser, internalUser, err := accounts()
	if err != nil {
		return nil, err
	}
	groupLine := "" // as root, Debian's dovecot group
	if os.Geteuid() != 0 {
		g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
		if err != nil {
			return nil, err
		}
		groupLine = "default_internal_group = " + g.Name + "\n"
	}
	var passwd strings.Builder
	for _, u := range names {
		if strings.ContainsAny(u+users[u], ":\n") {
			return nil, fmt.Errorf("test user %q: no ':' or newline in names and passwords", u)
		}
		fmt.Fprintf(&passwd, "%s:{PLAIN}%s\n", u, users[u])
		home := filepath.Join(dir, "home", u)
		if err := os.MkdirAll(filepath.Join(home, "Maildir"), 0o700); err != nil {
			return nil, err
		}
		if err := chownTree(filepath.Join(dir, "home"), mailUID, mailGID); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd.String()), 0o644); err != nil {
		return nil, err
	}
	for name, content := range opts.Files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(content, "{{dir}}", dir)), 0o644); err != nil {
			return nil, err
		}
	}
	mechs := opts.AuthMechanisms
	if mechs == "" {
		mechs = "plain login"
	}
	passdb := strings.ReplaceAll(opts.Passdb, "{{dir}}", dir)
	if passdb == "" {
		passdb = fmt.Sprintf("passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%%u %s\n}\n", filepath.Join(dir, "passwd"))
	}
	conf := fmt.Sprintf(`# Generated by forgetmenot's internal/testdovecot.
base_dir = %[1]s/run
state_dir = %[1]s/state
instance_name = testdovecot-%[2]d
log_path = %[1]s/dovecot.log
info_log_path = %[1]s/dovecot.log
debug_log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = %[3]s
default_login_user = %[4]s
default_internal_user = %[5]s
%[10]sfirst_valid_uid = %[6]d
first_valid_gid = 1
mail_location = maildir:~/Maildir
mail_uid = %[6]d
mail_gid = %[7]d
mail_plugins =
shutdown_clients = yes
# Tests reconnect quickly and often, and try wrong credentials on purpose
# (Dovecot's default waits 2 s before answering a failed login).
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
mail_max_userip_connections = 100
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
  # No auth penalty (2, 4, 8… s per failed login from one IP, all tests
  # come from 127.0.0.1): Dovecot's documented way to disable it.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
service auth {
  unix_listener auth-userdb {
    mode = 0666
  }
}
namespace inbox {
  inbox = yes
  separator = /
}
%[8]s
userdb {
  driver = static
  args = uid=%[6]d gid=%[7]d home=%[1]s/home/%%n
}
%[9]s
`, dir, port, mechs, loginUser, internalUser, mailUID, mailGID, passdb,
		strings.ReplaceAll(opts.ExtraConfig, "{{dir}}", dir), groupLine)
	if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return s, nil
}

// accounts picks the uids Dovecot's processes run as.
func accounts() (mailUID, mailGID int, loginUser, internalUser string, err error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return 0, 0, "", "", err
		}
		return os.Getuid(), os.Getgid(), u.Username, u.Username, nil
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		return 0, 0, "", "", fmt.Errorf("running as root needs an unprivileged mail user: %w", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	loginUser, internalUser = "dovenull", "dovecot"
	if _, err := user.Lookup(loginUser); err != nil {
		loginUser = "nobody"
	}
	if _, err := user.Lookup(internalUser); err != nil {
		internalUser = "nobody"
	}
	return uid, gid, loginUser, internalUser, nil
}

func chownTree(root string, uid, gid int) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Dovecot logs "starting up" once its listeners are bound; a greeting
	// alone could come from another server that holds the port.
	startsBefore := strings.Count(s.Log(), startingUp)
	cmd := exec.Command(s.binary, "-F", "-c", s.conf)
	// A file, not a pipe: Wait would otherwise wait for every child that
	// inherited the pipe, not only for the master.
	out, err := os.OpenFile(s.output, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("dovecot exited at start (%v)", cmd.ProcessState)
		default:
		}
		if strings.Count(s.Log(), startingUp) > startsBefore && greeted(s.Addr) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("dovecot did not greet within 15 s")
}

const startingUp = ") starting up for "

func greeted(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "* OK")
}

// Stop stops Dovecot (all its processes; clients are disconnected). It is
// safe to call more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.exited
	}
	// Children still running after the master left (they should not be):
	// they are in our process group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	s.cmd = nil
}

// Restart stops Dovecot and starts it again on the same port with the same
// mail: connected clients are cut off, as in a server restart.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	var err error
	for i := 0; i < 50; i++ { // the port may linger briefly
		if err = s.start(); err == nil {
			return
		}
		s.Stop()
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("restarting dovecot: %v\n%s", err, s.Log())
}

// Log returns Dovecot's log and anything it printed.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logs)
	o, _ := os.ReadFile(s.output)
	return string(b) + string(o)
}

// Dial logs in as the user ("" = the first user) with a go-imap client.
func (s *Server) Dial(t testing.TB, username string) *imapclient.Client {
	t.Helper()
	return s.DialWith(t, username, nil)
}

// DialWith is Dial with a callback for EXISTS updates (run on the client's
// reader goroutine: only signal from it).
func (s *Server) DialWith(t testing.TB, username string, onExists func(n uint32)) *imapclient.Client {
	t.Helper()
	if username == "" {
		username = s.Username
	}
	opts := &imapclient.Options{}
	if onExists != nil {
		opts.UnilateralDataHandler = &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					onExists(*d.NumMessages)
				}
			},
		}
	}
	c, err := imapclient.DialInsecure(s.Addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(username, s.users[username]).Wait(); err != nil {
		c.Close()
		t.Fatalf("dovecot login as %s: %v", username, err)
	}
	return c
}

// Login tries a password login and reports the server's answer.
func (s *Server) Login(username, password string) error {
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Login(username, password).Wait()
}

// Append puts a mail in the user's folder by IMAP APPEND, as an MTA's
// delivery would, and returns its UID.
func (s *Server) Append(t testing.TB, username, folder string, raw []byte, flags ...imap.Flag) imap.UID {
	t.Helper()
	c := s.Dial(t, username)
	defer c.Close()
	cmd := c.Append(folder, int64(len(raw)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND to %s: %v", folder, err)
	}
	_ = c.Logout().Wait()
	return data.UID
}

// CreateFolder creates a mailbox for the user.
func (s *Server) CreateFolder(t testing.TB, username, folder string) {
	t.Helper()
	c := s.Dial(t, username)
	defer c.Close()
	if err := c.Create(folder, nil).Wait(); err != nil {
		t.Fatalf("CREATE %s: %v", folder, err)
	}
}

// Fetch returns UID and flags of every mail in the folder, read-only (as a
// human's mail program would look, without touching \Seen).
func (s *Server) Fetch(t testing.TB, username, folder string) []*imapclient.FetchMessageBuffer {
	t.Helper()
	c := s.Dial(t, username)
	defer c.Close()
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// UIDValidity returns the folder's UIDVALIDITY.
func (s *Server) UIDValidity(t testing.TB, username, folder string) uint32 {
	t.Helper()
	c := s.Dial(t, username)
	defer c.Close()
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return sel.UIDValidity
}

// Renumber empties the folder, gives it a new UIDVALIDITY and appends the
// mails in the order given: what a server does when it rebuilds a mailbox
// (the same mail under new UIDs).
func (s *Server) Renumber(t testing.TB, username, folder string, mails ...[]byte) {
	t.Helper()
	if username == "" {
		username = s.Username
	}
	c := s.Dial(t, username)
	sel, err := c.Select(folder, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages > 0 {
		all := imap.SeqSet{{Start: 1, Stop: 0}}
		if err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Expunge().Close(); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Logout().Wait()
	c.Close()
	s.SetUIDValidity(t, username, folder, sel.UIDValidity+1)
	for _, m := range mails {
		s.Append(t, username, folder, m)
	}
}

// SetUIDValidity changes the folder's UIDVALIDITY with doveadm, as a server
// rebuilding its indexes would.
func (s *Server) SetUIDValidity(t testing.TB, username, folder string, v uint32) {
	t.Helper()
	if username == "" {
		username = s.Username
	}
	out, err := s.Doveadm("mailbox", "update", "-u", username, "--uid-validity", strconv.FormatUint(uint64(v), 10), folder)
	if err != nil {
		t.Fatalf("doveadm mailbox update: %v\n%s", err, out)
	}
	if got := s.UIDValidity(t, username, folder); got != v {
		t.Fatalf("UIDVALIDITY of %s is %d after doveadm, want %d", folder, got, v)
	}
}

// Doveadm runs doveadm against this server's configuration.
func (s *Server) Doveadm(args ...string) ([]byte, error) {
	bin := "doveadm"
	if p, err := exec.LookPath("doveadm"); err == nil {
		bin = p
	} else if _, err := os.Stat("/usr/bin/doveadm"); err == nil {
		bin = "/usr/bin/doveadm"
	}
	cmd := exec.Command(bin, append([]string{"-c", s.conf}, args...)...)
	return cmd.CombinedOutput()
}
