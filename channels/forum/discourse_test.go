package forum_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/forum"
	"github.com/forgetmenot/forgetmenot/channels/forum/forumtest"
	"github.com/forgetmenot/forgetmenot/router"
)

// shopForum is the API double with the shop's category tree: support (7) ⊃
// returns (12) ⊃ damaged-goods (15); site-feedback (3); and topic 4900 (in
// site-feedback) with its first post.
func shopForum(t *testing.T) *forumtest.Discourse {
	d := forumtest.New(t, "key-123", "helpdesk")
	d.AddCategory(
		forumtest.Category{ID: 7, Slug: "support"}, forumtest.Category{ID: 3, Slug: "site-feedback"},
		forumtest.Category{ID: 12, Slug: "returns", Parent: 7}, forumtest.Category{ID: 15, Slug: "damaged-goods", Parent: 12},
	)
	var first map[string]forum.Post
	if err := json.Unmarshal(load(t, "post_created_untagged_first.json"), &first); err != nil {
		t.Fatal(err)
	}
	d.AddTopic(4900, "Checkout charged me twice", 3, []string{"complaint"}, first["post"])
	return d
}

func withAPI(d *forumtest.Discourse, key string) func(*forum.Config) {
	return func(c *forum.Config) { c.API = forum.NewAPI(d.URL, key, "helpdesk", nil) }
}

type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *settableClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestComplaintCategoriesByIDOrSlugIncludeTheirSubcategories(t *testing.T) {
	for _, tc := range []struct {
		name     string
		category string
		paginate bool
	}{
		{"slug", "support", false},
		{"id", "7", false},
		{"slug, forum that pages its categories", "support", true},
		{"parent slug of the subcategory", "returns", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := shopForum(t)
			d.Paginate(tc.paginate)
			f := newFixture(t, forum.Filter{Categories: []string{tc.category}}, withAPI(d, "key-123"))
			// Topic events carry only the category id (15, two levels below
			// support); before, they answered "not in a complaint category".
			code, out := f.send("topic_created", "topic_created_subcategory.json")
			if code != http.StatusOK || strings.Contains(fmt.Sprint(out["ignored"]), "not in a complaint category") {
				t.Fatalf("topic_created in a subcategory: %d %v", code, out)
			}
			if code, out := f.send("post_created", "post_created_subcategory_first.json"); code != http.StatusAccepted {
				t.Fatalf("first post in a subcategory: %d %v, want it stored", code, out)
			}
			if code, out := f.send("post_created", "post_created_other_category.json"); code != http.StatusOK || !strings.Contains(fmt.Sprint(out["ignored"]), "not in a complaint category") {
				t.Fatalf("post in site-feedback: %d %v, want ignored", code, out)
			}
			if got := f.queued(); len(got) != 1 || got[0].SourceID != "post:90500" {
				t.Fatalf("queued %+v, want only the subcategory's first post", got)
			}
			// Resolved once: further events ask Discourse nothing.
			reads := d.Requests("GET /categories.json")
			f.send("topic_created", "topic_created_subcategory.json")
			if again := d.Requests("GET /categories.json"); again != reads {
				t.Errorf("%d category reads for a repeated event, want the cached tree", again-reads)
			}
		})
	}
}

func TestCategoryTreeIsRefreshedAndSurvivesDiscourseBeingDown(t *testing.T) {
	d := shopForum(t)
	clock := &settableClock{now: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	f := newFixture(t, forum.Filter{Categories: []string{"support"}}, withAPI(d, "key-123"), func(c *forum.Config) {
		c.Clock, c.CategoryRefresh = clock.Now, 10*time.Minute
	})
	topicIn := func(category int64) []byte {
		var p map[string]map[string]any
		_ = json.Unmarshal(load(t, "topic_created_subcategory.json"), &p)
		p["topic"]["category_id"] = category
		p["topic"]["id"] = 5000 + category
		b, _ := json.Marshal(p)
		return b
	}
	deliver := func(body []byte) (int, map[string]any) {
		return f.deliver("topic_created", body, forum.Sign(body, secret))
	}
	if _, out := deliver(topicIn(15)); strings.Contains(fmt.Sprint(out["ignored"]), "not in a complaint") {
		t.Fatalf("subcategory not recognised: %v", out)
	}
	// A subcategory created since: the first miss after a minute reads the tree again.
	d.AddCategory(forumtest.Category{ID: 20, Slug: "warranty", Parent: 7})
	clock.Advance(2 * time.Minute)
	if _, out := deliver(topicIn(20)); strings.Contains(fmt.Sprint(out["ignored"]), "not in a complaint") {
		t.Fatalf("a new subcategory must be found by a refresh on the miss: %v", out)
	}
	// Discourse goes down past the refresh period: the tree known stays in use.
	d.Down(true)
	clock.Advance(15 * time.Minute)
	if code, out := deliver(topicIn(20)); code != http.StatusOK || strings.Contains(fmt.Sprint(out["ignored"]), "not in a complaint") {
		t.Fatalf("with Discourse down after a good read: %d %v, want the known tree used", code, out)
	}
	d.Down(false)
	// Never readable (a revoked key): nothing is decided blindly.
	broken := newFixture(t, forum.Filter{Categories: []string{"support"}}, withAPI(d, "revoked-key"))
	code, out := broken.deliver("topic_created", topicIn(15), forum.Sign(topicIn(15), secret))
	if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(out["error"]), "API username or key is invalid") {
		t.Fatalf("categories never readable: %d %v, want 503 naming Discourse's refusal, so Discourse retries", code, out)
	}
	if n := len(broken.queued()); n != 0 {
		t.Fatalf("%d queued without knowing the categories", n)
	}
	// A category configured by id needs no API for the category itself.
	byID := newFixture(t, forum.Filter{Categories: []string{"15"}}, withAPI(d, "revoked-key"))
	if code, out := byID.send("post_created", "post_created_subcategory_first.json"); code != http.StatusAccepted {
		t.Fatalf("category by id with Discourse unreachable: %d %v", code, out)
	}
}

func TestComplaintTagAddedLaterMakesTheFirstPostAComplaint(t *testing.T) {
	d := shopForum(t)
	f := newFixture(t, forum.Filter{Categories: []string{"support"}, Tags: []string{"Complaint"}}, withAPI(d, "key-123"))
	// Created untagged in site-feedback: not a complaint.
	f.send("topic_created", "topic_created_untagged.json")
	f.send("post_created", "post_created_untagged_first.json")
	if n := len(f.queued()); n != 0 {
		t.Fatalf("%d queued from an untagged topic outside the complaint categories", n)
	}
	// A moderator adds the complaint tag (newer Discourse sends tag objects).
	for range 2 { // and Discourse retries the event
		code, out := f.send("topic_edited", "topic_edited_tagged.json")
		if code/100 != 2 {
			t.Fatalf("topic_edited: %d %v", code, out)
		}
	}
	got := f.queued()
	if len(got) != 1 {
		t.Fatalf("queued %d messages, want exactly the topic's first post once", len(got))
	}
	m := got[0]
	if m.SourceID != "post:90400" || m.Customer.ID != "240" || m.Subject != "Checkout charged me twice" || !strings.Contains(m.Body, "two charges") || m.Metadata[forum.MetaPostNumber] != "1" {
		t.Errorf("the complaint must start from the first post, read through the API: %+v", m)
	}
	if n := d.Requests("GET /t/4900.json"); n != 1 {
		t.Errorf("%d topic reads, want 1: once a complaint, an edit asks nothing", n)
	}
	// Later posts in the topic are customer messages now.
	var reply map[string]map[string]any
	_ = json.Unmarshal(load(t, "post_created_untagged_first.json"), &reply)
	reply["post"]["id"], reply["post"]["post_number"], reply["post"]["raw"] = 90401, 2, "Any news?"
	body, _ := json.Marshal(reply)
	if code, out := f.deliver("post_created", body, forum.Sign(body, secret)); code != http.StatusAccepted {
		t.Fatalf("next post in the tagged topic: %d %v", code, out)
	}
}

func TestTopicEditThatDiscourseWillNotLetUsReadIsRefusedNotLost(t *testing.T) {
	d := shopForum(t)
	d.AddCategory(forumtest.Category{ID: 30, Slug: "vip", Private: true})
	var first map[string]forum.Post
	_ = json.Unmarshal(load(t, "post_created_untagged_first.json"), &first)
	d.AddTopic(4900, "Checkout charged me twice", 30, []string{"complaint"}, first["post"])
	// No API key: an anonymous visitor may not read a private category.
	f := newFixture(t, forum.Filter{Tags: []string{"complaint"}}, withAPI(d, ""))
	f.send("topic_created", "topic_created_untagged.json")
	code, out := f.send("topic_edited", "topic_edited_tagged.json")
	if code != http.StatusBadGateway || !strings.Contains(fmt.Sprint(out["error"]), "not permitted") {
		t.Fatalf("unreadable first post: %d %v, want 502 naming Discourse's refusal (the event shows as failed in its log)", code, out)
	}
	// Fixed (an API key): the retried event makes the complaint.
	fixed := newFixture(t, forum.Filter{Tags: []string{"complaint"}}, withAPI(d, "key-123"))
	fixed.send("topic_created", "topic_created_untagged.json")
	if code, out := fixed.send("topic_edited", "topic_edited_tagged.json"); code != http.StatusAccepted {
		t.Fatalf("with a key: %d %v", code, out)
	}
}

// staffLog records staff answers as the router would: on the complaint its
// topic is threaded to.
type staffLog struct {
	mu      sync.Mutex
	topics  map[string]string
	answers []router.ExternalReply
}

func (s *staffLog) RecordStaffReply(_ context.Context, rep router.ExternalReply) (router.Complaint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.topics[rep.ThreadKey]
	if id == "" {
		return router.Complaint{}, fmt.Errorf("no complaint on %s: %w", rep.ThreadKey, router.ErrNotFound)
	}
	s.answers = append(s.answers, rep)
	return router.Complaint{ID: id}, nil
}

func TestStaffPostsAreRecordedAsRepliesAndOurOwnPostsAreNot(t *testing.T) {
	staff := &staffLog{topics: map[string]string{"forum:topic:4711": "C-1001"}}
	d := shopForum(t)
	f := newFixture(t, forum.Filter{Categories: []string{"support"}, Staff: []string{"Anna"}, StaffGroups: []string{"Support-Team"}},
		withAPI(d, "key-123"), func(c *forum.Config) { c.Staff, c.Owners = staff, map[string]string{"bas.jansen": "bas"} })
	answer := load(t, "post_created_staff_answer.json")
	edit := func(body []byte, fields map[string]any) []byte {
		var p map[string]map[string]any
		_ = json.Unmarshal(body, &p)
		for k, v := range fields {
			p["post"][k] = v
		}
		b, _ := json.Marshal(p)
		return b
	}
	for _, tc := range []struct {
		name     string
		body     []byte
		recorded string // actor, or "" when nothing is recorded
		ignored  string
	}{
		{"owner with a Discourse account", answer, "bas", ""},
		{"moderator not on the roster", edit(answer, map[string]any{"id": 90220, "username": "mia", "name": "Mia"}), "forum:mia", ""},
		{"member of a staff group", edit(answer, map[string]any{"id": 90221, "username": "kees", "staff": false, "moderator": false}), "forum:kees", ""},
		{"listed username", edit(answer, map[string]any{"id": 90222, "username": "anna", "staff": false, "moderator": false, "primary_group_name": nil}), "forum:anna", ""},
		{"our own API account", load(t, "post_created_staff.json"), "", "own account"},
		{"staff whisper", edit(answer, map[string]any{"id": 90223, "post_type": 4}), "", "whisper"},
		{"staff in a topic of another category", edit(answer, map[string]any{"id": 90224, "topic_id": 4800, "category_id": 3, "category_slug": "site-feedback"}), "", "not a complaint"},
		{"staff opening a topic of their own", edit(answer, map[string]any{"id": 90225, "topic_id": 4801, "post_number": 1, "reply_to_post_number": nil}), "", "not a complaint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(staff.answers)
			code, out := f.deliver("post_created", tc.body, forum.Sign(tc.body, secret))
			if code/100 != 2 {
				t.Fatalf("%d %v", code, out)
			}
			recorded := len(staff.answers) > before
			if recorded != (tc.recorded != "") {
				t.Fatalf("recorded = %v (%v), want %v", recorded, out, tc.recorded != "")
			}
			if recorded {
				rep := staff.answers[len(staff.answers)-1]
				if rep.Actor != tc.recorded || rep.ThreadKey != "forum:topic:4711" || rep.Via != router.ChannelForum || !strings.HasPrefix(rep.Key, "forum:post:") || rep.Text == "" {
					t.Errorf("recorded %+v, want actor %s on topic 4711 keyed by the post id", rep, tc.recorded)
				}
				if out["staff_reply_on"] != "C-1001" {
					t.Errorf("answer %v should name the complaint", out)
				}
			}
			if ig, _ := out["ignored"].(string); tc.ignored != "" && !strings.Contains(ig, tc.ignored) {
				t.Errorf("ignored = %q, want it to say %q", ig, tc.ignored)
			}
		})
	}
	if n := len(f.queued()); n != 0 {
		t.Fatalf("%d staff posts queued as customer messages, want none", n)
	}
	if n := len(d.Posts()); n != 0 {
		t.Fatalf("%d posts sent back to Discourse, want none", n)
	}
}

func TestStaffAnswerRacingAheadOfItsComplaintIsRetriedNotDropped(t *testing.T) {
	staff := &staffLog{topics: map[string]string{}}
	f := newFixture(t, forum.Filter{Categories: []string{"support"}}, func(c *forum.Config) { c.Staff = staff })
	if code, _ := f.send("post_created", "post_created_first.json"); code != http.StatusAccepted {
		t.Fatal("first post not stored")
	}
	// The customer's post is queued but not routed yet.
	code, out := f.send("post_created", "post_created_staff_answer.json")
	if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(out["error"]), "still being opened") {
		t.Fatalf("staff answer before its complaint exists: %d %v, want 503 so Discourse retries", code, out)
	}
	staff.topics["forum:topic:4711"] = "C-1001" // routed meanwhile
	if code, out := f.send("post_created", "post_created_staff_answer.json"); code != http.StatusAccepted || len(staff.answers) != 1 {
		t.Fatalf("retried staff answer: %d %v", code, out)
	}
}

// What must hold: a staff answer is never dropped with a 2xx while the
// customer's post it answers may still come: that post refused with 503
// (Discourse delivers it again, in any order with the answer), or kept
// until its topic tells its tags. The answer is answered 503 too.
func TestStaffAnswerBeforeTheCustomersPostIsInIsRetried(t *testing.T) {
	staff := &staffLog{topics: map[string]string{}}
	f := newFixture(t, forum.Filter{Categories: []string{"support"}, Tags: []string{"complaint"}}, func(c *forum.Config) { c.Staff = staff })
	at := func(body []byte, when time.Time) []byte {
		var p map[string]map[string]any
		_ = json.Unmarshal(body, &p)
		p["post"]["created_at"] = when.UTC().Format(time.RFC3339)
		b, _ := json.Marshal(p)
		return b
	}
	// The customer's post in the support category was never accepted
	// (refused with 503 while the categories could not be read, say).
	fresh := at(load(t, "post_created_staff_answer.json"), time.Now())
	code, out := f.deliver("post_created", fresh, forum.Sign(fresh, secret))
	if code != http.StatusServiceUnavailable {
		t.Fatalf("staff answer in a complaint category before the customer's post: %d %v, want 503", code, out)
	}
	// Not for ever: an answer older than the wait is one in a topic from
	// before forgetmenot listened, or whose complaint is gone.
	stale := at(load(t, "post_created_staff_answer.json"), time.Now().Add(-2*time.Hour))
	if code, out := f.deliver("post_created", stale, forum.Sign(stale, secret)); code/100 != 2 {
		t.Fatalf("a staff answer of two hours ago with no complaint: %d %v, want it ignored", code, out)
	}
	// A tag-only topic: its first post waits for topic_created.
	if code, out := f.send("post_created", "post_created_untagged_first.json"); code/100 != 2 || !strings.Contains(fmt.Sprint(out["ignored"]), "kept until topic_created") {
		t.Fatalf("untagged first post: %d %v, want it kept", code, out)
	}
	var first map[string]map[string]any
	_ = json.Unmarshal(load(t, "post_created_untagged_first.json"), &first)
	var answer map[string]map[string]any
	_ = json.Unmarshal(load(t, "post_created_staff_answer.json"), &answer)
	for _, k := range []string{"topic_id", "category_id", "category_slug"} {
		answer["post"][k] = first["post"][k]
	}
	answer["post"]["id"] = 90299
	answer["post"]["created_at"] = time.Now().UTC().Format(time.RFC3339)
	body, _ := json.Marshal(answer)
	if code, out := f.deliver("post_created", body, forum.Sign(body, secret)); code != http.StatusServiceUnavailable {
		t.Fatalf("staff answer while the first post waits for its tags: %d %v, want 503", code, out)
	}
	if len(staff.answers) != 0 {
		t.Fatalf("recorded %d answers without a complaint", len(staff.answers))
	}
}

func TestAnotherMemberPostingInAComplaintTopicIsThemselvesNeverTheTopicOwner(t *testing.T) {
	f := newFixture(t, forum.Filter{Categories: []string{"support"}})
	f.send("post_created", "post_created_first.json")
	f.send("post_created", "post_created_other_member.json")
	got := f.queued()
	if len(got) != 2 {
		t.Fatalf("%d queued, want 2", len(got))
	}
	owner, other := got[0], got[1]
	if owner.Customer.ID != "233" || other.Customer.ID != "666" || other.Metadata[forum.MetaUsername] != "pieterk" || other.Customer.Name != "Pieter" {
		t.Fatalf("customers %+v and %+v: each post must carry its own poster's Discourse user id", owner.Customer, other.Customer)
	}
	if (router.Customer{ID: "666"}).Key(router.ChannelForum) != "forum:666" {
		t.Error("the forum customer key must be forum:<user_id>")
	}
}

func TestReplayedSignedPayloadIsStoredOnce(t *testing.T) {
	// Discourse signs no timestamp: a captured request replays with a valid
	// signature, and only the post-id deduplication catches it.
	f := newFixture(t, forum.Filter{Categories: []string{"support"}})
	body := load(t, "post_created_reply.json")
	sig := forum.Sign(body, secret)
	first, out := f.deliver("post_created", body, sig)
	if first != http.StatusAccepted {
		t.Fatalf("first delivery: %d %v", first, out)
	}
	for range 5 {
		code, out := f.deliver("post_created", body, sig)
		if code != http.StatusOK || out["duplicate"] != true {
			t.Fatalf("replay: %d %v, want 200 duplicate", code, out)
		}
	}
	if n := len(f.queued()); n != 1 {
		t.Fatalf("%d messages after 5 replays, want 1", n)
	}
}

func TestStaffAnswerToAnotherMembersPostNamesThatMember(t *testing.T) {
	staff := &staffLog{topics: map[string]string{"forum:topic:4711": "C-1001"}}
	f := newFixture(t, forum.Filter{Categories: []string{"support"}}, func(c *forum.Config) { c.Staff = staff })
	f.send("post_created", "post_created_first.json")
	f.send("post_created", "post_created_other_member.json") // Pieter, post 4
	var p map[string]map[string]any
	_ = json.Unmarshal(load(t, "post_created_staff_answer.json"), &p)
	p["post"]["reply_to_post_number"], p["post"]["id"] = 4, 90230
	body, _ := json.Marshal(p)
	if code, out := f.deliver("post_created", body, forum.Sign(body, secret)); code != http.StatusAccepted {
		t.Fatalf("%d %v", code, out)
	}
	f.send("post_created", "post_created_staff_answer.json") // replies to Marloes's post 1
	if len(staff.answers) != 2 || staff.answers[0].CustomerKey != "forum:666" || staff.answers[1].CustomerKey != "forum:233" {
		t.Fatalf("answers %+v: each must name the customer whose post it answers", staff.answers)
	}
}
