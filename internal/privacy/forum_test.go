package privacy

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/channels/forum"
)

const forumSecret = "discourse-secret-0123456789"

// postToForum delivers a Discourse webhook fixture to the real forum channel
// writing into the world's namespace, as Discourse sends it.
func (w *world) postToForum(t *testing.T, h http.Handler, fixture string) {
	t.Helper()
	body, err := os.ReadFile("../../channels/forum/testdata/" + fixture)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/v1/forum/discourse", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(forum.EventHeader, "post_created")
	req.Header.Set("X-Discourse-Event-Type", "post")
	req.Header.Set("X-Discourse-Event-Id", fixture)
	req.Header.Set(forum.SignatureHeader, forum.Sign(body, forumSecret))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 300 {
		t.Fatalf("forum webhook %s: %d %s", fixture, rec.Code, rec.Body)
	}
}

// A forum member who wrote through the real forum channel (which keeps its
// own records of topics and post authors) is found by their forum user id
// and erased from every key; another member of the same topic keeps theirs.
func TestEraseAForumMemberWhoWroteThroughTheForumChannel(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	h := forum.New(forum.Config{Queue: w.store, State: w.store.State("forum"), Secret: forumSecret})
	for _, f := range []string{"post_created_first.json", "post_created_reply.json", "post_created_other_member.json"} {
		w.postToForum(t, h, f)
	}
	w.settle()
	s := w.service(t, nil)
	ex, err := s.Export(ctx, "forum:233")
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.Complaints) == 0 || len(ex.ForumUsers) != 1 || ex.ForumUsers[0].Username != "marloes" {
		t.Fatalf("export of forum:233: %d complaints, forum users %v", len(ex.Complaints), ex.ForumUsers)
	}
	needles := []string{"forum:233", "Marloes van Dijk", "jug inside is broken"}
	before := w.dump()
	for _, n := range needles {
		if len(traces(before, []string{n})) == 0 {
			t.Fatalf("the forum channel stored no %q", n)
		}
	}
	pieter := traces(w.dump(), []string{"forum:666"})
	if len(pieter) == 0 {
		t.Fatal("the forum channel stored nothing of the other member")
	}
	if _, err := s.Erase(ctx, EraseRequest{Customer: "forum:233", Reason: "request", Actor: "anna", Force: true}); err != nil {
		t.Fatal(err)
	}
	w.settle()
	dump := w.dump()
	if got := traces(dump, needles); len(got) > 0 {
		t.Errorf("after the erasure Marloes is still in:\n%s", strings.Join(got, "\n"))
	}
	if got := traces(dump, []string{"forum:666"}); len(got) != len(pieter) {
		t.Errorf("the other member's records changed: before %v, after %v", pieter, got)
	}
	for k := range dump {
		if _, ok := w.keys.KindOf(k); !ok {
			t.Errorf("key %s is of no kind in the erasure map", k)
		}
	}
	w.checkInvariants()
}
