package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/webhook"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/redis/go-redis/v9"
)

// Scenario 5: a poison message (it fails every time it is routed: here the
// complaint it refers to is stored corrupt) goes to the dead letters after
// MAX_ATTEMPTS while other traffic flows, and an undecodable entry goes there
// at once. Once the cause is fixed, a retry routes it; nothing is lost.
func TestPoisonMessageIsDeadLetteredWhileTrafficFlows(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	keys := h.store.Keys()
	s := h.newSender("poison")
	s.start(loadRate)

	if err := h.rdb.Set(ctx, keys.Complaint("C-999999"), "corrupt: not a complaint", 0).Err(); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"source_id":"poison-by-hand","customer":{"email":"poison@example.com"},"body":"About my earlier complaint.","complaint_id":"C-999999"}`)
	status, poisonID := s.post(h.replicas[0].base(), body, time.Now())
	if status != http.StatusAccepted {
		t.Fatalf("poison message: %d", status)
	}
	garbage, err := h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Inbound(), Values: []string{"data", "{not json", "attempt", "0"}}).Result()
	if err != nil {
		t.Fatal(err)
	}

	var poison, junk queue.DeadLetter
	waitFor(t, 60*time.Second, "both entries in the dead letters", func() bool {
		dls, err := h.store.DeadLetters(ctx, 100)
		if err != nil {
			return false
		}
		for _, d := range dls {
			switch {
			case d.Entry == garbage:
				junk = d
			case strings.Contains(d.Data, poisonID):
				poison = d
			}
		}
		return junk.ID != "" && poison.ID != ""
	})
	if poison.Attempts != maxAttempts || !strings.Contains(poison.Error, "C-999999: decoding stored complaint") {
		t.Errorf("poison dead letter: %d attempts, error %q; want %d attempts and why C-999999 could not be read", poison.Attempts, poison.Error, maxAttempts)
	}
	if junk.Attempts != 1 {
		t.Errorf("an undecodable entry is dead-lettered at once, not after %d attempts", junk.Attempts)
	}
	var listed struct {
		DeadLetters []queue.DeadLetter `json:"dead_letters"`
	}
	if code, err := h.apiGet("/v1/deadletters", &listed); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/deadletters: %d %v", code, err)
	}

	// The operator fixes the cause and retries: the message routes.
	if err := h.rdb.Del(ctx, keys.Complaint("C-999999")).Err(); err != nil {
		t.Fatal(err)
	}
	if code, err := h.apiPost("/v1/deadletters/"+poison.ID+"/retry", nil); err != nil || code/100 != 2 {
		t.Fatalf("retrying the dead letter: %d %v", code, err)
	}
	time.Sleep(time.Second)
	s.stop()
	t.Log(s.summary())
	acked := s.acknowledged()
	acked["poison-by-hand"] = poisonID
	t.Log(h.checkInvariants(acked, expectations{}))
}

// Scenario 7: bad input. Forged, stale and malformed signatures, oversized
// and malformed bodies are refused with a clear status and store nothing (the
// same source id is accepted as new afterwards); a replayed request is a
// duplicate, whichever replica gets it; fuzzed bodies never crash a replica or
// get a 5xx. Good traffic flows throughout.
func TestBadInputIsRefusedAndStoresNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	s := h.newSender("good")
	s.start(loadRate)
	a, b := h.replicas[0].base(), h.replicas[1].base()
	now := time.Now()
	msg := func(source string) []byte {
		return []byte(fmt.Sprintf(`{"source_id":%q,"customer":{"email":"bad@example.com"},"body":"The blender arrived broken."}`, source))
	}
	sign := func(body []byte, at time.Time, secret string) string { return webhook.Sign(body, at, secret) }
	huge := msg("bad-huge")
	huge = append(huge[:len(huge)-1], []byte(`,"metadata":{"pad":"`+strings.Repeat("x", maxMessageBytes)+`"}}`)...)

	cases := []struct {
		name   string
		source string // must still be free afterwards
		body   []byte
		sig    string
		want   int
	}{
		{"no signature", "bad-nosig", msg("bad-nosig"), "", http.StatusUnauthorized},
		{"signed with another secret", "bad-forged", msg("bad-forged"), sign(msg("bad-forged"), now, "another-secret-0123456789"), http.StatusUnauthorized},
		{"body changed after signing", "bad-tampered", msg("bad-tampered"), sign(msg("bad-other"), now, testSecret), http.StatusUnauthorized},
		{"stale: signed 6 minutes ago", "bad-stale", msg("bad-stale"), sign(msg("bad-stale"), now.Add(-6*time.Minute), testSecret), http.StatusUnauthorized},
		{"signed 6 minutes in the future", "bad-future", msg("bad-future"), sign(msg("bad-future"), now.Add(6*time.Minute), testSecret), http.StatusUnauthorized},
		{"malformed signature header", "bad-header", msg("bad-header"), "t=yesterday,v1=zz", http.StatusUnauthorized},
		{"oversized body", "bad-huge", huge, sign(huge, now, testSecret), http.StatusRequestEntityTooLarge},
		{"truncated JSON", "bad-json", []byte(`{"source_id":"bad-json","body":"broken`), sign([]byte(`{"source_id":"bad-json","body":"broken`), now, testSecret), http.StatusBadRequest},
		{"unknown field", "bad-field", []byte(`{"source_id":"bad-field","body":"x","priority":"urgent"}`), sign([]byte(`{"source_id":"bad-field","body":"x","priority":"urgent"}`), now, testSecret), http.StatusBadRequest},
		{"wrong type", "bad-type", []byte(`{"source_id":"bad-type","body":42}`), sign([]byte(`{"source_id":"bad-type","body":42}`), now, testSecret), http.StatusBadRequest},
		{"no body text", "bad-empty", []byte(`{"source_id":"bad-empty","body":"  "}`), sign([]byte(`{"source_id":"bad-empty","body":"  "}`), now, testSecret), http.StatusBadRequest},
	}
	for _, c := range cases {
		if got, _ := rawPost(t, a, c.body, c.sig, false); got != c.want {
			t.Errorf("%s: answered %d, want %d", c.name, got, c.want)
		}
	}
	// Oversized without a Content-Length (chunked): refused while reading.
	if got, _ := rawPost(t, b, huge, sign(huge, now, testSecret), true); got != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized chunked body: answered %d, want 413", got)
	}
	acked := s.acknowledged()
	// Nothing of the refused requests was stored: each source id is new.
	for _, c := range cases {
		body := msg(c.source)
		code, resp := rawPost(t, b, body, sign(body, time.Now(), testSecret), false)
		if code != http.StatusAccepted || resp.Duplicate {
			t.Errorf("%s: source %s afterwards answered %d %+v; the refused request must not have been stored", c.name, c.source, code, resp)
		}
		acked[c.source] = resp.MessageID
	}

	// Replay of a captured, validly signed request within the 5 minutes: a
	// duplicate of the first, on either replica; never a second message.
	body := msg("bad-replayed")
	sig := sign(body, time.Now(), testSecret)
	code, first := rawPost(t, a, body, sig, false)
	if code != http.StatusAccepted {
		t.Fatalf("original request: %d", code)
	}
	for _, base := range []string{a, b, a} {
		code, again := rawPost(t, base, body, sig, false)
		if code != http.StatusOK || !again.Duplicate || again.MessageID != first.MessageID {
			t.Errorf("replay to %s: %d %+v; want 200 duplicate of %s", base, code, again, first.MessageID)
		}
	}
	acked["bad-replayed"] = first.MessageID

	// Fuzzed bodies, correctly signed: 2xx only for a valid message, 400 or
	// 413 otherwise, never a 5xx or a crash.
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("FORGETMENOT_FUZZ_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("FORGETMENOT_FUZZ_SEED: %v", err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fuzz seed %d (replay with FORGETMENOT_FUZZ_SEED=%d)", seed, seed)
		}
	})
	rng := rand.New(rand.NewPCG(7, seed))
	for i := range 300 {
		body := mutate(rng, msg(fmt.Sprintf("fuzz-%d", i)))
		code, resp := rawPost(t, []string{a, b}[i%2], body, sign(body, time.Now(), testSecret), false)
		switch code {
		case http.StatusAccepted, http.StatusOK:
			var req webhook.Request
			if json.Unmarshal(body, &req) != nil {
				t.Errorf("fuzz %d: %q accepted although it is not JSON", i, body)
			}
			// A mutation may turn one source id into another's (fuzz-87
			// losing its 7): that is a duplicate of the earlier message,
			// answered with its id, never a second message.
			if code == http.StatusOK && (!resp.Duplicate || !slices.Contains(slices.Collect(maps.Values(acked)), resp.MessageID)) {
				t.Errorf("fuzz %d: %q answered 200 %+v; want a duplicate of a message acknowledged before", i, body, resp)
			}
			acked["fuzz:"+string(body)] = resp.MessageID
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusConflict: // 409: a mutated source_id hit an earlier one
		default:
			t.Errorf("fuzz %d: %q answered %d", i, body, code)
		}
	}
	for _, r := range h.replicas {
		r.waitReady()
	}
	s.stop()
	for k, v := range s.acknowledged() {
		acked[k] = v
	}
	t.Log(s.summary())
	t.Log(h.checkInvariants(acked, expectations{}))
}

// mutate flips, drops, duplicates or inserts a few bytes.
func mutate(rng *rand.Rand, b []byte) []byte {
	b = bytes.Clone(b)
	for range 1 + rng.IntN(4) {
		if len(b) == 0 {
			break
		}
		i := rng.IntN(len(b))
		switch rng.IntN(5) {
		case 0:
			b[i] ^= byte(1 << rng.IntN(8))
		case 1:
			b = append(b[:i], b[i+1:]...)
		case 2:
			b = append(b[:i], append([]byte{b[i]}, b[i:]...)...)
		case 3:
			special := []byte(`{}[]",:\` + "\x00\xff")
			b = append(b[:i], append([]byte{special[rng.IntN(len(special))]}, b[i:]...)...)
		case 4:
			b = b[:i]
		}
	}
	return b
}

// rawPost sends body with the signature header as given; chunked hides the
// length.
func rawPost(t *testing.T, base string, body []byte, sig string, chunked bool) (int, webhook.Response) {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // unknown length: sent chunked
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/messages", r)
	if sig != "" {
		req.Header.Set(webhook.SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("posting: %v", err)
	}
	defer resp.Body.Close()
	var out webhook.Response
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}
