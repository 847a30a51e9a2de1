// Package testredis gives tests a real redis-server: the one named by
// FORGETMENOT_TEST_REDIS_URL (scripts/test starts it), or else one it starts
// itself from redis-server on PATH. Every test gets its own key namespace, so
// tests share a server without seeing each other's data.
package testredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/redis/go-redis/v9"
)

// EnvURL names the variable pointing tests at a running Redis.
const EnvURL = "FORGETMENOT_TEST_REDIS_URL"

var (
	mu       sync.Mutex
	url      string
	started  *Server
	startErr error
)

// Main runs the package's tests and stops the Redis it started, if any. Use it
// from TestMain: os.Exit(testredis.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if started != nil {
		started.Cleanup()
	}
	return code
}

// URL returns the test Redis, starting one if needed. Without Redis the test
// is skipped, except under CI (CI set), where it fails: CI must run everything.
func URL(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if url != "" {
		return url
	}
	if u := os.Getenv(EnvURL); u != "" {
		url = u
		return url
	}
	if startErr == nil && started == nil {
		started, startErr = StartServer(os.TempDir())
		if startErr == nil {
			url = started.URL()
			return url
		}
	}
	msg := fmt.Sprintf("no Redis for this test: set %s or install redis-server (%v)", EnvURL, startErr)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Client returns a client on the test Redis and a fresh namespace; the
// namespace's keys are deleted when the test ends.
func Client(t testing.TB) (redis.UniversalClient, queue.Keys) {
	t.Helper()
	return clientOn(t, URL(t))
}

// clientOn connects to the Redis at url (a cluster's too) with a fresh
// namespace, whose keys it deletes when the test ends.
func clientOn(t testing.TB, url string) (redis.UniversalClient, queue.Keys) {
	t.Helper()
	rdb, err := queue.Connect(url)
	if err != nil {
		t.Fatalf("connecting to test redis: %v", err)
	}
	ns := Namespace()
	keys, err := queue.NewKeys(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// On a cluster the namespace is on one master, which a plain SCAN
		// through the cluster client may miss.
		found, _ := ScanKeys(ctx, rdb, keys.Pattern())
		for _, k := range found {
			rdb.Del(ctx, k)
		}
		_ = rdb.Close()
	})
	return rdb, keys
}

// Namespace returns a unique key namespace.
func Namespace() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// Server is a redis-server process started for tests.
type Server struct {
	Port int
	Dir  string
	args []string
	cmd  *exec.Cmd
}

// StartServer starts redis-server on a free loopback port, without
// persistence, its files under a new directory in dir.
func StartServer(dir string, extraArgs ...string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	d, err := os.MkdirTemp(dir, "forgetmenot-redis-")
	if err != nil {
		return nil, err
	}
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", d}, extraArgs...)
	s := &Server{Port: port, Dir: d, args: append([]string{bin}, args...)}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Start (re)starts the server process on its port and waits until it answers.
func (s *Server) Start() error {
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if rdb.Ping(context.Background()).Err() == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("redis-server on port %d did not answer within 10s", s.Port)
}

// Stop kills the server process.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_, _ = s.cmd.Process.Wait()
		s.cmd = nil
	}
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Cleanup removes the server's directory.
func (s *Server) Cleanup() { s.Stop(); _ = os.RemoveAll(filepath.Clean(s.Dir)) }

// FreePort asks the kernel for an unused loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
