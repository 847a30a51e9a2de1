package slack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/slack"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/gorilla/websocket"
)

// socketServer speaks Slack's Socket Mode: apps.connections.open hands out a
// WebSocket URL; on it Slack says hello, sends envelopes and reads acks.
type socketServer struct {
	srv       *httptest.Server
	envelopes []map[string]any
	mu        sync.Mutex
	acks      []map[string]any
}

func newSocketServer(t *testing.T, envelopes ...map[string]any) *socketServer {
	s := &socketServer{envelopes: envelopes}
	mux := http.NewServeMux()
	mux.HandleFunc("/apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer xapp-test" {
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link"})
	})
	mux.HandleFunc("/link", func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.WriteJSON(map[string]any{"type": "hello", "num_connections": 1})
		for _, e := range s.envelopes {
			_ = c.WriteJSON(e)
		}
		for {
			var ack map[string]any
			if err := c.ReadJSON(&ack); err != nil {
				return
			}
			s.mu.Lock()
			s.acks = append(s.acks, ack)
			s.mu.Unlock()
		}
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *socketServer) ack(envelope string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.acks {
		if a["envelope_id"] == envelope {
			return a, true
		}
	}
	return nil, false
}

// What must hold: in Socket Mode (the default) a button click and a slash
// command are acknowledged over the socket and carried out.
func TestSocketMode(t *testing.T) {
	f := newFixture(t)
	id, owner := f.openComplaint("sm1")
	user := f.slackUserOf(owner)
	payload, _ := json.Marshal(click(user, "fmn_reply", id))
	sock := newSocketServer(t,
		map[string]any{"type": "interactive", "envelope_id": "env-1", "payload": json.RawMessage(payload), "accepts_response_payload": false},
		map[string]any{"type": "slash_commands", "envelope_id": "env-2", "accepts_response_payload": true,
			"payload": map[string]any{"command": "/complaints", "text": "mine", "user_id": user, "channel_id": "D" + user}},
	)
	// The Web API calls go to the fake workspace; only the socket endpoints
	// are the socket server's.
	s := socketSlack(t, f, sock, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.RunSocket(ctx) }()
	testkit.WaitFor(t, "the acks", func() bool {
		_, a := sock.ack("env-1")
		_, b := sock.ack("env-2")
		return a && b
	})
	testkit.WaitFor(t, "the reply modal", func() bool { return len(f.ws.Views()) == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.Wait()
	ack, _ := sock.ack("env-2")
	if p, _ := json.Marshal(ack["payload"]); !strings.Contains(string(p), id) || !strings.Contains(string(p), "ephemeral") {
		t.Errorf("slash command ack %s, want the ephemeral list with %s", p, id)
	}
}

// What must hold: Socket Mode acknowledges at once and handles events
// concurrently — a slow one (a slash command whose user lookup takes Slack
// 1.5 s) delays neither the acknowledgement of the events after it nor
// their work — while two clicks on one complaint are carried out in the
// order they came.
func TestSocketModeConcurrentInOrder(t *testing.T) {
	f := newFixture(t)
	idA, ownerA := f.openComplaint("cc1")
	userA := f.slackUserOf(ownerA)
	click1, _ := json.Marshal(click(userA, "fmn_reply", idA))
	click2, _ := json.Marshal(click(userA, "fmn_promise", idA))
	sock := newSocketServer(t,
		map[string]any{"type": "slash_commands", "envelope_id": "cmd", "accepts_response_payload": true,
			"payload": map[string]any{"command": "/complaints", "text": "mine", "user_id": "USANNE", "channel_id": "DUSANNE"}},
		map[string]any{"type": "interactive", "envelope_id": "click-1", "payload": json.RawMessage(click1)},
		map[string]any{"type": "interactive", "envelope_id": "click-2", "payload": json.RawMessage(click2)},
	)
	s := socketSlack(t, f, sock, 4)
	// Who clicked or typed is looked up with users.info: slow for everyone,
	// and the clicks are slower still (the modal).
	f.ws.Delay("users.info", 1500*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.RunSocket(ctx) }()
	testkit.WaitFor(t, "the clicks acknowledged", func() bool {
		_, a := sock.ack("click-1")
		_, b := sock.ack("click-2")
		return a && b
	})
	if _, slow := sock.ack("cmd"); slow {
		t.Errorf("the slow command was answered before the clicks were acknowledged: envelopes wait for each other")
	}
	testkit.WaitFor(t, "the command answered", func() bool { _, ok := sock.ack("cmd"); return ok })
	testkit.WaitFor(t, "both modals", func() bool { return len(f.ws.Views()) == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.Wait()
	if v := f.ws.Views(); v[0].View["callback_id"] != "fmn_reply" || v[1].View["callback_id"] != "fmn_promise" {
		t.Errorf("modals opened as %v, %v: the clicks on %s were reordered", v[0].View["callback_id"], v[1].View["callback_id"], idA)
	}
}

// What must hold: one user's burst of events (App Home opened again and
// again, each publish paced a second apart) does not hold up another
// user's command: events wait for their turn without taking a worker, so
// the command is answered while the burst is still being worked off.
func TestSocketModeBurstOfOneUserDoesNotHoldUpAnother(t *testing.T) {
	f := newFixture(t)
	_, owner := f.openComplaint("burst1")
	user := f.slackUserOf(owner)
	var envs []map[string]any
	for i := range 4 {
		var ev json.RawMessage = homeOpened(user)
		envs = append(envs, map[string]any{"type": "events_api", "envelope_id": fmt.Sprintf("home-%d", i), "payload": ev})
	}
	envs = append(envs, map[string]any{"type": "slash_commands", "envelope_id": "cmd", "accepts_response_payload": true,
		"payload": map[string]any{"command": "/complaints", "text": "mine", "user_id": "USANNE", "channel_id": "DUSANNE"}})
	sock := newSocketServer(t, envs...)
	s := socketSlack(t, f, sock, 2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.RunSocket(ctx) }()
	testkit.WaitFor(t, "the command answered", func() bool { _, ok := sock.ack("cmd"); return ok })
	if n := len(f.ws.Published(user)); n > 1 {
		t.Errorf("the command was answered only after %d of the other user's 4 paced publishes: it waited for their turns", n)
	}
	testkit.WaitFor(t, "the burst worked off", func() bool { return len(f.ws.Published(user)) >= 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.Wait()
}

// socketSlack runs a Slack in Socket Mode against sock, with every other
// Web API call going to the fixture's fake Slack.
func socketSlack(t *testing.T, f *fixture, sock *socketServer, workers int) *slack.Slack {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/apps.connections.open", sock.srv.Config.Handler)
	wsURL := f.ws.URL()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.TrimSuffix(wsURL, "/")+r.URL.Path, http.StatusTemporaryRedirect)
	})
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)
	s, err := slack.New(slack.Config{BotToken: "xoxb-test", AppToken: "xapp-test", APIURL: api.URL,
		Complaints: f.router, State: f.store.State("slack"), Log: discard, SocketWorkers: workers})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
