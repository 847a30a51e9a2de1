package daemon_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/forum"
	"github.com/forgetmenot/forgetmenot/channels/forum/forumtest"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

func TestForumTopicBecomesOneComplaintAndTheOwnerAnswersInTheTopic(t *testing.T) {
	const secret = "discourse-secret-0123456789"
	api := forumtest.New(t, "k", "helpdesk")
	api.AddCategory(forumtest.Category{ID: 7, Slug: "support"})
	api.AddTopic(4711, "Order 104-2233 arrived broken", 7, []string{"complaint"}, forum.Post{ID: 90211, PostNumber: 1, UserID: 233, Username: "marloes", Raw: "The jug inside is broken."})
	r := start(t, testredis.URL(t), func(c *configs.Config) {
		c.DiscourseURL, c.DiscourseWebhookSecret = api.URL, secret
		c.DiscourseAPIKey, c.DiscourseAPIUsername, c.DiscourseAcknowledge = "k", "helpdesk", true
		c.DiscourseCategories = configs.Secrets{"support"}
		c.DiscourseCategoryRefresh = configs.Duration(10 * 60e9)
		c.TargetsFile = "../../configs/targets.yaml" // deadlines: a first response is due
	})
	deliver := func(event, file string) (int, map[string]any) {
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
		return code, out
	}
	deliver("topic_created", "topic_created.json")
	_, first := deliver("post_created", "post_created_first.json")
	deliver("post_created", "post_created_first.json") // Discourse retry
	id := r.routed(first["message_id"].(string), "")["complaint_id"].(string)
	testkit.WaitFor(t, "the acknowledgement posted in the topic", func() bool { return len(api.Posts()) == 1 })
	if ack := api.Posts()[0].Raw; !strings.Contains(ack, id) || !strings.HasPrefix(ack, "@marloes ") {
		t.Errorf("acknowledgement %q must address the customer and name the complaint", ack)
	}
	complaint, _ := r.complaint(id)
	if complaint["respond_by"] == nil || complaint["customer_key"] != "forum:233" {
		t.Fatalf("complaint %v: want a response deadline and the customer keyed by Discourse user id", complaint)
	}

	// The support account's own post (the acknowledgement) comes back as
	// post_created: not a message, not a staff reply.
	if _, out := deliver("post_created", "post_created_staff.json"); !strings.Contains(out["ignored"].(string), "own account") {
		t.Errorf("our own post: %v", out)
	}
	// Bas (discourse_username bas.jansen) answers directly in Discourse.
	code, out := deliver("post_created", "post_created_staff_answer.json")
	if code != http.StatusAccepted || out["staff_reply_on"] != id {
		t.Fatalf("staff answer: %d %v, want it recorded on %s", code, out, id)
	}
	replies := timelineEvents(r, id, "replied")
	if len(replies) != 1 || replies[0]["actor"] != "bas" || !strings.Contains(replies[0]["text"].(string), "photo of the box") {
		t.Fatalf("timeline replies %v, want Bas's answer", replies)
	}
	complaint, _ = r.complaint(id)
	if complaint["respond_by"] != nil || complaint["first_response_at"] == nil {
		t.Errorf("after the staff answer: respond_by %v, first_response_at %v; the response clock must be satisfied", complaint["respond_by"], complaint["first_response_at"])
	}
	// Replays of signed payloads (no timestamp in Discourse's signature)
	// change nothing: the post id is the only guard, and it holds.
	deliver("post_created", "post_created_staff_answer.json")
	deliver("post_created", "post_created_first.json")
	if n := len(timelineEvents(r, id, "replied")); n != 1 {
		t.Errorf("%d replies after a replayed staff post, want 1", n)
	}

	_, reply := deliver("post_created", "post_created_reply.json")
	if got := r.routed(reply["message_id"].(string), "")["complaint_id"]; got != id {
		t.Fatalf("the customer's next post landed on %v, want %s (threaded by topic)", got, id)
	}
	// Another member posts in Marloes's topic: their own complaint, never
	// Marloes's customer, never answered as her.
	_, other := deliver("post_created", "post_created_other_member.json")
	if got := r.routed(other["message_id"].(string), "")["complaint_id"]; got == id {
		t.Fatalf("another member's post joined %s", id)
	}
	otherID := r.routed(other["message_id"].(string), "")["complaint_id"].(string)
	complaint, _ = r.complaint(id)
	if complaint["messages"] != float64(2) || complaint["customer_key"] != "forum:233" {
		t.Fatalf("complaint %v: want Marloes's 2 posts only, and her still its customer", complaint)
	}
	// A moderator answers Pieter's post: that is Pieter's answer, not Marloes's.
	body, _ := os.ReadFile("../../channels/forum/testdata/post_created_staff_answer.json")
	var answer map[string]map[string]any
	_ = json.Unmarshal(body, &answer)
	answer["post"]["id"], answer["post"]["reply_to_post_number"], answer["post"]["username"] = 90216, 4, "mia"
	body, _ = json.Marshal(answer)
	h := http.Header{}
	h.Set(forum.EventHeader, "post_created")
	h.Set(forum.SignatureHeader, forum.Sign(body, secret))
	if code, out := r.do("POST", "/v1/forum/discourse", body, h); code != http.StatusAccepted || out["staff_reply_on"] != otherID {
		t.Fatalf("answer to Pieter: %d %v, want it on %s", code, out, otherID)
	}
	if n := len(timelineEvents(r, id, "replied")); n != 1 {
		t.Errorf("%d replies on Marloes's complaint after an answer to Pieter, want 1", n)
	}
	testkit.WaitFor(t, "the other member's acknowledgement", func() bool { return len(api.Posts()) == 2 })
	if code, res := r.call("POST", "/v1/complaints/"+id+"/reply", map[string]string{"body": "Please send the photos here."}, ""); code != 200 {
		t.Fatalf("reply: %d %v", code, res)
	}
	testkit.WaitFor(t, "the reply posted and recorded", func() bool { return len(api.Posts()) == 3 && len(timelineEvents(r, id, "sent")) == 2 })
	p := api.Posts()[2]
	if p.TopicID != 4711 || p.ReplyToPostNumber != 3 || !strings.HasPrefix(p.Raw, "Please send the photos here.\n\n— ") {
		t.Errorf("reply posted as %+v, want it in topic 4711 answering Marloes's post 3, signed", p)
	}
}

// What must hold: a complaint opened before forum customers were keyed by
// Discourse user id (its customer key forum:<username>) is the same
// customer's when their next post arrives under the user id: the post
// continues it (threaded by topic, proven by the signed username and id),
// the complaint is keyed by the user id from then on, and the customer's
// history under the user id finds it.
func TestForumComplaintUnderTheOldUsernameKeyIsFoundByUserID(t *testing.T) {
	const secret = "discourse-secret-0123456789"
	api := forumtest.New(t, "k", "helpdesk")
	api.AddCategory(forumtest.Category{ID: 7, Slug: "support"})
	r := start(t, testredis.URL(t), func(c *configs.Config) {
		c.DiscourseURL, c.DiscourseWebhookSecret = api.URL, secret
		c.DiscourseCategories = configs.Secrets{"support"}
		c.DiscourseCategoryRefresh = configs.Duration(10 * 60e9)
	})
	// Marloes's first post, queued as forgetmenot queued it before: her
	// username is her customer id.
	old := enqueueDirectly(t, r, router.Message{
		Channel: router.ChannelForum, SourceID: "post:90100",
		Customer: router.Customer{ID: "marloes", Name: "Marloes van Dijk"}, Subject: "Order 104-2233 arrived broken",
		Body: "The jug inside is broken.", ThreadKeys: []string{forum.TopicKey(4711)},
		Metadata: map[string]string{forum.MetaTopicID: "4711", forum.MetaPostNumber: "1", forum.MetaPostID: "90100"},
	})
	id := r.routed(old, "")["complaint_id"].(string)
	if c, _ := r.complaint(id); c["customer_key"] != "forum:marloes" {
		t.Fatalf("the old complaint is keyed %v, want forum:marloes", c["customer_key"])
	}

	// Her next post in the topic, as Discourse sends it now (user id 233).
	body, err := os.ReadFile("../../channels/forum/testdata/post_created_reply.json")
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(forum.EventHeader, "post_created")
	h.Set(forum.SignatureHeader, forum.Sign(body, secret))
	code, out := r.do("POST", "/v1/forum/discourse", body, h)
	if code/100 != 2 {
		t.Fatalf("post_created: %d %v", code, out)
	}
	if got := r.routed(out["message_id"].(string), "")["complaint_id"]; got != id {
		t.Fatalf("her next post landed on %v, want her complaint %s from before the change of key", got, id)
	}
	c, _ := r.complaint(id)
	if c["customer_key"] != "forum:233" || c["messages"] != float64(2) {
		t.Errorf("complaint %v: want both posts, keyed by her user id", c)
	}
	if list := r.complaintsOf("forum:233"); len(list) != 1 || list[0]["id"] != id {
		t.Errorf("her complaints by user id: %v, want %s", list, id)
	}
	if list := r.complaintsOf("forum:marloes"); len(list) != 0 {
		t.Errorf("complaints still under her username: %v", list)
	}
}

// legacyForumComplaint queues a forum post as forgetmenot queued it before
// it keyed forum customers by user id (the username is the customer id),
// and waits until it is on a complaint.
func legacyForumComplaint(t *testing.T, r *running, username string, post int64) string {
	t.Helper()
	id := strconv.FormatInt(post, 10)
	msg := enqueueDirectly(t, r, router.Message{
		Channel: router.ChannelForum, SourceID: "post:" + id,
		Customer: router.Customer{ID: username, Name: username}, Subject: "Order arrived broken",
		Body: "The jug inside is broken.", ThreadKeys: []string{forum.TopicKey(post)},
		Metadata: map[string]string{forum.MetaTopicID: id, forum.MetaPostNumber: "1", forum.MetaPostID: id, forum.MetaUsername: username},
	})
	return r.routed(msg, "")["complaint_id"].(string)
}

// enqueueDirectly queues msg on the running daemon's inbound stream as a
// channel of an earlier version did, and returns its message id.
func enqueueDirectly(t *testing.T, r *running, msg router.Message) string {
	t.Helper()
	rdb, err := queue.Connect(r.cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	keys, err := queue.NewKeys(r.cfg.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := queue.NewStore(rdb, keys, 0).Enqueue(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// exportedComplaints lists the complaint ids of a customer's export.
func exportedComplaints(r *running, customer string) []string {
	r.t.Helper()
	code, out := r.call("GET", "/v1/customers/"+customer+"/export", nil, "")
	if code != 200 {
		r.t.Fatalf("export of %s: %d %v", customer, code, out)
	}
	var ids []string
	list, _ := out["complaints"].([]any)
	for _, c := range list {
		ids = append(ids, c.(map[string]any)["complaint"].(map[string]any)["id"].(string))
	}
	slices.Sort(ids)
	return ids
}

// What must hold: complaints recorded under forum:<username> before this
// version, of customers who never post again, are found by the customer's
// user id after the next start (history and export), because the start
// looks the usernames up in Discourse once; a username Discourse does not
// know is left as it is and logged; a later start does not look again.
func TestForumStartMovesCustomersStillKeyedByUsernameOnce(t *testing.T) {
	url, ns := testredis.URL(t), testredis.Namespace()
	api := forumtest.New(t, "k", "helpdesk")
	api.AddUser(forumtest.User{ID: 233, Username: "marloes", Created: time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)})
	// The complaints, written while the forum was keyed by username.
	old := start(t, url, func(c *configs.Config) { c.Namespace = ns })
	marloes := []string{legacyForumComplaint(t, old, "marloes", 4711), legacyForumComplaint(t, old, "marloes", 4712)}
	slices.Sort(marloes)
	ghost := legacyForumComplaint(t, old, "ghost", 4713)
	if err := old.stop(); err != nil {
		t.Fatal(err)
	}

	withForum := func(name string) func(*configs.Config) {
		return func(c *configs.Config) {
			c.Namespace, c.ConsumerName = ns, name
			c.DiscourseURL, c.DiscourseWebhookSecret = api.URL, "discourse-secret-0123456789"
			c.DiscourseAPIKey, c.DiscourseAPIUsername = "k", "helpdesk"
			c.DiscourseCategoryRefresh = configs.Duration(10 * 60e9)
		}
	}
	r := start(t, url, withForum("replica-a"))
	testkit.WaitFor(t, "Marloes's complaints under her user id", func() bool { return len(r.complaintsOf("forum:233")) == 2 })
	if got := exportedComplaints(r, "forum:233"); !slices.Equal(got, marloes) {
		t.Errorf("export of forum:233: %v, want %v", got, marloes)
	}
	if list := r.complaintsOf("forum:marloes"); len(list) != 0 {
		t.Errorf("complaints still under her username: %v", list)
	}
	testkit.WaitFor(t, "the migration's summary", func() bool { return strings.Contains(r.log.String(), "complaints=2") })
	if list := r.complaintsOf("forum:ghost"); len(list) != 1 || list[0]["id"] != ghost {
		t.Errorf("the unknown username's complaints: %v, want %s left where it was", list, ghost)
	}
	if logs := r.log.String(); strings.Count(logs, "does not know") != 1 || !strings.Contains(logs, "usernames=1") {
		t.Errorf("the username unknown to Discourse must be logged once with the count:\n%s", logs)
	}
	lookups := api.Requests("GET /u/")
	if lookups != 2 {
		t.Errorf("%d username lookups, want 2 (marloes, ghost)", lookups)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	// A new start finds the migration done: no scan, no lookups, even with
	// a username complaint that appeared since (the lazy path moves it).
	api.AddUser(forumtest.User{ID: 234, Username: "newbie", Created: time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)})
	late := start(t, url, func(c *configs.Config) { c.Namespace = ns })
	legacyForumComplaint(t, late, "newbie", 4714)
	if err := late.stop(); err != nil {
		t.Fatal(err)
	}
	again := start(t, url, withForum("replica-a"))
	testkit.WaitFor(t, "the start to find the migration done", func() bool { return strings.Contains(again.log.String(), "not looked for again") })
	if n := api.Requests("GET /u/"); n != lookups {
		t.Errorf("%d username lookups after the second start, want still %d", n, lookups)
	}
	if list := again.complaintsOf("forum:newbie"); len(list) != 1 {
		t.Errorf("the second start moved newbie's complaint: %v", list)
	}
}

// What must hold: of two replicas starting together, one looks the
// usernames up and moves them; the other waits and then finds it done.
func TestForumUsernameMoveRunsOnOneReplica(t *testing.T) {
	url, ns := testredis.URL(t), testredis.Namespace()
	api := forumtest.New(t, "k", "helpdesk")
	old := start(t, url, func(c *configs.Config) { c.Namespace = ns })
	const members = 6
	for i := range members {
		name := "member_" + strconv.Itoa(i)
		api.AddUser(forumtest.User{ID: int64(300 + i), Username: name, Created: time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)})
		legacyForumComplaint(t, old, name, int64(4800+i))
	}
	if err := old.stop(); err != nil {
		t.Fatal(err)
	}
	var replicas []*running
	for _, name := range []string{"replica-a", "replica-b"} {
		replicas = append(replicas, start(t, url, func(c *configs.Config) {
			c.Namespace, c.ConsumerName = ns, name
			c.DiscourseURL, c.DiscourseWebhookSecret = api.URL, "discourse-secret-0123456789"
			c.DiscourseAPIKey, c.DiscourseAPIUsername = "k", "helpdesk"
			c.DiscourseCategoryRefresh = configs.Duration(10 * 60e9)
		}))
	}
	testkit.WaitFor(t, "both replicas done with the migration", func() bool {
		for _, r := range replicas {
			if logs := r.log.String(); !strings.Contains(logs, "complaints="+strconv.Itoa(members)) && !strings.Contains(logs, "not looked for again") {
				return false
			}
		}
		return true
	})
	ran := 0
	for _, r := range replicas {
		if strings.Contains(r.log.String(), "complaints="+strconv.Itoa(members)) {
			ran++
		}
	}
	if ran != 1 {
		t.Errorf("%d replicas ran the migration, want 1", ran)
	}
	if n := api.Requests("GET /u/"); n != members {
		t.Errorf("%d username lookups, want %d (each once)", n, members)
	}
	for i := range members {
		if list := replicas[0].complaintsOf("forum:" + strconv.Itoa(300+i)); len(list) != 1 {
			t.Errorf("member %d by user id: %v", i, list)
		}
	}
}

// What must hold: a run cut short (its replica died holding the lease,
// one customer moved, the rest not, nothing recorded as done) is finished
// by the next replica once the lease runs out; what was moved stays moved.
func TestForumUsernameMoveCutShortIsResumed(t *testing.T) {
	url, ns := testredis.URL(t), testredis.Namespace()
	api := forumtest.New(t, "k", "helpdesk")
	old := start(t, url, func(c *configs.Config) { c.Namespace = ns })
	api.AddUser(forumtest.User{ID: 233, Username: "marloes", Created: time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)},
		forumtest.User{ID: 234, Username: "pieter", Created: time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)})
	marloes, pieter := legacyForumComplaint(t, old, "marloes", 4711), legacyForumComplaint(t, old, "pieter", 4712)
	if err := old.stop(); err != nil {
		t.Fatal(err)
	}
	rdb, err := queue.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	keys, _ := queue.NewKeys(ns)
	store := queue.NewStore(rdb, keys, 0)
	ctx := context.Background()
	// The dead replica's run: Marloes moved, then it died with the lease.
	if n, err := store.RekeyCustomer(ctx, router.ChannelForum, "marloes", "233"); err != nil || n != 1 {
		t.Fatalf("the first half of the cut-short run: %d %v", n, err)
	}
	if ok, err := store.State("forum").HoldLease(ctx, "lease:migration:forum-user-ids", "dead-replica", 3*time.Second); err != nil || !ok {
		t.Fatalf("the dead replica's lease: %v %v", ok, err)
	}
	r := start(t, url, func(c *configs.Config) {
		c.Namespace, c.ConsumerName = ns, "replica-b"
		c.DiscourseURL, c.DiscourseWebhookSecret = api.URL, "discourse-secret-0123456789"
		c.DiscourseAPIKey, c.DiscourseAPIUsername = "k", "helpdesk"
		c.DiscourseCategoryRefresh = configs.Duration(10 * 60e9)
	})
	testkit.WaitFor(t, "the migration finished by the next replica", func() bool {
		_, done, _ := store.MigrationDone(ctx, "forum-user-ids")
		return done
	})
	for key, id := range map[string]string{"forum:233": marloes, "forum:234": pieter} {
		if list := r.complaintsOf(key); len(list) != 1 || list[0]["id"] != id {
			t.Errorf("complaints of %s: %v, want %s", key, list, id)
		}
	}
	if n := api.Requests("GET /u/marloes"); n != 0 {
		t.Errorf("Marloes, moved before the crash, was looked up again %d times", n)
	}
}
