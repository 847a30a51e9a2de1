package forum_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/forum"
	"github.com/forgetmenot/forgetmenot/channels/forum/forumtest"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/internal/texts"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

func forumTemplates(t *testing.T) *texts.Set {
	t.Helper()
	set, err := texts.Load(configs.ForumTemplates(), forum.TextOptions)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// newDiscourse is the API double with topic 4711 (Marloes's) in it.
func newDiscourse(t *testing.T) *forumtest.Discourse {
	d := forumtest.New(t, "key-123", "helpdesk")
	d.AddCategory(forumtest.Category{ID: 7, Slug: "support"})
	d.AddTopic(4711, "Order 104-2233 arrived broken", 7, nil, forum.Post{ID: 90211, PostNumber: 1, UserID: 233, Username: "marloes", Raw: "The jug inside is broken."})
	return d
}

func newSender(t *testing.T, d *forumtest.Discourse, key string, ack bool, zone func(router.Complaint) *time.Location) *forum.Sender {
	t.Helper()
	rdb, keys := testredis.Client(t)
	s, err := forum.NewSender(forum.SenderConfig{API: forum.NewAPI(d.URL+"/", key, "helpdesk", nil), Acknowledge: ack,
		Templates: forumTemplates(t), Zone: zone, State: queue.NewStore(rdb, keys, 0).State("forum")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func reply(id string) router.CustomerMessage {
	in := forum.Message(forum.Post{ID: 90214, TopicID: 4711, PostNumber: 3, UserID: 233, Username: "marloes", Raw: "Photos?"}, time.Now())
	return router.CustomerMessage{
		ID: id, Kind: router.ToCustomerReply, OwnerName: "Anna de Vries", AuthorName: "Bas for Anna de Vries",
		Complaint: router.Complaint{ID: "C-1001", Channel: router.ChannelForum, Customer: in.Customer, Language: "en"},
		Body:      "Yes please, send them to us.", InReplyTo: &in, References: in.ThreadKeys,
	}
}

func TestReplyIsPostedInTheTopicSignedAndRetriedOnRateLimit(t *testing.T) {
	d := newDiscourse(t)
	d.Script(http.StatusTooManyRequests, http.StatusBadGateway)
	s := newSender(t, d, "key-123", true, nil)
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
	if err != nil || !strings.HasPrefix(sent.Ref, "post:") || sent.Via != "forum" {
		t.Fatalf("third attempt: %+v %v", sent, err)
	}
	// A redelivery after success (the record of it was lost) posts nothing new.
	if again, err := s.Send(ctx, m); err != nil || again.Ref != sent.Ref {
		t.Fatalf("redelivery: %+v %v", again, err)
	}
	posts := d.Posts()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want exactly 1", len(posts))
	}
	if p := posts[0]; p.TopicID != 4711 || p.ReplyToPostNumber != 3 {
		t.Errorf("posted %+v, want topic 4711 in reply to post 3", p)
	}
	if raw := posts[0].Raw; !strings.HasPrefix(raw, "Yes please, send them to us.") || !strings.HasSuffix(raw, "— Bas for Anna de Vries") {
		t.Errorf("raw %q must carry the text signed by its author", raw)
	}
}

func TestAcknowledgementNamesTheOwnerAndCanBeTurnedOff(t *testing.T) {
	d := newDiscourse(t)
	ack := reply("C-1001:v1:acknowledgement")
	ack.Kind, ack.Body = router.ToCustomerAcknowledgement, ""
	if _, err := newSender(t, d, "key-123", true, nil).Send(context.Background(), ack); err != nil {
		t.Fatal(err)
	}
	if raw := d.Posts()[0].Raw; !strings.Contains(raw, "Anna de Vries") || !strings.Contains(raw, "C-1001") || !strings.HasPrefix(raw, "@marloes ") {
		t.Errorf("acknowledgement %q must address the customer by username and name the owner and reference", raw)
	}
	sent, err := newSender(t, d, "key-123", false, nil).Send(context.Background(), ack)
	if err != nil || sent.Skipped == "" || len(d.Posts()) != 1 {
		t.Fatalf("with acknowledgements off: %+v %v, %d posts; want a recorded skip and no post", sent, err, len(d.Posts()))
	}
}

func TestPostsAreWordedInTheComplaintsLanguageWithTimesInTheBusinessZone(t *testing.T) {
	amsterdam, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	d := newDiscourse(t)
	s := newSender(t, d, "key-123", true, func(router.Complaint) *time.Location { return amsterdam })
	by := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC) // 15:00 in Amsterdam
	for _, tc := range []struct {
		lang, kind string
		want       []string
	}{
		{"nl", "acknowledgement", []string{"@marloes Bedankt voor uw melding", "**Anna de Vries**", "referentie C-1001"}},
		{"de", "acknowledgement", []string{"Danke für Ihre Meldung", "Referenz C-1001"}},
		{"fr", "acknowledgement", []string{"Merci pour votre signalement", "référence C-1001"}},
		{"nl", "promise", []string{"We zoeken het uit.", "maandag 30 november om 15:00 (CET)", "— Bas for Anna de Vries"}},
		{"fr", "promise", []string{"lundi 30 novembre à 15:00 (CET)"}},
		{"en", "promise", []string{"Monday 30 November at 15:00 (CET)"}},
		{"", "promise", []string{"Monday 30 November at 15:00 (CET)"}}, // language unknown: English
	} {
		m := reply("C-1001:v" + tc.lang + tc.kind + ":x")
		m.Kind, m.Complaint.Language, m.Complaint.PromisedBy = router.CustomerMessageKind(tc.kind), tc.lang, by
		m.Body = "We zoeken het uit."
		if tc.kind == "acknowledgement" {
			m.Body = ""
		}
		if _, err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("%s %s: %v", tc.lang, tc.kind, err)
		}
		posts := d.Posts()
		raw := posts[len(posts)-1].Raw
		for _, w := range tc.want {
			if !strings.Contains(raw, w) {
				t.Errorf("%s %s %q: want %q (the complaint's language; promised time in the business calendar's zone, not UTC)", tc.lang, tc.kind, raw, w)
			}
		}
	}
}

func TestRefusalsThatNoRetryFixesArePermanent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    string
		script []int
		body   string
		want   string
	}{
		{"wrong API key (403)", "wrong", nil, "", "API username or key is invalid"},
		{"topic gone (404)", "key-123", []int{http.StatusNotFound}, "", "404"},
		{"too short for Discourse (422)", "key-123", nil, "Ok", "Body is too short (minimum is 20 characters)"},
		{"too long for Discourse (422)", "key-123", nil, strings.Repeat("lang ", 6500), "Body is too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDiscourse(t)
			d.Script(tc.script...)
			m := reply("C-1001:v4:reply")
			m.AuthorName = "Al"
			if tc.body != "" {
				m.Body = tc.body
			}
			_, err := newSender(t, d, tc.key, true, nil).Send(context.Background(), m)
			if !router.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want permanent mentioning %q", err, tc.want)
			}
		})
	}
	t.Run("no topic to answer in", func(t *testing.T) {
		m := reply("C-1002:v2:reply")
		m.InReplyTo, m.References = nil, []string{"email:<x@y>"}
		_, err := newSender(t, newDiscourse(t), "key-123", true, nil).Send(context.Background(), m)
		if !router.IsPermanent(err) {
			t.Fatalf("err %v, want permanent", err)
		}
	})
}
