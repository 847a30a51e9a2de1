package privacy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/forgetmenot/forgetmenot/channels/chat"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/texts"
)

// A chat visitor who wrote through the real chat channel (which keeps
// presence and rate limits per session) is found by their session and erased
// from every key.
func TestEraseAChatVisitorWhoWroteThroughTheChatChannel(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	tx, err := texts.Load(configs.ShippedChatTemplates(), texts.Options{Fallback: "en", Required: chat.RequiredTexts, Sample: chat.SampleTextData})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := chat.New(chat.Config{Queue: w.store, State: w.store.State("chat"), Texts: tx, MaxMessageBytes: 2000,
		RatePerMinute: 10, IPRatePerMinute: 50, OwnerName: func(id string) string { return id }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for p, h := range srv.Routes() {
		mux.Handle(p, h)
	}
	ts := httptest.NewServer(mux)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = srv.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; ts.Close() })
	<-srv.Ready()

	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/chat/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {ts.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	send := func(v any) {
		b, _ := json.Marshal(v)
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() map[string]any {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		_, b, err := c.Read(rctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	}
	send(map[string]any{"type": "hello"})
	welcome := read()
	token, _ := welcome["token"].(string)
	if token == "" {
		t.Fatalf("welcome %v", welcome)
	}
	send(map[string]any{"type": "message", "id": "k1", "text": "Mijn fiets is gestolen uit de stalling.", "name": "Karel Chatman", "email": "karel@chat.example"})
	for {
		if f := read(); f["type"] == "ack" {
			break
		}
	}
	session := chat.SessionID(token)
	w.settle()
	needles := []string{session, "Karel Chatman", "karel@chat.example", "fiets is gestolen"}
	before := w.dump()
	for _, n := range needles {
		if len(traces(before, []string{n})) == 0 {
			t.Fatalf("the chat channel stored no %q", n)
		}
	}
	// The visitor leaves; the presence goes with the socket.
	c.Close(websocket.StatusNormalClosure, "bye")
	testkit.WaitFor(t, "the presence to end", func() bool {
		n, _ := w.rdb.Exists(ctx, strings.TrimSuffix(w.keys.Pattern(), "*")+"state:chat:online:"+session).Result()
		return n == 0
	})

	s := w.service(t, nil)
	ex, err := s.Export(ctx, "chat:"+session)
	if err != nil || len(ex.Complaints) != 1 || len(ex.ChatSessions) != 1 {
		t.Fatalf("export of the chat session: %d complaints, sessions %v, %v", len(ex.Complaints), ex.ChatSessions, err)
	}
	if _, err := s.Erase(ctx, EraseRequest{Customer: "chat:" + session, Reason: "request", Actor: "anna", Force: true}); err != nil {
		t.Fatal(err)
	}
	w.settle()
	dump := w.dump()
	if got := traces(dump, needles); len(got) > 0 {
		t.Errorf("after the erasure the visitor is still in:\n%s", strings.Join(got, "\n"))
	}
	for k := range dump {
		if _, ok := w.keys.KindOf(k); !ok {
			t.Errorf("key %s is of no kind in the erasure map", k)
		}
	}
	w.checkInvariants()
}
