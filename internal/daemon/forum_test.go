package daemon_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/forgetmenot/forgetmenot/channels/forum"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
)

// fakeDiscourse records the posts the daemon makes through the Discourse API.
type fakeDiscourse struct {
	mu    sync.Mutex
	posts []map[string]any
}

func (f *fakeDiscourse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/posts.json" || r.Header.Get("Api-Key") != "k" || r.Header.Get("Api-Username") != "helpdesk" {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	var p map[string]any
	_ = json.NewDecoder(r.Body).Decode(&p)
	f.mu.Lock()
	f.posts = append(f.posts, p)
	n := len(f.posts)
	f.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"id": 95000 + n})
}

func (f *fakeDiscourse) raws() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.posts {
		out = append(out, p["raw"].(string))
	}
	return out
}

func TestForumTopicBecomesOneComplaintAndTheOwnerAnswersInTheTopic(t *testing.T) {
	const secret = "discourse-secret-0123456789"
	api := &fakeDiscourse{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	r := start(t, testredis.URL(t), func(c *configs.Config) {
		c.DiscourseURL, c.DiscourseWebhookSecret = srv.URL, secret
		c.DiscourseAPIKey, c.DiscourseAPIUsername, c.DiscourseAcknowledge = "k", "helpdesk", true
		c.DiscourseCategories = configs.Secrets{"support"}
	})
	deliver := func(event, file string) map[string]any {
		body, err := os.ReadFile("../../channels/forum/testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		h.Set(forum.EventHeader, event)
		h.Set(forum.SignatureHeader, forum.Sign(body, secret))
		code, out := r.do("POST", "/v1/forum/discourse", body, h)
		if code/100 != 2 {
			t.Fatalf("%s %s: %d %v", event, file, code, out)
		}
		return out
	}
	deliver("topic_created", "topic_created.json")
	first := deliver("post_created", "post_created_first.json")
	deliver("post_created", "post_created_first.json") // Discourse retry
	id := r.routed(first["message_id"].(string), "")["complaint_id"].(string)
	testkit.WaitFor(t, "the acknowledgement posted in the topic", func() bool { return len(api.raws()) == 1 })
	if ack := api.raws()[0]; !strings.Contains(ack, id) || !strings.HasPrefix(ack, "@marloes") {
		t.Errorf("acknowledgement %q must address the customer and name the complaint", ack)
	}

	// The support account's own post comes back as post_created: not a message.
	deliver("post_created", "post_created_staff.json")
	reply := deliver("post_created", "post_created_reply.json")
	if got := r.routed(reply["message_id"].(string), "")["complaint_id"]; got != id {
		t.Fatalf("the customer's next post landed on %v, want %s (threaded by topic)", got, id)
	}
	_, detail := r.call("GET", "/v1/complaints/"+id, nil, "")
	if n := detail["complaint"].(map[string]any)["messages"]; n != float64(2) {
		t.Fatalf("complaint has %v messages, want 2: one per customer post, none for staff", n)
	}
	if code, res := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": "Please send the photos here."}, ""); code != 200 {
		t.Fatalf("reply: %d %v", code, res)
	}
	testkit.WaitFor(t, "the reply posted and recorded", func() bool {
		return len(api.raws()) == 2 && len(timelineEvents(r, id, "sent")) == 2
	})
	api.mu.Lock()
	p := api.posts[1]
	api.mu.Unlock()
	if p["topic_id"] != float64(4711) || p["reply_to_post_number"] != float64(3) || !strings.HasPrefix(p["raw"].(string), "Please send the photos here.\n\n— ") {
		t.Errorf("reply posted as %v, want it in topic 4711 answering post 3, signed", p)
	}
}
