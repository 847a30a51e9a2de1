package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// janNeedles is everything that names Jan: his names, addresses, ids,
// texts, Message-IDs and source ids. None may survive his erasure.
var janNeedles = []string{
	"Jan Jansen", "J. Jansen", "jan@voorbeeld.nl", "jan.prive@thuis.example", "sess-jan-8c1f2a", "shop-cust-778812",
	"forum:4242", "janj_forum", "wasmachine", "nieuws over de monteur", "kwam beschadigd", "+31612345678",
	"jan-msg-1@mail.voorbeeld.nl", "order-99812", "monteur komt vrijdag", "jan-src-", "Belt elke dag",
}

// pietNeedles name the other customer, who must stay as he was.
var pietNeedles = []string{"Piet Pietersen", "piet@anders.example", "sess-piet-77aa", "Factuur klopt niet"}

// world is a namespace where Jan wrote by e-mail, chat, a web shop's
// webhook and the forum, staff answered and closed, and Piet wrote too; the
// channels' own records (Slack threads, e-mail rate limits, quarantine,
// forum authors, chat presence) are there as the channels write them.
type world struct {
	*env
	janEmail, janChat, janWebhook, janForum string // complaint ids
	pietOpen, pietClosed                    string
}

func newWorld(t *testing.T, closeJan bool) *world {
	t.Helper()
	return newWorldIn(t, newEnv(t), closeJan)
}

// newWorldIn is newWorld in a given env: one on a cluster, say.
func newWorldIn(t *testing.T, e *env, closeJan bool) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{env: e}
	r := w.router

	mEmail := w.enqueue(router.Message{Channel: router.ChannelEmail, SourceID: "<jan-msg-1@mail.voorbeeld.nl>",
		Customer: router.Customer{Name: "Jan Jansen", Email: "jan@voorbeeld.nl"}, Subject: "Lekkende wasmachine",
		Body: "Mijn wasmachine lekt sinds dinsdag.", ThreadKeys: []string{"email:<jan-msg-1@mail.voorbeeld.nl>"},
		Metadata: map[string]string{"from": "Jan Jansen <jan@voorbeeld.nl>", "reply_to": "jan.prive@thuis.example", "message_id": "<jan-msg-1@mail.voorbeeld.nl>"}})
	w.janEmail = w.complaintOf(mEmail).ID
	w.clock.Add(time.Hour)
	mChat := w.enqueue(router.Message{Channel: router.ChannelChat, SourceID: "sess-jan-8c1f2a:l1",
		Customer: router.Customer{ID: "sess-jan-8c1f2a", Name: "Jan Jansen", Email: "jan@voorbeeld.nl"},
		Body:     "Hallo, is er al nieuws over de monteur?", ThreadKeys: []string{"chat:sess-jan-8c1f2a"},
		Metadata: map[string]string{"chat_session": "sess-jan-8c1f2a"}})
	w.janChat = w.complaintOf(mChat).ID
	// A later visit in the same chat session, without the address: the
	// session proves it is Jan.
	w.complaintOf(w.enqueue(router.Message{Channel: router.ChannelChat, SourceID: "sess-jan-8c1f2a:l2",
		Customer: router.Customer{ID: "sess-jan-8c1f2a"}, Body: "Nog steeds geen nieuws over de monteur.",
		ThreadKeys: []string{"chat:sess-jan-8c1f2a"}, Metadata: map[string]string{"chat_session": "sess-jan-8c1f2a"}}))
	w.clock.Add(time.Hour)
	mHook := w.enqueue(router.Message{Channel: router.ChannelWebhook, SourceID: "jan-src-shop-1",
		Customer: router.Customer{ID: "shop-cust-778812", Name: "J. Jansen", Email: "jan@voorbeeld.nl"},
		Body:     "Bestelling kwam beschadigd aan.", ThreadKeys: []string{"webhook:order-99812"},
		Metadata: map[string]string{"order": "order-99812", "phone": "+31612345678"}})
	w.janWebhook = w.complaintOf(mHook).ID
	w.clock.Add(time.Hour)
	mForum := w.enqueue(router.Message{Channel: router.ChannelForum, SourceID: "post:9001",
		Customer: router.Customer{ID: "4242", Name: "janj_forum"}, Body: "Wasmachine lekt nog steeds, iemand een idee?",
		ThreadKeys: []string{"forum:topic:77"}, Metadata: map[string]string{"forum_username": "janj_forum", "forum_topic_id": "77"}})
	w.janForum = w.complaintOf(mForum).ID

	mPiet := w.enqueue(router.Message{Channel: router.ChannelEmail, SourceID: "<piet-1@anders.example>",
		Customer: router.Customer{Name: "Piet Pietersen", Email: "piet@anders.example"}, Subject: "Factuur",
		Body: "Factuur klopt niet.", ThreadKeys: []string{"email:<piet-1@anders.example>"},
		Metadata: map[string]string{"from": "Piet Pietersen <piet@anders.example>"}})
	w.pietOpen = w.complaintOf(mPiet).ID
	mPiet2 := w.enqueue(router.Message{Channel: router.ChannelChat, SourceID: "sess-piet-77aa:l1",
		Customer: router.Customer{ID: "sess-piet-77aa", Name: "Piet Pietersen"}, Body: "Waar blijft mijn pakket?",
		ThreadKeys: []string{"chat:sess-piet-77aa"}})
	w.pietClosed = w.complaintOf(mPiet2).ID
	w.settle()

	must := func(_ router.Complaint, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Staff know the forum user is Jan: they merge his forum complaint into
	// his e-mail one, which records the forum identity there.
	must(r.Merge(ctx, w.janForum, w.janEmail, "anna", "janj_forum is Jan Jansen (said so on the phone)"))
	c, _ := w.store.Complaint(ctx, w.janEmail)
	must(r.Acknowledge(ctx, w.janEmail, c.Owner))
	must(r.Reply(ctx, w.janEmail, c.Owner, "Beste Jan Jansen, de monteur komt vrijdag."))
	must(r.AddNote(ctx, w.janEmail, c.Owner, "Belt elke dag, jan@voorbeeld.nl", "note-1"))
	// The new owner's Slack thread opens with the reason as its headline.
	other := "bas"
	if c.Owner == "bas" {
		other = "anna"
	}
	must(r.Reassign(ctx, w.janEmail, c.Owner, other, "Jan Jansen wil een andere monteur"))
	w.settle()
	for _, id := range []string{w.pietClosed} {
		c, _ := w.store.Complaint(ctx, id)
		must(r.CloseWith(ctx, id, c.Owner, router.Closing{Resolution: "Pakket gevonden", Category: "delivery"}))
	}
	if closeJan {
		for _, id := range []string{w.janEmail, w.janChat, w.janWebhook} {
			c, _ := w.store.Complaint(ctx, id)
			if c.Status == router.StatusOpen {
				must(r.CloseWith(ctx, id, c.Owner, router.Closing{Resolution: "Monteur geweest", Category: "product", Prevention: "betere slangen"}))
			}
		}
	}
	w.settle()

	// The channels' own records, as they write them.
	slack, mail, forum, chat := w.store.State("slack"), w.store.State("email"), w.store.State("forum"), w.store.State("chat")
	for _, err := range []error{
		slack.Set(ctx, "handled:U1:1.2", "2026-03-02T09:00:00Z", time.Hour),
		mail.Append(ctx, "quarantine", `{"mailbox":"support","uid":7,"from":"Jan Jansen <jan@voorbeeld.nl>","subject":"Wasmachine","error":"bad charset"}`, 100),
		mail.Append(ctx, "quarantine", `{"mailbox":"support","uid":8,"from":"Piet Pietersen <piet@anders.example>","subject":"x","error":"bad charset"}`, 100),
		mail.Set(ctx, "uidvalidity:support", "1", 0),
		mail.Set(ctx, "uid:support:1", "8", 0),
		mail.Set(ctx, "quarantined:support:1:7", "1", 0),
		forum.Set(ctx, "author:77:1", "forum:4242", time.Hour),
		forum.Set(ctx, "author:78:1", "forum:5151", time.Hour),
		forum.Set(ctx, "waiting:79", `{"id":9002,"username":"janj_forum","raw":"wasmachine"}`, time.Hour),
		forum.Set(ctx, "topic:77", "yes", time.Hour),
		forum.Set(ctx, "sent:M-3", "post:1", time.Hour),
		chat.Set(ctx, "online:sess-jan-8c1f2a", "1", time.Minute),
		chat.Set(ctx, "online:sess-piet-77aa", "1", time.Minute),
		chat.Set(ctx, "rate:session:sess-jan-8c1f2a", "1", time.Minute),
		chat.Set(ctx, "rate:ip:10.0.0.1", "1", time.Minute),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := mail.HoldLease(ctx, "lease:mailbox:support", "replica-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	// The forum's one-time move of customers to user ids, finished.
	if err := w.store.MarkMigrationDone(ctx, "forum-user-ids", w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) service(t *testing.T, crashAfter func(string) bool) *Service {
	t.Helper()
	s, err := New(Config{Store: w.store, Closer: w.router, Clock: w.clock.Now, crashAfter: crashAfter})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// snapshot is one customer's complaints with their timelines.
func (w *world) snapshot(ids ...string) map[string]string {
	w.t.Helper()
	out := map[string]string{}
	for _, id := range ids {
		c, err := w.store.Complaint(context.Background(), id)
		if err != nil {
			w.t.Fatal(err)
		}
		tl, err := w.store.Timeline(context.Background(), id)
		if err != nil {
			w.t.Fatal(err)
		}
		b, _ := json.Marshal(struct {
			C  router.Complaint
			TL []router.Entry
		}{c, tl})
		out[id] = string(b)
	}
	return out
}

func (w *world) report() router.Report {
	w.t.Helper()
	rep, err := w.router.Report(context.Background(), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC))
	if err != nil {
		w.t.Fatal(err)
	}
	rep.GeneratedAt = time.Time{}
	return rep
}

// Every key the channels, the router and the queue wrote is of a kind the
// erasure map knows: a new kind of key fails here until the map says how an
// erasure covers it.
func TestEveryKeyIsInTheErasureMap(t *testing.T) {
	w := newWorld(t, false)
	s := w.service(t, nil)
	if _, err := s.Erase(context.Background(), EraseRequest{Customer: "piet@anders.example", Reason: "request", Actor: "anna", Force: true}); err != nil {
		t.Fatal(err)
	}
	w.settle()
	for k := range w.dump() {
		if _, ok := w.keys.KindOf(k); !ok {
			t.Errorf("key %s is of no kind in the erasure map (queue/privacy.go): say what it holds and how an erasure covers it", k)
		}
	}
}

// Export finds Jan across e-mail, chat, webhook and forum identities.
func TestExportFindsTheCustomerThroughEveryIdentity(t *testing.T) {
	w := newWorld(t, true)
	s := w.service(t, nil)
	for _, asked := range []string{"jan@voorbeeld.nl", "chat:sess-jan-8c1f2a", "webhook:shop-cust-778812", "forum:4242"} {
		ex, err := s.Export(context.Background(), asked)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range ex.Complaints {
			ids = append(ids, c.Complaint.ID)
		}
		slices.Sort(ids)
		want := []string{w.janEmail, w.janChat, w.janWebhook, w.janForum}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("export of %s: complaints %v, want %v", asked, ids, want)
		}
		for _, want := range [][2]any{
			{ex.ChatSessions, "sess-jan-8c1f2a"}, {ex.WebhookIDs, "shop-cust-778812"}, {ex.Addresses, "jan@voorbeeld.nl"},
			{ex.Addresses, "jan.prive@thuis.example"}, {ex.Names, "Jan Jansen"},
		} {
			if !slices.Contains(want[0].([]string), want[1].(string)) {
				t.Errorf("export of %s lacks %v", asked, want[1])
			}
		}
		if !slices.Contains(ex.ForumUsers, ForumUser{ID: "4242", Username: "janj_forum"}) {
			t.Errorf("export of %s: forum users %v", asked, ex.ForumUsers)
		}
		deliveries := 0
		for _, c := range ex.Complaints {
			deliveries += len(c.Deliveries)
			if len(c.Timeline) == 0 {
				t.Errorf("%s exported without its timeline", c.Complaint.ID)
			}
		}
		if deliveries == 0 {
			t.Errorf("export of %s shows no delivery of the reply", asked)
		}
		raw, _ := json.Marshal(ex)
		for _, p := range pietNeedles {
			if strings.Contains(string(raw), p) {
				t.Errorf("export of Jan holds Piet's %q", p)
			}
		}
		var text strings.Builder
		if err := ex.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Mijn wasmachine lekt", "monteur komt vrijdag", "sess-jan-8c1f2a", w.janEmail} {
			if !strings.Contains(text.String(), want) {
				t.Errorf("text export of %s lacks %q", asked, want)
			}
		}
	}
}

// After Jan's erasure no key of the namespace holds anything of his; Piet's
// complaints, the report and the invariants are as before; his complaints
// stay under their ids with owners, categories and dates; the owners were
// told with the pseudonym.
func TestEraseLeavesNoTraceAndChangesNothingElse(t *testing.T) {
	eraseLeavesNoTraceAndChangesNothingElse(t, newWorld(t, true))
}

// On Redis Cluster (FORGETMENOT_REDIS_URL=redis+cluster://…) the namespace
// sits on one master of three, and an erasure is as thorough there: a scan
// sent through the cluster client reaches one arbitrary node, so the
// erasure's scans of channel state and once-keys must go to the namespace's
// master, and the dump looks on every master for what survived.
func TestEraseOnRedisClusterLeavesNoTrace(t *testing.T) {
	addrs := testredis.StartCluster(t)
	rdb, keys := testredis.ClusterClient(t, addrs)
	eraseLeavesNoTraceAndChangesNothingElse(t, newWorldIn(t, newEnvOn(t, rdb, keys), true))
}

func eraseLeavesNoTraceAndChangesNothingElse(t *testing.T, w *world) {
	t.Helper()
	ctx := context.Background()
	before := w.dump()
	if got := traces(before, janNeedles); len(got) < len(janNeedles) {
		t.Fatalf("the fixture should hold every needle; found only %d: %v", len(got), got)
	}
	piet := w.snapshot(w.pietOpen, w.pietClosed)
	rep := w.report()
	old := map[string]router.Complaint{}
	for _, id := range []string{w.janEmail, w.janChat, w.janWebhook, w.janForum} {
		old[id], _ = w.store.Complaint(ctx, id)
	}

	s := w.service(t, nil)
	res, err := s.Erase(ctx, EraseRequest{Customer: "jan@voorbeeld.nl", Reason: "Verzoek van Jan Jansen per brief van 1 maart", Actor: "anna"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Complaints) != 4 || res.Pseudonym == "" || len(res.NotErased) == 0 {
		t.Errorf("result %+v", res)
	}
	w.settle()
	after := w.dump()
	if got := traces(after, janNeedles); len(got) > 0 {
		t.Errorf("after the erasure Jan is still in:\n%s", strings.Join(got, "\n"))
	}
	for _, k := range []string{"state:email:ack:piet@anders.example", "state:chat:online:sess-piet-77aa", "state:forum:author:78:1", "dedup:email:<piet-1@anders.example>"} {
		if _, ok := after[w.keys.Pattern()[:len(w.keys.Pattern())-1]+k]; !ok {
			t.Errorf("Piet's %s is gone", k)
		}
	}
	if got := traces(after, pietNeedles); len(got) != len(traces(before, pietNeedles)) {
		t.Errorf("Piet's traces changed: before %v, after %v", traces(before, pietNeedles), got)
	}
	if !reflect.DeepEqual(w.snapshot(w.pietOpen, w.pietClosed), piet) {
		t.Error("Piet's complaints changed")
	}
	if got := w.report(); !reflect.DeepEqual(got, rep) {
		t.Errorf("the report changed:\nbefore %+v\nafter  %+v", rep, got)
	}
	w.checkInvariants()
	for id, o := range old {
		c, err := w.store.Complaint(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.Owner != o.Owner || c.Category != o.Category || !c.CreatedAt.Equal(o.CreatedAt) || !c.ClosedAt.Equal(o.ClosedAt) ||
			c.Status != o.Status || c.Channel != o.Channel || c.Messages != o.Messages || c.Customer.Name != res.Pseudonym {
			t.Errorf("%s after erasure: %+v\nbefore: %+v", id, c, o)
		}
	}
	erasedNotes := 0
	w.mu.Lock()
	for _, n := range w.notes {
		if n.Kind == NotifyErased {
			erasedNotes++
			if n.Complaint.Customer.Name != res.Pseudonym {
				t.Errorf("owner told about %s with customer %q", n.Complaint.ID, n.Complaint.Customer.Name)
			}
		}
	}
	w.mu.Unlock()
	if erasedNotes < 4 {
		t.Errorf("%d owners told of the erasure, want one per complaint owner (>= 4)", erasedNotes)
	}
	// Every Slack message about Jan's complaints, top messages and the
	// replies in their threads, was updated last without anything of Jan;
	// the top messages show the pseudonym.
	final, threadOf := map[string]string{}, map[string]string{}
	for _, p := range w.workspace.Posts("") {
		key := p.Channel + "/" + p.TS
		final[key] = p.Text + p.Blocks
		if p.Method == "chat.postMessage" {
			threadOf[key] = p.Channel + "/" + p.ThreadTS
		}
	}
	janTops := map[string]bool{}
	for key, text := range final {
		if threadOf[key] == key[:strings.Index(key, "/")+1] && (strings.Contains(text, w.janEmail) || strings.Contains(text, w.janChat) || strings.Contains(text, w.janWebhook)) {
			janTops[key] = true
			if !strings.Contains(text, res.Pseudonym) {
				t.Errorf("Slack top message %s does not show the pseudonym:\n%s", key, text)
			}
		}
	}
	if len(janTops) < 3 {
		t.Errorf("only %d Slack top messages about Jan's complaints", len(janTops))
	}
	replies := 0
	for key, text := range final {
		if !janTops[key] && !janTops[threadOf[key]] {
			continue
		}
		if !janTops[key] {
			replies++
		}
		if got := traces(map[string]string{key: text}, janNeedles); len(got) > 0 {
			t.Errorf("Slack message %s after the erasure: %v\n%s", key, got, text)
		}
	}
	if replies == 0 {
		t.Error("no thread replies about Jan's complaints were posted, so their redaction is untested")
	}
	log, err := w.store.PrivacyLog(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0]["complaints"] != "4" || log[0]["actor"] != "anna" || strings.Contains(log[0]["reason"], "Jansen") {
		t.Errorf("privacy log %v", log)
	}

	// Asking again finds nothing to erase, and audits nothing more.
	again, err := s.Erase(ctx, EraseRequest{Customer: "jan@voorbeeld.nl", Reason: "again", Actor: "anna"})
	if err != nil || len(again.Complaints) != 0 {
		t.Errorf("second erasure: %+v, %v", again, err)
	}
	if log, _ := w.store.PrivacyLog(ctx, 10); len(log) != 1 {
		t.Errorf("a second erasure audited again: %v", log)
	}
	ex, err := s.Export(ctx, "jan@voorbeeld.nl")
	if err != nil || len(ex.Complaints) != 0 {
		t.Errorf("export after erasure: %d complaints, %v", len(ex.Complaints), err)
	}
	// The pseudonym still lists the complaints, without anything of Jan.
	ex, err = s.Export(ctx, ErasedKeyPrefix+res.Pseudonym)
	if err != nil || len(ex.Complaints) != 4 {
		t.Errorf("export of the pseudonym: %d complaints, %v", len(ex.Complaints), err)
	}
}

// Open complaints are not erased from under their owner without force;
// with force they are closed "erased on request" first, quietly.
func TestEraseRefusesOpenComplaintsWithoutForce(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	s := w.service(t, nil)
	_, err := s.Erase(ctx, EraseRequest{Customer: "jan@voorbeeld.nl", Reason: "request", Actor: "anna"})
	if !errors.Is(err, ErrOpen) || !errors.Is(err, router.ErrInvalidState) {
		t.Fatalf("erasing open complaints without force: %v", err)
	}
	if got := traces(w.dump(), []string{"Jan Jansen"}); len(got) == 0 {
		t.Fatal("a refused erasure erased something")
	}
	if all, _ := w.store.Erasures(ctx); len(all) != 0 {
		t.Errorf("a refused erasure left a job: %v", all)
	}
	w.mu.Lock()
	sentBefore := w.sent
	w.mu.Unlock()
	// Asked by the data protection officer, who is no owner on the roster:
	// forced as without force, the erasure closes in their name.
	res, err := s.Erase(ctx, EraseRequest{Customer: "jan@voorbeeld.nl", Reason: "request", Actor: "dpo", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Closed) == 0 {
		t.Errorf("nothing closed: %+v", res)
	}
	for _, id := range res.Closed {
		c, _ := w.store.Complaint(ctx, id)
		if c.Status != router.StatusClosed || c.Resolution != ErasedResolution {
			t.Errorf("%s: %s %q", id, c.Status, c.Resolution)
		}
	}
	w.settle()
	if got := traces(w.dump(), janNeedles); len(got) > 0 {
		t.Errorf("after a forced erasure Jan is still in:\n%s", strings.Join(got, "\n"))
	}
	w.checkInvariants()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent != sentBefore {
		t.Errorf("%d messages went to customers during the erasure; none should (no satisfaction question on an erasure's close)", w.sent-sentBefore)
	}
}

// An erasure that crashes after any step is finished by the next attempt
// (or the background resume) with the same result as one that never
// crashed.
func TestEraseResumesAfterACrashAtEveryStep(t *testing.T) {
	for _, step := range []string{stepClose, "complaint", stepErase, stepStreams, stepState} {
		t.Run(step, func(t *testing.T) {
			w := newWorld(t, false)
			ctx := context.Background()
			crashed := w.service(t, func(s string) bool { return s == step })
			_, err := crashed.Erase(ctx, EraseRequest{Customer: "chat:sess-jan-8c1f2a", Reason: "request", Actor: "anna", Force: true})
			if !errors.Is(err, errCrash) {
				t.Fatalf("expected the crash after %s, got %v", step, err)
			}
			if all, _ := w.store.Erasures(ctx); len(all) != 1 {
				t.Fatalf("the interrupted erasure is not recorded: %v", all)
			}
			// A new process resumes it in the background.
			n, err := w.service(t, nil).Resume(ctx)
			if err != nil || n != 1 {
				t.Fatalf("resume: %d, %v", n, err)
			}
			w.settle()
			if got := traces(w.dump(), janNeedles); len(got) > 0 {
				t.Errorf("after the resumed erasure Jan is still in:\n%s", strings.Join(got, "\n"))
			}
			if all, _ := w.store.Erasures(ctx); len(all) != 0 {
				t.Errorf("erasure still in progress: %v", all)
			}
			log, _ := w.store.PrivacyLog(ctx, 10)
			if len(log) != 1 || log[0]["complaints"] != "4" {
				t.Errorf("privacy log %v", log)
			}
			for _, id := range []string{w.janEmail, w.janChat, w.janWebhook, w.janForum} {
				tl, _ := w.store.Timeline(ctx, id)
				n := 0
				for _, e := range tl {
					if e.Event != nil && e.Event.Type == EventErased {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%s has %d erased events", id, n)
				}
			}
			w.checkInvariants()
		})
	}
}

// Messages still waiting in the inbound stream and work in the outbox and
// dead letters are removed; the other customers' stay.
func TestEraseRemovesQueuedWorkOfTheCustomerOnly(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	// Queue work directly, as if the consumers were behind.
	hold := func(stream string, data any) {
		b, _ := json.Marshal(data)
		if err := w.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"stream", w.keys.Inbound(), "data", string(b)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	hold(w.keys.DeadLetters(), router.Message{ID: "M-x", Channel: router.ChannelEmail, Customer: router.Customer{Email: "jan@voorbeeld.nl"}, Body: "wasmachine"})
	hold(w.keys.DeadLetters(), router.Message{ID: "M-y", Channel: router.ChannelEmail, Customer: router.Customer{Email: "piet@anders.example"}, Body: "Factuur klopt niet"})
	s := w.service(t, nil)
	ex, err := s.Export(ctx, "jan@voorbeeld.nl")
	if err != nil || len(ex.DeadLetters) != 1 || !strings.Contains(ex.DeadLetters[0].Data, "M-x") {
		t.Errorf("export of the dead letters: %+v, %v", ex.DeadLetters, err)
	}
	res, err := s.Erase(ctx, EraseRequest{Customer: "jan@voorbeeld.nl", Reason: "request", Actor: "anna"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries < 1 {
		t.Errorf("no queued work removed: %+v", res)
	}
	dl, err := w.store.DeadLetters(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || !strings.Contains(dl[0].Data, "piet@anders.example") {
		t.Errorf("dead letters after erasure: %+v", dl)
	}
}

// The README's Privacy section names every key kind of the erasure map, so
// the documentation of what is stored where follows the code.
func TestReadmeNamesEveryKeyKind(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	start := strings.Index(readme, "## Privacy")
	if start < 0 {
		t.Fatal("README has no Privacy section")
	}
	section := readme[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	for _, k := range queue.ErasureMap() {
		if !strings.Contains(section, "`"+k.Name+"`") {
			t.Errorf("README's Privacy section does not name the key kind `%s` (%s)", k.Name, k.Erasure)
		}
	}
}

// Bad requests are refused with the field named, and leave nothing behind.
func TestEraseRefusesBadRequests(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	s := w.service(t, nil)
	for name, req := range map[string]EraseRequest{
		"no reason":     {Customer: "jan@voorbeeld.nl", Actor: "anna"},
		"no actor":      {Customer: "jan@voorbeeld.nl", Reason: "request"},
		"no customer":   {Reason: "request", Actor: "anna"},
		"not a key":     {Customer: "jan", Reason: "request", Actor: "anna"},
		"unknown chan":  {Customer: "sms:+316", Reason: "request", Actor: "anna"},
		"control chars": {Customer: "jan@voorbeeld.nl", Reason: "request", Actor: "an\x1bna"},
	} {
		_, err := s.Erase(ctx, req)
		var v *router.ValidationError
		if !errors.As(err, &v) {
			t.Errorf("%s: %v, want a validation error", name, err)
		}
	}
	if all, _ := w.store.Erasures(ctx); len(all) != 0 {
		t.Errorf("refused erasures left jobs: %v", all)
	}
	if got := traces(w.dump(), []string{"Jan Jansen"}); len(got) == 0 {
		t.Error("a refused erasure erased something")
	}
}

// The same erasure asked twice at once (two replicas, or a request and the
// background resume) erases each complaint once, under one pseudonym, and
// is audited once.
func TestConcurrentErasuresOfOneCustomerAreOne(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	results := make(chan EraseResult, 3)
	errs := make(chan error, 3)
	for range 3 {
		s := w.service(t, nil)
		go func() {
			res, err := s.Erase(ctx, EraseRequest{Customer: "jan@voorbeeld.nl", Reason: "request", Actor: "anna"})
			results <- res
			errs <- err
		}()
	}
	pseudonyms := map[string]bool{}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if res := <-results; res.Pseudonym != "" {
			pseudonyms[res.Pseudonym] = true
		}
	}
	if len(pseudonyms) != 1 {
		t.Errorf("pseudonyms %v, want one", pseudonyms)
	}
	for _, id := range []string{w.janEmail, w.janChat, w.janWebhook, w.janForum} {
		c, _ := w.store.Complaint(ctx, id)
		if !pseudonyms[c.Customer.Name] {
			t.Errorf("%s belongs to %q", id, c.Customer.Name)
		}
	}
	if log, _ := w.store.PrivacyLog(ctx, 10); len(log) != 1 {
		t.Errorf("audited %d times: %v", len(log), log)
	}
	w.settle()
	if got := traces(w.dump(), janNeedles); len(got) > 0 {
		t.Errorf("Jan is still in:\n%s", strings.Join(got, "\n"))
	}
}

// Another customer who shares Jan's name keeps everything: a name only
// mentions someone, it does not identify them.
func TestANamesakeKeepsTheirData(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	other := w.complaintOf(w.enqueue(router.Message{Channel: router.ChannelEmail, SourceID: "<other-jan@elders.example>",
		Customer: router.Customer{Name: "Jan Jansen", Email: "jan.jansen@elders.example"}, Body: "Ik ben een andere Jan.",
		ThreadKeys: []string{"email:<other-jan@elders.example>"}})).ID
	w.settle()
	if err := w.store.State("email").Append(ctx, "quarantine", `{"uid":9,"from":"Jan Jansen <jan.jansen@elders.example>","error":"bad charset"}`, 100); err != nil {
		t.Fatal(err)
	}
	before := w.snapshot(other)
	if _, err := w.service(t, nil).Erase(ctx, EraseRequest{Customer: "jan@voorbeeld.nl", Reason: "request", Actor: "anna"}); err != nil {
		t.Fatal(err)
	}
	w.settle()
	if !reflect.DeepEqual(w.snapshot(other), before) {
		t.Errorf("the namesake's complaint %s changed", other)
	}
	q, err := w.store.State("email").List(ctx, "quarantine", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 2 || !strings.Contains(strings.Join(q, ""), "elders.example") {
		t.Errorf("quarantine after the erasure: %v (want the namesake's and Piet's records)", q)
	}
}

// The readable export escapes what could drive a terminal or forge a line.
func TestTextExportEscapesControlCharacters(t *testing.T) {
	ex := Export{Customer: "email:x@example.com", Complaints: []ExportedComplaint{{
		Complaint: router.Complaint{ID: "C-1", Subject: "hi\x1b[2J"},
		Timeline: []router.Entry{{Message: &router.Message{Channel: router.ChannelEmail, Customer: router.Customer{Name: "Eve\r\nC-2 forged"},
			Body: "line one\nline two\x1b]0;title\x07"}}},
	}}}
	var b strings.Builder
	if err := ex.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07\r") || strings.Contains(out, "\nC-2 forged") || !strings.Contains(out, `\u001b`) || !strings.Contains(out, "    line two") {
		t.Errorf("text export:\n%q", out)
	}
}

// A message from the customer that arrives while the erasure runs opens a
// complaint the erasure did not know at its start: a further pass takes it.
func TestEraseTakesComplaintsThatArriveWhileItRuns(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	var late string
	s := w.service(t, func(step string) bool {
		if step == stepErase && late == "" {
			late = w.complaintOf(w.enqueue(router.Message{Channel: router.ChannelWebhook, SourceID: "jan-src-late",
				Customer: router.Customer{Name: "Jan Jansen", Email: "jan@voorbeeld.nl"}, Body: "Nog iets: de wasmachine lekt weer.",
				ThreadKeys: []string{"webhook:order-late"}})).ID
			// Its acknowledgement goes out before the erasure goes on (one
			// still in flight is recorded without the address, see
			// TestWorkInFlightDuringAnErasureNamesNoOneAgain).
			w.settle()
		}
		return false
	})
	res, err := s.Erase(ctx, EraseRequest{Customer: "jan@voorbeeld.nl", Reason: "request", Actor: "anna", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if late == "" || !slices.Contains(res.Complaints, late) {
		t.Errorf("the complaint that arrived during the erasure (%q) is not among %v", late, res.Complaints)
	}
	w.settle()
	if got := traces(w.dump(), janNeedles); len(got) > 0 {
		t.Errorf("Jan is still in:\n%s", strings.Join(got, "\n"))
	}
	w.checkInvariants()
}

// A reply that was being delivered while its complaint was erased is
// recorded on the erased complaint without the address it went to, and
// does not thread the customer's answer back.
func TestWorkInFlightDuringAnErasureNamesNoOneAgain(t *testing.T) {
	w := newWorld(t, true)
	ctx := context.Background()
	c, _ := w.store.Complaint(ctx, w.janEmail)
	m := router.CustomerMessage{ID: "reply-in-flight", Kind: router.ToCustomerReply, Complaint: c, Body: "Beste Jan Jansen, nog even dit."}
	if _, err := w.service(t, nil).Erase(ctx, EraseRequest{Customer: "jan@voorbeeld.nl", Reason: "request", Actor: "anna"}); err != nil {
		t.Fatal(err)
	}
	if err := w.router.RecordSent(ctx, m, router.Sent{Via: "email", Ref: "<late@forgetmenot.example>", Address: "jan@voorbeeld.nl",
		ThreadKeys: []string{"email:<late@forgetmenot.example>"}}); err != nil {
		t.Fatal(err)
	}
	m.ID = "reply-in-flight-2"
	if err := w.router.RecordUndeliverable(ctx, m, errors.New("550 jan@voorbeeld.nl: no such user")); err != nil {
		t.Fatal(err)
	}
	w.settle()
	if got := traces(w.dump(), janNeedles); len(got) > 0 {
		t.Errorf("work in flight wrote Jan back:\n%s", strings.Join(got, "\n"))
	}
	if got, _ := w.store.ThreadComplaints(ctx, []string{"email:<late@forgetmenot.example>"}); len(got) != 0 {
		t.Errorf("an answer to the late reply would thread onto the erased complaint: %v", got)
	}
}

// The erased form keeps the facts reports use and nothing that names the
// customer, also in fields that quote an address (why they cannot be
// written to).
func TestPseudonymiseKeepsFactsAndDropsTheCustomer(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	c := router.Complaint{ID: "C-1", Status: router.StatusClosed, Owner: "anna", Team: "support", Channel: router.ChannelEmail,
		Subject: "Lekkage", Customer: router.Customer{Name: "Jan Jansen", Email: "jan@voorbeeld.nl"}, CustomerKey: "email:jan@voorbeeld.nl",
		Unreachable: `the sender address "jan@voorbeeld.nl" cannot receive mail`, Category: "product", CreatedAt: at, ClosedAt: at.Add(time.Hour),
		Breaches: []string{"response"}, Promises: 1, PromisesKept: 1, CSAT: 4, Version: 7,
		Resolution: "Called Jan, Mr Jansen gets a refund", Prevention: "Ask jansen for photos first"}
	tl := []router.Entry{{At: at, Message: &router.Message{ID: "M-1", Channel: router.ChannelEmail, SourceID: "<x@voorbeeld.nl>",
		Customer: c.Customer, Subject: "Lekkage", Body: "Mijn wasmachine lekt.", Unreachable: c.Unreachable,
		Metadata: map[string]string{"from": "Jan Jansen <jan@voorbeeld.nl>"}, ThreadKeys: []string{"email:<x@voorbeeld.nl>"}}}}
	p := queue.NewPersonalData([]string{"jan@voorbeeld.nl"}, []string{"Jan Jansen"}, nil)
	ps := pseudonymise(c, tl, p, erasure{pseudonym: "erased-TEST", actor: "anna", reason: "r", id: "E-1"}, at.Add(48*time.Hour))
	raw, _ := json.Marshal([]any{ps.After, ps.Timeline, ps.Notifications, ps.Audit})
	for _, n := range []string{"Jan Jansen", "jan@voorbeeld.nl", "wasmachine", "Lekkage", "x@voorbeeld.nl", "Jan,", "Jansen", "jansen"} {
		if strings.Contains(string(raw), n) {
			t.Errorf("the erased form holds %q:\n%s", n, raw)
		}
	}
	// A particle of a surname is an everyday word too: not removed alone.
	q := queue.NewPersonalData(nil, []string{"Piet van der Berg"}, nil).WithNameParts()
	if got := q.Redact("Piet belde over de ketel van zijn buurman; Berg zei het ook.", "[erased]"); got != "[erased] belde over de ketel van zijn buurman; [erased] zei het ook." {
		t.Errorf("redacted %q", got)
	}
	// A first or last name alone names the customer in their own texts too;
	// what else was written stays.
	if a := ps.After; !strings.Contains(a.Resolution, "gets a refund") || !strings.Contains(a.Prevention, "for photos first") {
		t.Errorf("resolution %q, prevention %q: the rest of the staff's words must stay", a.Resolution, a.Prevention)
	}
	a := ps.After
	if a.ID != c.ID || a.Owner != c.Owner || a.Team != c.Team || a.Category != c.Category || !a.CreatedAt.Equal(c.CreatedAt) || !a.ClosedAt.Equal(c.ClosedAt) ||
		a.CSAT != 4 || a.PromisesKept != 1 || len(a.Breaches) != 1 || a.Version != 8 || a.CustomerKey != "erased:erased-TEST" {
		t.Errorf("facts not kept: %+v", a)
	}
	if len(ps.Timeline) != 2 || ps.Timeline[0].Message.ID != "M-1" || ps.Timeline[1].Event.Type != router.EventErased {
		t.Errorf("timeline %+v", ps.Timeline)
	}
}
