package faults_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/webhook"
)

// sender is a steady webhook source that behaves like a well-written form
// backend: every message has its own source_id, and it is resent (freshly
// signed, to the next replica) until some replica answers 2xx. Only then does
// the sender consider it delivered: that is the acknowledgement I1 is about.
type sender struct {
	h      *harness
	client *http.Client
	prefix string

	mu       sync.Mutex
	next     int
	accepted map[string]string // source id → message id
	answers  []answer
	paused   bool
	resumed  *sync.Cond
	stopGen  chan struct{}
	genDone  chan struct{}
	inflight sync.WaitGroup
}

// answer is one HTTP attempt: when it was sent and what came back (0: no
// answer at all).
type answer struct {
	sent, got time.Time
	status    int
}

func (h *harness) newSender(prefix string) *sender {
	s := &sender{
		h:        h,
		prefix:   prefix,
		accepted: map[string]string{},
		// Connections are kept for every concurrent sender (the default
		// keeps two per replica): a new TCP connection per request would
		// make the benchmark measure connection setup, on both sides.
		client: &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
			Proxy: nil, MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
		}},
	}
	s.resumed = sync.NewCond(&s.mu)
	return s
}

// body builds message n: customers recur (so sticky routing and threading by
// customer run), every third message continues an order thread, and the texts
// hit the Dutch, English and billing rules.
func (s *sender) body(n int) []byte {
	texts := []string{
		"Mijn pakket is nog steeds niet bezorgd en ik wacht al twee weken.",
		"The kettle I ordered arrived with a cracked lid, please help.",
		"I was charged twice on my invoice for the same order.",
		"De factuur klopt niet, er staat een verkeerd bedrag op.",
		"My account login stopped working after the update.",
	}
	req := webhook.Request{
		SourceID: fmt.Sprintf("%s-%d", s.prefix, n),
		Customer: webhook.CustomerJSON{Name: fmt.Sprintf("Customer %d", n%37), Email: fmt.Sprintf("c%d@example.com", n%37)},
		Subject:  fmt.Sprintf("Order %d", n%37),
		Body:     texts[n%len(texts)],
	}
	if n%3 == 0 {
		// The same customer writes again about the same order.
		k := n % 11
		req.ThreadKey = fmt.Sprintf("%s-order-%d", s.prefix, k)
		req.Customer = webhook.CustomerJSON{Name: fmt.Sprintf("Thread customer %d", k), Email: fmt.Sprintf("t%d@example.com", k)}
	}
	b, _ := json.Marshal(req)
	return b
}

// start sends rate messages per second until stop.
func (s *sender) start(rate int) {
	s.stopGen, s.genDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.genDone)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-s.stopGen:
				return
			case <-tick.C:
				s.mu.Lock()
				for s.paused {
					s.resumed.Wait()
				}
				n := s.next
				s.next++
				s.mu.Unlock()
				s.inflight.Add(1)
				go func() { defer s.inflight.Done(); s.deliver(n) }()
			}
		}
	}()
}

// stop ends the generation of new messages and waits until every message
// already started has been acknowledged by some replica.
func (s *sender) stop() {
	close(s.stopGen)
	<-s.genDone
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		s.h.t.Fatalf("messages still not acknowledged 90s after the load stopped")
	}
}

// pause holds all sending, including retries; resume lets it go on.
func (s *sender) pause() {
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
}

func (s *sender) resume() {
	s.mu.Lock()
	s.paused = false
	s.resumed.Broadcast()
	s.mu.Unlock()
}

// deliver sends message n until a replica answers 2xx.
func (s *sender) deliver(n int) {
	body := s.body(n)
	source := fmt.Sprintf("%s-%d", s.prefix, n)
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		for s.paused {
			s.resumed.Wait()
		}
		s.mu.Unlock()
		r := s.h.replicas[(n+attempt)%len(s.h.replicas)]
		status, id := s.post(r.base(), body, time.Now())
		if status == http.StatusAccepted || status == http.StatusOK {
			s.mu.Lock()
			if prev, ok := s.accepted[source]; ok && prev != id {
				s.h.t.Errorf("source %s was acknowledged as %s and as %s", source, prev, id)
			}
			s.accepted[source] = id
			s.mu.Unlock()
			return
		}
		if status != 0 && status != http.StatusServiceUnavailable {
			s.h.t.Errorf("message %s: unexpected answer %d", source, status)
			return
		}
		time.Sleep(time.Duration(50+25*min(attempt, 8)) * time.Millisecond)
	}
}

// post sends one signed attempt and records the answer.
func (s *sender) post(base string, body []byte, at time.Time) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, at, testSecret))
	sent := time.Now()
	resp, err := s.client.Do(req)
	a := answer{sent: sent, got: time.Now()}
	var out webhook.Response
	if err == nil {
		a.status = resp.StatusCode
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = json.Unmarshal(b, &out)
	}
	s.mu.Lock()
	s.answers = append(s.answers, a)
	s.mu.Unlock()
	return a.status, out.MessageID
}

// acknowledged returns the message ids of every message answered 2xx.
func (s *sender) acknowledged() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.accepted))
	for k, v := range s.accepted {
		out[k] = v
	}
	return out
}

// answersBetween returns the answers to attempts sent in [from, to).
func (s *sender) answersBetween(from, to time.Time) []answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []answer
	for _, a := range s.answers {
		if !a.sent.Before(from) && a.sent.Before(to) {
			out = append(out, a)
		}
	}
	return out
}

func (s *sender) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	count := map[int]int{}
	for _, a := range s.answers {
		count[a.status]++
	}
	return fmt.Sprintf("%d messages acknowledged; attempts by answer (0 = no answer): %v", len(s.accepted), count)
}
