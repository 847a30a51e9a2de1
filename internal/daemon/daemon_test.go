package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/webhook"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/daemon"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/router"
)

func TestMain(m *testing.M) { os.Exit(testredis.Main(m)) }

// recorder is a Notifier that remembers what it was told.
type recorder struct {
	mu    sync.Mutex
	notes []router.Notification
}

func (r *recorder) Notify(ctx context.Context, n router.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, n)
	return nil
}

func (r *recorder) count(kind router.NotificationKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.notes {
		if x.Kind == kind {
			n++
		}
	}
	return n
}

type running struct {
	t     testing.TB
	base  string
	cfg   configs.Config
	notes *recorder
	log   *testkit.LockedBuffer
	stop  func() error
	// daemon is the running daemon, for what only its Go API offers.
	daemon *daemon.Daemon
}

// componentNotifier, as an option of start, keeps the notifier a component
// (Slack) supplied instead of the recording one.
type componentNotifier struct{}

// start runs a daemon with the shipped example configuration on a free port.
// Options adjust the configuration (func(*configs.Config)) or replace the
// recording notifier (daemon.Notifier).
// testConfig is what start runs a daemon with, on a namespace of its own.
func testConfig(redisURL string) configs.Config {
	return configs.Config{
		RedisURL: redisURL, Namespace: testredis.Namespace(), HTTPAddr: "127.0.0.1:0",
		OwnersFile: "../../configs/owners.yaml", RoutingFile: "../../configs/routing.yaml",
		ReopenWindow: configs.Duration(14 * 24 * time.Hour), MaxMessageBytes: 1 << 20,
		RouterWorkers: 2, DeliveryWorkers: 1, MaxAttempts: 3, ReclaimIdle: configs.Duration(5 * time.Second),
		ShutdownTimeout: configs.Duration(5 * time.Second), LogLevel: "info", LogFormat: "text",
	}
}

func start(t testing.TB, redisURL string, options ...any) *running {
	t.Helper()
	cfg := testConfig(redisURL)
	var notifier daemon.Notifier
	keep := false
	for _, o := range options {
		switch o := o.(type) {
		case func(*configs.Config):
			o(&cfg)
		case daemon.Notifier:
			notifier = o
		case componentNotifier:
			keep = true
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logBuf := &testkit.LockedBuffer{}
	log := slog.New(slog.NewTextHandler(logBuf, nil))
	d, err := daemon.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	notes := &recorder{}
	if notifier == nil {
		notifier = notes
	}
	if !keep {
		d.SetNotifier(notifier)
	}
	for _, o := range options {
		if o, ok := o.(withSender); ok {
			d.AddSender(o.channel, o.sender)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return &running{t: t, base: "http://" + d.Addr(), cfg: cfg, notes: notes, log: logBuf, stop: stop, daemon: d}
}

func (r *running) call(method, path string, body any, token string) (int, map[string]any) {
	r.t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return r.do(method, path, raw, h)
}

// post sends a webhook message, signed when secret is given.
func (r *running) post(body string, secret string) (int, map[string]any) {
	r.t.Helper()
	h := http.Header{}
	if secret != "" {
		h.Set(webhook.SignatureHeader, webhook.Sign([]byte(body), time.Now(), secret))
	}
	return r.do("POST", "/v1/messages", []byte(body), h)
}

func (r *running) do(method, path string, body []byte, h http.Header) (int, map[string]any) {
	r.t.Helper()
	req, _ := http.NewRequest(method, r.base+path, bytes.NewReader(body))
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// routed waits until the message is on a complaint and returns its status.
func (r *running) routed(messageID, token string) map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, out := r.call("GET", "/v1/messages/"+messageID, nil, token)
		if code == 200 {
			return out
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("message %s never routed (last: %d %v)\nlog:\n%s", messageID, code, out, r.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEmbeddedModeRunsWithNothingConfigured(t *testing.T) {
	r := start(t, "") // no Redis URL: embedded in-memory Redis
	if !strings.Contains(r.log.String(), "IN-MEMORY MODE") {
		t.Errorf("embedded mode must warn loudly that data is in memory only; log:\n%s", r.log)
	}
	code, out := r.post(`{"source_id":"form-1","customer":{"name":"Jan de Boer","email":"jan@voorbeeld.nl"},"subject":"Pakket niet ontvangen","body":"Mijn bestelling is al twee weken onderweg en ik heb nog niets ontvangen."}`, "")
	if code != http.StatusAccepted {
		t.Fatalf("ingest: %d %v", code, out)
	}
	st := r.routed(out["message_id"].(string), "")
	if st["owner"] == "" || st["complaint_id"] != "C-1001" {
		t.Fatalf("routing status = %v", st)
	}
	code, detail := r.call("GET", "/v1/complaints/C-1001", nil, "")
	if code != 200 {
		t.Fatalf("show: %d %v", code, detail)
	}
	c := detail["complaint"].(map[string]any)
	if c["team"] != "support-nl" || c["language"] != "nl" {
		t.Errorf("a Dutch complaint should go to the Dutch team: %v", c)
	}
	if len(detail["timeline"].([]any)) != 3 {
		t.Errorf("timeline = %v, want message, opened, assigned", detail["timeline"])
	}
	if code, _ := r.call("GET", "/readyz", nil, ""); code != 200 {
		t.Errorf("readyz = %d", code)
	}
}

func TestEndToEndOnRealRedis(t *testing.T) {
	const secret, token = "webhook-secret-0123456789", "api-token-for-tests"
	r := start(t, testredis.URL(t), func(c *configs.Config) {
		c.WebhookSecret = configs.Secrets{secret}
		c.APIToken = token
	})
	body := `{"source_id":"shop-991","customer":{"name":"Tom","email":"tom@example.co.uk"},"subject":"Charged twice","body":"I was charged twice for order 55-9120, please refund the duplicate payment.","thread_key":"order-55-9120"}`
	if code, _ := r.post(body, ""); code != http.StatusUnauthorized {
		t.Fatalf("unsigned ingest with a secret configured: %d, want 401", code)
	}
	code, out := r.post(body, secret)
	if code != http.StatusAccepted {
		t.Fatalf("signed ingest: %d %v", code, out)
	}
	st := r.routed(out["message_id"].(string), token)
	id := st["complaint_id"].(string)
	if st["owner"] != "joost" && st["owner"] != "fatima" {
		t.Fatalf("a refund complaint must go to billing (joost or fatima), got %v", st)
	}
	// The customer writes again in the same thread: same complaint, same owner.
	code, out = r.post(`{"source_id":"shop-992","customer":{"email":"tom@example.co.uk"},"body":"Any news?","thread_key":"order-55-9120"}`, secret)
	if code != http.StatusAccepted {
		t.Fatal(code, out)
	}
	again := r.routed(out["message_id"].(string), token)
	if again["complaint_id"] != id || again["owner"] != st["owner"] {
		t.Fatalf("follow-up went to %v, want %s/%s", again, id, st["owner"])
	}

	if code, _ := r.call("GET", "/v1/complaints", nil, ""); code != http.StatusUnauthorized {
		t.Fatalf("API without token: %d, want 401", code)
	}
	code, list := r.call("GET", "/v1/complaints?status=open&owner="+st["owner"].(string), nil, token)
	if code != 200 || list["count"].(float64) != 1 {
		t.Fatalf("list: %d %v", code, list)
	}
	if code, out := r.call("POST", "/v1/complaints/"+id+"/reassign", map[string]string{"owner": "anna"}, token); code != 400 || out["field"] != "reason" {
		t.Fatalf("reassign without reason: %d %v, want 400 naming reason", code, out)
	}
	if code, out := r.call("POST", "/v1/complaints/"+id+"/reassign", map[string]string{"owner": "nobody", "reason": "x"}, token); code != 400 || out["field"] != "owner" {
		t.Fatalf("reassign to unknown owner: %d %v, want 400 naming owner", code, out)
	}
	if code, out := r.call("POST", "/v1/complaints/"+id+"/reassign", map[string]string{"owner": "anna", "reason": "Anna handled the earlier refund", "actor": "sanne"}, token); code != 200 || out["owner"] != "anna" {
		t.Fatalf("reassign: %d %v", code, out)
	}
	if code, out := r.call("POST", "/v1/complaints/"+id+"/close", map[string]string{"resolution": "Refunded the duplicate charge", "category": "payment-processing"}, token); code != 200 || out["status"] != "closed" {
		t.Fatalf("close: %d %v", code, out)
	}
	if code, _ := r.call("POST", "/v1/complaints/"+id+"/close", map[string]string{"resolution": "again"}, token); code != http.StatusConflict {
		t.Fatalf("second close: %d, want 409", code)
	}
	if code, _ := r.call("GET", "/v1/complaints/C-99999", nil, token); code != http.StatusNotFound {
		t.Fatalf("unknown complaint: %d, want 404", code)
	}
	code, owners := r.call("GET", "/v1/owners", nil, token)
	if code != 200 || len(owners["owners"].([]any)) != 7 {
		t.Fatalf("owners: %d %v", code, owners)
	}
	if code, dl := r.call("GET", "/v1/deadletters", nil, token); code != 200 || len(dl["dead_letters"].([]any)) != 0 {
		t.Fatalf("deadletters: %d %v", code, dl)
	}

	// Notifications: exactly one assignment, one follow-up message, the
	// reassignment to both owners, the close.
	testkit.WaitFor(t, "notifications delivered", func() bool { return r.notes.count(router.NotifyClosed) == 1 })
	for kind, want := range map[router.NotificationKind]int{router.NotifyAssigned: 1, router.NotifyMessage: 1, router.NotifyReassigned: 2, router.NotifyClosed: 1} {
		if got := r.notes.count(kind); got != want {
			t.Errorf("%s notifications: %d, want %d", kind, got, want)
		}
	}

	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`forgetmenot_messages_ingested_total{channel="webhook"} 2`,
		`forgetmenot_complaints_opened_total 1`,
		`forgetmenot_complaints_closed_total 1`,
		`forgetmenot_complaints_reassigned_total 1`,
		`forgetmenot_routing_latency_seconds_count 2`,
		`forgetmenot_queue_lag_messages{stream="inbound"} 0`,
		`forgetmenot_dead_letters 0`,
		`forgetmenot_redis_up 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if err := r.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if !strings.Contains(r.log.String(), "shutdown complete") {
		t.Errorf("log lacks a clean shutdown:\n%s", r.log)
	}
}

func TestRedisOutageAnswers503AndRecovers(t *testing.T) {
	srv, err := testredis.StartServer(t.TempDir())
	if err != nil {
		t.Skip("needs redis-server on PATH to stop and restart it:", err)
	}
	t.Cleanup(srv.Cleanup)
	r := start(t, srv.URL())
	code, out := r.post(`{"source_id":"before","body":"first"}`, "")
	if code != http.StatusAccepted {
		t.Fatal(code, out)
	}
	r.routed(out["message_id"].(string), "")

	srv.Stop()
	if code, out := r.post(`{"source_id":"during","body":"while redis is down"}`, ""); code != http.StatusServiceUnavailable {
		t.Fatalf("ingest during the outage: %d %v, want 503 (never a 2xx)", code, out)
	}
	if code, _ := r.call("GET", "/readyz", nil, ""); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz during the outage: %d, want 503", code)
	}
	if code, _ := r.call("GET", "/healthz", nil, ""); code != 200 {
		t.Fatalf("healthz during the outage: %d, want 200 (the process is alive)", code)
	}

	if err := srv.Start(); err != nil { // same port, empty data (no persistence)
		t.Fatal(err)
	}
	var id string
	testkit.WaitFor(t, "ingest accepted again", func() bool {
		code, out := r.post(`{"source_id":"after","body":"after the outage"}`, "")
		if code == http.StatusAccepted {
			id = out["message_id"].(string)
		}
		return code == http.StatusAccepted
	})
	r.routed(id, "") // the consumers recreated their group and route again
}

// failingNotifier refuses every notification for good.
type failingNotifier struct{}

func (failingNotifier) Notify(context.Context, router.Notification) error {
	return router.Permanent(errors.New("slack says: user_not_found"))
}

func TestFailedNotificationIsKeptAndShownOnTheComplaint(t *testing.T) {
	r := start(t, testredis.URL(t), daemon.Notifier(failingNotifier{}))
	code, out := r.post(`{"source_id":"n1","body":"My order is late, please help"}`, "")
	if code != http.StatusAccepted {
		t.Fatal(code, out)
	}
	id := r.routed(out["message_id"].(string), "")["complaint_id"].(string)
	var timeline []any
	testkit.WaitFor(t, "the failure on the timeline", func() bool {
		_, detail := r.call("GET", "/v1/complaints/"+id, nil, "")
		timeline = detail["timeline"].([]any)
		return len(timeline) == 4
	})
	ev := timeline[3].(map[string]any)["event"].(map[string]any)
	if ev["type"] != "notification_failed" || !strings.Contains(ev["reason"].(string), "user_not_found") {
		t.Fatalf("last timeline entry = %v, want the failed notification with its cause", ev)
	}
	// What must hold: the notification is not lost, it waits in the dead letters.
	_, dl := r.call("GET", "/v1/deadletters", nil, "")
	if letters := dl["dead_letters"].([]any); len(letters) != 1 || !strings.Contains(fmt.Sprint(letters[0]), id) {
		t.Fatalf("dead letters = %v, want the notification for %s", dl, id)
	}
}

// What must hold: an alert about no one complaint (the complaint rate) that
// cannot be delivered waits in the dead letters, and the daemon does not try
// to record the failure on a complaint that does not exist.
func TestFailedComplaintRateAlertIsKept(t *testing.T) {
	r := start(t, testredis.URL(t), daemon.Notifier(failingNotifier{}), func(c *configs.Config) {
		c.TargetsFile = "../../configs/targets.yaml"
	})
	_, out := r.post(`{"source_id":"rate-1","body":"My parcel arrived damaged."}`, "")
	r.routed(out["message_id"].(string), "")
	// 1 complaint on 50 orders is 2 %, over the shipped 1 % threshold.
	if code, out := r.call("POST", "/v1/volume", map[string]any{"period": router.ISOWeek(time.Now()), "count": 50}, ""); code != 200 {
		t.Fatalf("volume: %d %v", code, out)
	}
	testkit.WaitFor(t, "the alert in the dead letters", func() bool {
		return strings.Contains(r.log.String(), "alert moved to the dead letters")
	})
	if strings.Contains(r.log.String(), "could not record the failed notification") {
		t.Errorf("the daemon tried to record the alert's failure on a complaint:\n%s", r.log)
	}
	_, dl := r.call("GET", "/v1/deadletters", nil, "")
	if !strings.Contains(fmt.Sprint(dl["dead_letters"]), "complaint-rate:") {
		t.Errorf("dead letters = %v, want the complaint-rate alert kept", dl)
	}
}
