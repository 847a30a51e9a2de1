package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/webhook"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(testredis.Main(m)) }

const secret = "s3cret-for-tests-0123456789"

type fixture struct {
	t    *testing.T
	rdb  redis.UniversalClient
	keys queue.Keys
	url  string
	h    *webhook.Handler
}

func newFixture(t *testing.T, secrets ...string) *fixture {
	t.Helper()
	rdb, keys := testredis.Client(t)
	h := webhook.New(webhook.Config{Queue: queue.NewStore(rdb, keys, 0), Secrets: secrets, MaxBytes: 1 << 20})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{t: t, rdb: rdb, keys: keys, url: srv.URL, h: h}
}

func (f *fixture) post(body []byte, signature string) (*http.Response, map[string]any) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set(webhook.SignatureHeader, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

// queued counts inbound entries: what must hold after a refusal is that it is 0.
func (f *fixture) queued() int64 {
	return f.rdb.XLen(context.Background(), f.keys.Inbound()).Val()
}

func fixtureBody(t *testing.T, name string) []byte {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignedMessageIsQueuedOnceAndDuplicatesAreRecognised(t *testing.T) {
	f := newFixture(t, secret)
	for _, name := range []string{"typeform_style.json", "review_site.json"} {
		body := fixtureBody(t, name)
		resp, out := f.post(body, webhook.Sign(body, time.Now(), secret))
		if resp.StatusCode != http.StatusAccepted || out["duplicate"] != false || !strings.HasPrefix(fmt.Sprint(out["message_id"]), "M-") {
			t.Fatalf("%s: status %d body %v, want 202 with a message id", name, resp.StatusCode, out)
		}
		id := out["message_id"]
		resp, out = f.post(body, webhook.Sign(body, time.Now(), secret))
		if resp.StatusCode != http.StatusOK || out["duplicate"] != true || out["message_id"] != id {
			t.Fatalf("%s resent: status %d body %v, want 200 duplicate of %v", name, resp.StatusCode, out, id)
		}
	}
	if n := f.queued(); n != 2 {
		t.Fatalf("%d entries queued, want 2 (no inbound message duplicated)", n)
	}
}

func TestRotatedSecrets(t *testing.T) {
	body := []byte(`{"source_id":"r1","body":"hello"}`)
	t.Run("sender signs with old and new secret", func(t *testing.T) {
		f := newFixture(t, "new-secret-0123456789abcdef")
		sig := webhook.Sign(body, time.Now(), "old-secret-0123456789abcdef", "new-secret-0123456789abcdef")
		if resp, _ := f.post(body, sig); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d, want 202", resp.StatusCode)
		}
	})
	t.Run("receiver accepts old and new secret", func(t *testing.T) {
		f := newFixture(t, "new-secret-0123456789abcdef", "old-secret-0123456789abcdef")
		if resp, _ := f.post(body, webhook.Sign(body, time.Now(), "old-secret-0123456789abcdef")); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d, want 202", resp.StatusCode)
		}
	})
}

func TestRefusedRequestsQueueNothing(t *testing.T) {
	valid := []byte(`{"source_id":"x1","customer":{"email":"a@example.com"},"body":"The lamp flickers."}`)
	now := time.Now()
	tests := []struct {
		name      string
		body      []byte
		signature string
		status    int
		field     string
		says      string
	}{
		{"missing signature", valid, "", 401, "", "missing"},
		{"forged signature", valid, webhook.Sign(valid, now, "not-the-secret-at-all-123"), 401, "", "does not match"},
		{"signature of another body", valid, webhook.Sign([]byte(`{"source_id":"x1","body":"other"}`), now, secret), 401, "", "does not match"},
		{"stale timestamp", valid, webhook.Sign(valid, now.Add(-6*time.Minute), secret), 401, "", "off"},
		{"future timestamp", valid, webhook.Sign(valid, now.Add(6*time.Minute), secret), 401, "", "off"},
		{"malformed header", valid, "v1=zz,t=now", 401, "", "malformed"},
		{"no v1", valid, fmt.Sprintf("t=%d", now.Unix()), 401, "", "no v1"},
		{"not JSON", []byte(`source_id=x`), "", 400, "", "invalid JSON"},
		{"truncated JSON", []byte(`{"source_id":"x",`), "", 400, "", "ends too early"},
		{"empty body", []byte(``), "", 400, "", "empty"},
		{"array", []byte(`[1,2]`), "", 400, "", "the body must be an object, not array"},
		{"missing source_id", []byte(`{"body":"hi"}`), "", 400, "source_id", "required"},
		{"blank body", []byte(`{"source_id":"x","body":"  \n"}`), "", 400, "body", "required"},
		// Found by the fault suite's fuzzing: json.Decoder.More reports no
		// more data before a stray closing brace, so this was accepted.
		{"stray closing brace after the object", []byte(`{"source_id":"x","body":"hi"}}`), "", 400, "", "after the JSON object"},
		{"second object after the first", []byte(`{"source_id":"x","body":"hi"} {}`), "", 400, "", "after the JSON object"},
		{"wrong type", []byte(`{"source_id":7,"body":"hi"}`), "", 400, "source_id", "must be a string"},
		{"unknown field", []byte(`{"source_id":"x","body":"hi","sourceId":"y"}`), "", 400, "sourceId", "unknown field"},
		{"bad email", []byte(`{"source_id":"x","body":"hi","customer":{"email":"not an address"}}`), "", 400, "customer.email", "not an e-mail"},
		{"bad complaint id", []byte(`{"source_id":"x","body":"hi","complaint_id":"1042"}`), "", 400, "complaint_id", "C-1042"},
		{"multi-line subject", []byte(`{"source_id":"x","body":"hi","subject":"a\nBcc: x"}`), "", 400, "subject", "one line"},
		{"trailing data", []byte(`{"source_id":"x","body":"hi"} {"source_id":"y","body":"hi"}`), "", 400, "", "after the JSON"},
		// Trust boundary: nothing from outside may pass for one of
		// forgetmenot's own facts, or smuggle control characters into ids.
		{"bounce report in metadata", []byte(`{"source_id":"x","body":"hi","metadata":{"delivery_report_for":"email:fmn.C-1001.v1.acknowledgement@shop.example"}}`), "", 400, "metadata.delivery_report_for", "reserved"},
		{"no-auto-reply in metadata", []byte(`{"source_id":"x","body":"hi","metadata":{"no_auto_reply":"yes"}}`), "", 400, "metadata.no_auto_reply", "reserved"},
		{"reserved namespace", []byte(`{"source_id":"x","body":"hi","metadata":{"FMN.staff":"anna"}}`), "", 400, "metadata.FMN.staff", "reserved"},
		{"address longer than SMTP allows", []byte(`{"source_id":"x","body":"hi","customer":{"email":"` + strings.Repeat("a", 900) + `@evil.example"}}`), "", 400, "customer.email", "not an e-mail"},
		{"NUL in the source id", []byte(`{"source_id":"x\u0000y","body":"hi"}`), "", 400, "source_id", "control"},
		{"bidi override in the customer id", []byte(`{"source_id":"x","body":"hi","customer":{"id":"88\u202e"}}`), "", 400, "customer.id", "control"},
		{"escape in the thread key", []byte(`{"source_id":"x","body":"hi","thread_key":"order\u001b[2J"}`), "", 400, "thread_key", "control"},
		{"too large", append(append([]byte(`{"source_id":"x","body":"`), bytes.Repeat([]byte("a"), 1<<20)...), []byte(`"}`)...), "", 413, "", "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, secret)
			sig := tc.signature
			if sig == "" && tc.status != 401 {
				sig = webhook.Sign(tc.body, time.Now(), secret)
			}
			resp, out := f.post(tc.body, sig)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%v), want %d", resp.StatusCode, out, tc.status)
			}
			if msg := fmt.Sprint(out["error"]); !strings.Contains(msg, tc.says) {
				t.Errorf("error %q does not say %q", msg, tc.says)
			}
			if tc.field != "" && out["field"] != tc.field {
				t.Errorf("field = %v, want %q", out["field"], tc.field)
			}
			if n := f.queued(); n != 0 {
				t.Fatalf("%d messages queued by a refused request; nothing may be", n)
			}
		})
	}
}

func TestChunkedOversizedBodyIsRefused(t *testing.T) {
	f := newFixture(t) // no secret: loopback
	big := append(append([]byte(`{"source_id":"x","body":"`), bytes.Repeat([]byte("a"), 2<<20)...), []byte(`"}`)...)
	req, _ := http.NewRequest("POST", f.url, struct{ *bytes.Reader }{bytes.NewReader(big)}) // unknown length: chunked
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || f.queued() != 0 {
		t.Fatalf("status %d, queued %d; want 413 and nothing queued", resp.StatusCode, f.queued())
	}
}

func TestWithoutSecretOnlyLoopbackIsAccepted(t *testing.T) {
	f := newFixture(t)
	body := []byte(`{"source_id":"l1","body":"hello"}`)
	if resp, _ := f.post(body, ""); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("loopback without secret: %d, want 202", resp.StatusCode)
	}
	req := httptest.NewRequest("POST", "/v1/messages", bytes.NewReader([]byte(`{"source_id":"l2","body":"hi"}`)))
	req.RemoteAddr = "203.0.113.7:40000"
	req.Header.Set("X-Forwarded-For", "127.0.0.1") // proves nothing
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "WEBHOOK_SECRET") {
		t.Fatalf("remote without secret: %d %s, want 403 naming the variable", rec.Code, rec.Body)
	}
	if f.queued() != 1 {
		t.Fatalf("queued %d, want only the loopback message", f.queued())
	}
}

func TestRedisDownAnswers503NeverSuccess(t *testing.T) {
	rdb, _ := queue.Connect("redis://127.0.0.1:1/0")
	keys, _ := queue.NewKeys("down")
	srv := httptest.NewServer(webhook.New(webhook.Config{Queue: queue.NewStore(rdb, keys, 0)}))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"source_id":"d1","body":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, want 503 with Retry-After so the sender retries", resp.StatusCode)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d, want 405", resp.StatusCode)
	}
}

// What must hold: a source_id is an idempotency key. A retry of the same
// message (even re-encoded, its JSON keys in another order) is answered as a
// duplicate; a different message under a source_id already used is refused
// with 409 naming the field, so the sender learns it, instead of being told
// "duplicate" while its complaint is silently dropped. Nothing of it is queued.
func TestReusedSourceIDWithOtherContentIsRefusedNotDropped(t *testing.T) {
	f := newFixture(t, secret)
	body := fixtureBody(t, "typeform_style.json")
	resp, out := f.post(body, webhook.Sign(body, time.Now(), secret))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first: %d %v", resp.StatusCode, out)
	}
	first := out["message_id"]

	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatal(err)
	}
	reencoded, _ := json.Marshal(fields) // keys sorted, whitespace gone: the same message
	resp, out = f.post(reencoded, webhook.Sign(reencoded, time.Now(), secret))
	if resp.StatusCode != http.StatusOK || out["duplicate"] != true || out["message_id"] != first {
		t.Fatalf("re-encoded retry: %d %v, want 200 duplicate of %v", resp.StatusCode, out, first)
	}

	fields["body"] = "Een tweede klacht: ook de deksel ontbreekt."
	other, _ := json.Marshal(fields)
	resp, out = f.post(other, webhook.Sign(other, time.Now(), secret))
	if resp.StatusCode != http.StatusConflict || out["field"] != "source_id" || !strings.Contains(fmt.Sprint(out["error"]), fmt.Sprint(first)) {
		t.Fatalf("other content under the same source_id: %d %v, want 409 on source_id naming %v", resp.StatusCode, out, first)
	}
	if n := f.queued(); n != 1 {
		t.Fatalf("%d entries queued, want 1 (no inbound message lost or duplicated)", n)
	}
}

// A form that passes on what the customer typed sends the complaint id as
// written: c-1042 is C-1042, as everywhere else; anything else that is not
// an id is still refused.
func TestComplaintIDIsReadAsWritten(t *testing.T) {
	f := newFixture(t, secret)
	for i, id := range []string{"c-1042", " C-1042 ", "C-1042"} {
		body := []byte(fmt.Sprintf(`{"source_id":"cid-%d","body":"Still broken.","complaint_id":%q}`, i, id))
		resp, out := f.post(body, webhook.Sign(body, time.Now(), secret))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("complaint_id %q: %d %v, want 202", id, resp.StatusCode, out)
		}
	}
	entries := f.rdb.XRange(context.Background(), f.keys.Inbound(), "-", "+").Val()
	for i, e := range entries {
		m, err := queue.DecodeMessage([]byte(e.Values["data"].(string)))
		if err != nil || m.ComplaintID != "C-1042" {
			t.Errorf("message %d queued with complaint id %q (%v), want C-1042", i, m.ComplaintID, err)
		}
	}
	if len(entries) != 3 {
		t.Errorf("%d messages queued, want 3", len(entries))
	}
	body := []byte(`{"source_id":"cid-x","body":"hi","complaint_id":"c-10a"}`)
	if resp, _ := f.post(body, webhook.Sign(body, time.Now(), secret)); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("complaint_id c-10a: %d, want 400", resp.StatusCode)
	}
}

// What must hold: a language code is read in any case ("NL" is nl), and
// still refused when it is no code.
func TestLanguageIsReadInAnyCase(t *testing.T) {
	f := newFixture(t, secret)
	body := []byte(`{"source_id":"lang-1","body":"Kapot.","language":" NL "}`)
	if resp, out := f.post(body, webhook.Sign(body, time.Now(), secret)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("language NL: %d %v, want 202", resp.StatusCode, out)
	}
	entries := f.rdb.XRange(context.Background(), f.keys.Inbound(), "-", "+").Val()
	if len(entries) != 1 {
		t.Fatalf("%d messages queued, want 1", len(entries))
	}
	if m, err := queue.DecodeMessage([]byte(entries[0].Values["data"].(string))); err != nil || m.Language != "nl" {
		t.Errorf("queued with language %q (%v), want nl", m.Language, err)
	}
	body = []byte(`{"source_id":"lang-2","body":"Kapot.","language":"NLD"}`)
	if resp, _ := f.post(body, webhook.Sign(body, time.Now(), secret)); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("language NLD: %d, want 400", resp.StatusCode)
	}
}
