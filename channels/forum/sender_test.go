package forum_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/forum"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// discourse is an httptest Discourse API: POST /posts.json with its
// authentication, answering with scripted statuses before it accepts.
type discourse struct {
	mu      sync.Mutex
	script  []int // statuses to answer before succeeding
	posts   []map[string]any
	headers []http.Header
}

func (d *discourse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.Method != "POST" || r.URL.Path != "/posts.json" {
		http.NotFound(w, r)
		return
	}
	d.headers = append(d.headers, r.Header.Clone())
	if r.Header.Get("Api-Key") != "key-123" || r.Header.Get("Api-Username") != "helpdesk" {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors":["You are not permitted to view the requested resource. The API username or key is invalid."],"error_type":"invalid_access"}`))
		return
	}
	if len(d.script) > 0 {
		status := d.script[0]
		d.script = d.script[1:]
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"errors":["scripted failure"]}`))
		return
	}
	var p map[string]any
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	d.posts = append(d.posts, p)
	_ = json.NewEncoder(w).Encode(map[string]any{"id": 91000 + len(d.posts), "topic_id": p["topic_id"], "post_number": 3 + len(d.posts)})
}

func newSender(t *testing.T, d *discourse, key string, ack bool) *forum.Sender {
	t.Helper()
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	rdb, keys := testredis.Client(t)
	return forum.NewSender(forum.SenderConfig{BaseURL: srv.URL + "/", APIKey: key, APIUsername: "helpdesk", Acknowledge: ack,
		State: queue.NewStore(rdb, keys, 0).State("forum")})
}

func reply(id string) router.CustomerMessage {
	in := forum.Message(forum.Post{ID: 90214, TopicID: 4711, PostNumber: 3, Username: "marloes", Raw: "Photos?"}, time.Now())
	return router.CustomerMessage{
		ID: id, Kind: router.ToCustomerReply, OwnerName: "Anna de Vries", AuthorName: "Bas for Anna de Vries",
		Complaint: router.Complaint{ID: "C-1001", Channel: router.ChannelForum, Customer: in.Customer},
		Body:      "Yes please, send them to us.", InReplyTo: &in, References: in.ThreadKeys,
	}
}

func TestReplyIsPostedInTheTopicSignedAndRetriedOnRateLimit(t *testing.T) {
	d := &discourse{script: []int{http.StatusTooManyRequests, http.StatusBadGateway}}
	s := newSender(t, d, "key-123", true)
	ctx := context.Background()
	m := reply("C-1001:v4:reply")

	// What the outbox does: retry until a nil or permanent error.
	_, err := s.Send(ctx, m)
	var ra *router.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 7*time.Second || router.IsPermanent(err) {
		t.Fatalf("429: err %v, want a retryable error honouring Retry-After", err)
	}
	if _, err := s.Send(ctx, m); err == nil || router.IsPermanent(err) {
		t.Fatalf("502: err %v, want retryable", err)
	}
	sent, err := s.Send(ctx, m)
	if err != nil || sent.Ref != "post:91001" || sent.Via != "forum" {
		t.Fatalf("third attempt: %+v %v", sent, err)
	}
	// A redelivery after success (the record of it was lost) posts nothing new.
	if again, err := s.Send(ctx, m); err != nil || again.Ref != sent.Ref {
		t.Fatalf("redelivery: %+v %v", again, err)
	}
	if len(d.posts) != 1 {
		t.Fatalf("%d posts, want exactly 1", len(d.posts))
	}
	p := d.posts[0]
	if p["topic_id"] != float64(4711) || p["reply_to_post_number"] != float64(3) {
		t.Errorf("posted %v, want topic 4711 in reply to post 3", p)
	}
	if raw := p["raw"].(string); !strings.HasPrefix(raw, "Yes please, send them to us.") || !strings.HasSuffix(raw, "— Bas for Anna de Vries") {
		t.Errorf("raw %q must carry the text signed by its author", raw)
	}
}

func TestAcknowledgementNamesTheOwnerAndCanBeTurnedOff(t *testing.T) {
	d := &discourse{}
	ack := reply("C-1001:v1:acknowledgement")
	ack.Kind, ack.Body = router.ToCustomerAcknowledgement, ""
	if _, err := newSender(t, d, "key-123", true).Send(context.Background(), ack); err != nil {
		t.Fatal(err)
	}
	if raw := d.posts[0]["raw"].(string); !strings.Contains(raw, "Anna de Vries") || !strings.Contains(raw, "C-1001") || !strings.HasPrefix(raw, "@marloes") {
		t.Errorf("acknowledgement %q must address the customer and name the owner and reference", raw)
	}
	sent, err := newSender(t, d, "key-123", false).Send(context.Background(), ack)
	if err != nil || sent.Skipped == "" || len(d.posts) != 1 {
		t.Fatalf("with acknowledgements off: %+v %v, %d posts; want a recorded skip and no post", sent, err, len(d.posts))
	}
}

func TestRefusalsThatNoRetryFixesArePermanent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    string
		script []int
		want   string
	}{
		{"wrong API key (403)", "wrong", nil, "API username or key is invalid"},
		{"topic gone (404)", "key-123", []int{http.StatusNotFound}, "404"},
		{"validation (422)", "key-123", []int{http.StatusUnprocessableEntity}, "scripted failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &discourse{script: tc.script}
			_, err := newSender(t, d, tc.key, true).Send(context.Background(), reply("C-1001:v4:reply"))
			if !router.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want permanent mentioning %q", err, tc.want)
			}
		})
	}
	t.Run("no topic to answer in", func(t *testing.T) {
		m := reply("C-1002:v2:reply")
		m.InReplyTo, m.References = nil, []string{"email:<x@y>"}
		_, err := newSender(t, &discourse{}, "key-123", true).Send(context.Background(), m)
		if !router.IsPermanent(err) {
			t.Fatalf("err %v, want permanent", err)
		}
	})
}
