package privacy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/router"
)

// The real binary, killed with SIGKILL half-way through an erasure, finishes
// it after a restart by itself, with the same result as one that never
// stopped: nothing of the customer left, the other customer untouched, one
// audit record, one "erased" event per complaint.
func TestEraseKilledHalfWayIsFinishedByTheRestartedDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	e := newEnv(t)
	ctx := context.Background()
	const n = 60
	var jan []string
	for i := range n {
		id := e.complaintOf(e.enqueue(router.Message{Channel: router.ChannelWebhook, SourceID: fmt.Sprintf("jan-src-%d", i),
			Customer: router.Customer{Name: "Jan Jansen", Email: "jan@voorbeeld.nl"}, Body: fmt.Sprintf("Bestelling %d kwam beschadigd aan.", i),
			ThreadKeys: []string{fmt.Sprintf("webhook:order-jan-%d", i)}})).ID
		c, err := e.store.Complaint(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.router.CloseWith(ctx, id, c.Owner, router.Closing{Resolution: "vervangen", Category: "delivery"}); err != nil {
			t.Fatal(err)
		}
		jan = append(jan, id)
	}
	piet := e.complaintOf(e.enqueue(router.Message{Channel: router.ChannelWebhook, SourceID: "piet-1",
		Customer: router.Customer{Name: "Piet Pietersen", Email: "piet@anders.example"}, Body: "Factuur klopt niet."})).ID
	e.settle()
	pietBefore := jsonOf(e.snapshotOf(piet))

	bin := filepath.Join(t.TempDir(), "forgetmenot")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/forgetmenot/forgetmenot/cmd/forgetmenot").CombinedOutput(); err != nil {
		t.Fatalf("building forgetmenot: %v\n%s", err, out)
	}
	ns := strings.TrimSuffix(strings.TrimPrefix(e.keys.Pattern(), "{"), "}:*")
	root, _ := filepath.Abs("../..")
	start := func(name string) (*exec.Cmd, string, *testkit.LockedBuffer) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		cmd := exec.Command(bin, "serve")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "FORGETMENOT_REDIS_URL="+testredis.URL(t), "FORGETMENOT_NAMESPACE="+ns,
			"FORGETMENOT_HTTP_ADDR="+addr, "FORGETMENOT_CONSUMER_NAME="+name, "FORGETMENOT_RECLAIM_IDLE=2s",
			"FORGETMENOT_LOG_LEVEL=info")
		logs := &testkit.LockedBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		testkit.WaitFor(t, "the daemon to listen", func() bool {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil && resp.StatusCode == 200
		})
		return cmd, "http://" + addr, logs
	}

	first, base, _ := start("kill-1")
	go func() {
		req, _ := http.NewRequest("POST", base+"/v1/customers/jan@voorbeeld.nl/erase", strings.NewReader(`{"reason":"verzoek","actor":"anna"}`))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	// Kill it once some, but not all, complaints are erased.
	var done int
	deadline := time.Now().Add(20 * time.Second)
	for {
		all, err := e.store.Erasures(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range all {
			var j job
			_ = json.Unmarshal([]byte(raw), &j)
			done = len(j.Done)
		}
		if done > 0 && done < n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never caught the erasure half-way (done %d of %d)", done, n)
		}
		time.Sleep(time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	all, _ := e.store.Erasures(ctx)
	if len(all) != 1 {
		t.Fatalf("after kill -9 the erasure in progress is not recorded: %v", all)
	}
	t.Logf("killed after %d of %d complaints", done, n)

	_, _, logs := start("kill-2")
	testkit.WaitFor(t, "the restarted daemon to finish the erasure", func() bool {
		all, err := e.store.Erasures(ctx)
		return err == nil && len(all) == 0
	})
	e.settle()
	if got := traces(e.dump(), []string{"Jan Jansen", "jan@voorbeeld.nl", "kwam beschadigd", "order-jan-", "jan-src-"}); len(got) > 0 {
		t.Errorf("after the resumed erasure Jan is still in:\n%s\nlog:\n%s", strings.Join(got, "\n"), logs)
	}
	if got := jsonOf(e.snapshotOf(piet)); got != pietBefore {
		t.Errorf("Piet's complaint changed:\n%s\n%s", pietBefore, got)
	}
	log, _ := e.store.PrivacyLog(ctx, 10)
	if len(log) != 1 || log[0]["complaints"] != fmt.Sprint(n) {
		t.Errorf("privacy log %v", log)
	}
	for _, id := range jan {
		tl, _ := e.store.Timeline(ctx, id)
		k := 0
		for _, en := range tl {
			if en.Event != nil && en.Event.Type == EventErased {
				k++
			}
		}
		if k != 1 {
			t.Errorf("%s has %d erased events, want 1", id, k)
		}
	}
	e.checkInvariants()
}

func (e *env) snapshotOf(id string) []any {
	c, _ := e.store.Complaint(context.Background(), id)
	tl, _ := e.store.Timeline(context.Background(), id)
	return []any{c, tl}
}
