// Package forum is the Discourse channel: topics and posts arrive through a
// signed webhook and become inbound messages; what staff say to the customer
// goes back as a post in the topic through the Discourse API.
//
// Threading is by topic: every post of a topic carries the thread key
// "forum:topic:<id>", so it lands on the complaint of that topic. Deduplication
// is by post: Discourse gives every retry a new event id, and the first post
// of a topic is announced twice (topic_created, post_created), so the post id
// is the only stable key. Discourse signs its payloads without a timestamp,
// so a replayed request is caught by the same deduplication and nothing else.
//
// Who wrote a post decides what it is: the customer is the poster's Discourse
// user id (customer key forum:<user_id>; Discourse never sends e-mail
// addresses), a staff member's post in a complaint topic is recorded as their
// reply, and the support account's own posts are what forgetmenot sent.
package forum

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/httpx"
	"github.com/forgetmenot/forgetmenot/router"
)

// Discourse's webhook headers.
const (
	EventHeader     = "X-Discourse-Event"
	SignatureHeader = "X-Discourse-Event-Signature"
)

// Message metadata the forum channel sets; the sender reads it back to answer
// in the right place.
const (
	MetaTopicID    = "forum_topic_id"
	MetaPostNumber = "forum_post_number"
	MetaPostID     = "forum_post_id"
	MetaCategory   = "forum_category"
	// MetaUsername is the poster's username, for the @mention of answers.
	MetaUsername = "forum_username"
)

// Enqueuer stores an inbound message durably, once per (channel, source id).
type Enqueuer interface {
	Enqueue(ctx context.Context, msg router.Message) (id string, duplicate bool, err error)
}

// State is the small durable store the channel keeps topic decisions, first
// posts waiting for their topic, and sent replies in.
type State interface {
	Get(ctx context.Context, k string) (string, bool, error)
	Set(ctx context.Context, k, value string, ttl time.Duration) error
	Delete(ctx context.Context, k string) error
}

// StaffRecorder records an answer staff gave in the forum on the complaint
// of its topic (the router's RecordStaffReply).
type StaffRecorder interface {
	RecordStaffReply(ctx context.Context, rep router.ExternalReply) (router.Complaint, error)
}

// Filter decides which topics are complaints, and whose posts are staff's.
type Filter struct {
	// Categories are category ids or slugs, each with its subcategories;
	// empty means every category.
	Categories []string
	// Tags: a topic carrying one of them is a complaint, whatever its category.
	Tags []string
	// Staff are usernames whose posts are staff answers, never customer
	// messages (Discourse's staff, admins and moderators are recognised by
	// their flags).
	Staff []string
	// StaffGroups are groups whose members' posts are staff answers; a post
	// names its author's primary group and flair group only.
	StaffGroups []string
}

// Config configures the webhook handler.
type Config struct {
	Queue  Enqueuer
	State  State
	Secret string
	Filter Filter
	// API reads what webhooks do not carry: the category tree (slugs,
	// subcategories) and the first post of a topic that becomes a complaint
	// later. Its username is the support account, whose posts are ours.
	API *API
	// Staff records staff answers; nil ignores them.
	Staff StaffRecorder
	// Owners maps Discourse usernames (lower case) to owner ids, so a staff
	// answer is recorded as that owner's.
	Owners map[string]string
	// CategoryRefresh is how long a read of the category tree is trusted.
	CategoryRefresh time.Duration
	// Legacy moves complaints recorded under a customer's username (before
	// customers were keyed by Discourse user id) to their user id, when
	// their next post shows both; nil leaves them.
	Legacy   LegacyCustomers
	MaxBytes int64
	Clock    func() time.Time
	Logger   *slog.Logger
}

// LegacyCustomers moves a channel's complaints from one customer id of a
// customer to another (the queue's store).
type LegacyCustomers interface {
	RekeyCustomer(ctx context.Context, ch router.Channel, oldID, newID string) (int, error)
}

// Handler serves POST /v1/forum/discourse.
type Handler struct {
	cfg        Config
	log        *slog.Logger
	categories *categoryFilter
	ourselves  string
}

// New builds the webhook handler.
func New(cfg Config) *Handler {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 20
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CategoryRefresh <= 0 {
		cfg.CategoryRefresh = 10 * time.Minute
	}
	lower := func(list []string) []string {
		out := make([]string, 0, len(list))
		for _, s := range list {
			if s = strings.ToLower(strings.TrimSpace(s)); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	cfg.Filter.Staff, cfg.Filter.Tags, cfg.Filter.StaffGroups = lower(cfg.Filter.Staff), lower(cfg.Filter.Tags), lower(cfg.Filter.StaffGroups)
	h := &Handler{cfg: cfg, log: cfg.Logger,
		categories: newCategoryFilter(cfg.Filter.Categories, cfg.API, cfg.CategoryRefresh, cfg.Clock, cfg.Logger)}
	if cfg.API != nil {
		h.ourselves = strings.ToLower(cfg.API.Username())
	}
	return h
}

// Post is the part of Discourse's webhook post that matters here
// (WebHookPostSerializer).
type Post struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	Username          string `json:"username"`
	UserID            int64  `json:"user_id"`
	Email             string `json:"email"` // only when a plugin adds it
	CreatedAt         string `json:"created_at"`
	Raw               string `json:"raw"`
	PostNumber        int    `json:"post_number"`
	PostType          int    `json:"post_type"`
	TopicID           int64  `json:"topic_id"`
	TopicTitle        string `json:"topic_title"`
	TopicArchetype    string `json:"topic_archetype"`
	CategoryID        int64  `json:"category_id"`
	CategorySlug      string `json:"category_slug"`
	Staff             bool   `json:"staff"`
	Admin             bool   `json:"admin"`
	Moderator         bool   `json:"moderator"`
	ReplyToPostNumber *int   `json:"reply_to_post_number"`
	PrimaryGroupName  string `json:"primary_group_name"`
	FlairName         string `json:"flair_name"`
}

// Topic is the part of Discourse's webhook topic that matters here. It has no
// text: the first post arrives separately as post_created.
type Topic struct {
	ID         int64   `json:"id"`
	Title      string  `json:"title"`
	CategoryID int64   `json:"category_id"`
	Archetype  string  `json:"archetype"`
	Tags       tagList `json:"tags"`
	CreatedBy  struct {
		Username string `json:"username"`
	} `json:"created_by"`
}

// tagList reads tags as names (["complaint"]) or as the tag objects newer
// Discourse versions use ([{"id": 3, "name": "complaint"}]).
type tagList []string

func (t *tagList) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("tags: %w", err)
	}
	out := make(tagList, 0, len(raw))
	for _, r := range raw {
		var name string
		if json.Unmarshal(r, &name) != nil {
			var obj struct {
				Name string `json:"name"`
			}
			if err := json.Unmarshal(r, &obj); err != nil {
				return fmt.Errorf("tags: want names or {\"name\": …} objects: %w", err)
			}
			name = obj.Name
		}
		out = append(out, name)
	}
	*t = out
	return nil
}

type payload struct {
	Post  *Post  `json:"post"`
	Topic *Topic `json:"topic"`
	Ping  string `json:"ping"`
}

// Response is the JSON answer to Discourse (shown in its webhook log).
type Response struct {
	MessageID string `json:"message_id,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	// StaffReplyOn names the complaint a staff post was recorded on as a reply.
	StaffReplyOn string `json:"staff_reply_on,omitempty"`
	// Ignored says why an event was accepted but is not a customer message.
	Ignored string `json:"ignored,omitempty"`
}

// Post type 1 is a regular post; the others are moderator actions, small
// actions ("closed this topic") and whispers, none of them a customer's words.
const postTypeRegular = 1

// How long topic decisions and waiting first posts are kept: far longer than
// Discourse takes to send the two events of one new topic.
const (
	topicTTL   = 90 * 24 * time.Hour
	waitingTTL = 7 * 24 * time.Hour
)

const enqueueTimeout = 5 * time.Second

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpx.WriteError(w, http.StatusMethodNotAllowed, "use POST", "")
		return
	}
	tooBig := fmt.Sprintf("body is larger than %d bytes", h.cfg.MaxBytes)
	if r.ContentLength > h.cfg.MaxBytes {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, tooBig, "")
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpx.WriteError(w, http.StatusRequestEntityTooLarge, tooBig, "")
			return
		}
		httpx.WriteError(w, http.StatusBadRequest, "could not read the body: "+err.Error(), "")
		return
	}
	if err := Verify(r.Header.Get(SignatureHeader), raw, h.cfg.Secret); err != nil {
		h.log.Warn("forum: refused signature", "remote", r.RemoteAddr, "err", err)
		httpx.WriteError(w, http.StatusUnauthorized, err.Error(), "")
		return
	}
	var p payload
	if err := json.Unmarshal(raw, &p); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "body is not a Discourse webhook payload: "+err.Error(), "")
		return
	}
	event := r.Header.Get(EventHeader)
	ctx, cancel := context.WithTimeout(r.Context(), enqueueTimeout)
	defer cancel()
	var res Response
	switch {
	case event == "ping" || p.Ping != "":
		res.Ignored = "ping"
	case event == "topic_created" && p.Topic != nil:
		res, err = h.topicCreated(ctx, *p.Topic)
	case event == "topic_edited" && p.Topic != nil:
		res, err = h.topicEdited(ctx, *p.Topic)
	case event == "post_created" && p.Post != nil:
		res, err = h.postCreated(ctx, *p.Post)
	case event == "topic_created" || event == "topic_edited" || event == "post_created":
		object, _, _ := strings.Cut(event, "_")
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("%s event without a %s object", event, object), "")
		return
	default:
		// Answer 200 so Discourse does not retry events it was told to send
		// but that mean nothing here (post edits, likes, user events).
		res.Ignored = fmt.Sprintf("event %q is not handled (only topic_created, topic_edited and post_created)", event)
	}
	if err != nil {
		var bad badPayload
		if errors.As(err, &bad) {
			httpx.WriteError(w, http.StatusBadRequest, err.Error(), bad.field)
			return
		}
		var up upstreamError
		if errors.As(err, &up) {
			// Discourse refused what only it can tell (a topic the API user
			// may not read): nothing was stored, and the event shows as
			// failed in Discourse's webhook log with this reason.
			h.log.Error("forum: Discourse refused a read the event needs", "event", event, "err", err)
			httpx.WriteError(w, http.StatusBadGateway, err.Error(), "")
			return
		}
		msg, after := "the queue is unavailable; nothing was stored, retry later", "5"
		var later retryLater
		var api *APIError
		switch {
		case errors.As(err, &later):
			msg, after = later.why, "30"
			h.log.Info("forum: event cannot be handled yet; Discourse will retry it", "event", event, "why", later.why)
		case errors.As(err, &api):
			msg = "Discourse could not be asked what this event needs (" + api.Error() + "); nothing was stored, retry later"
			h.log.Error("forum: could not handle the event; Discourse must retry", "event", event, "err", err)
		default:
			h.log.Error("forum: could not store the event; Discourse must retry", "event", event, "err", err)
		}
		w.Header().Set("Retry-After", after)
		httpx.WriteError(w, http.StatusServiceUnavailable, msg, "")
		return
	}
	status := http.StatusOK
	if (res.MessageID != "" && !res.Duplicate) || res.StaffReplyOn != "" {
		status = http.StatusAccepted
	}
	if res.Ignored != "" {
		h.log.Debug("forum: event ignored", "event", event, "why", res.Ignored)
	}
	httpx.WriteJSON(w, status, res)
}

type badPayload struct{ field, problem string }

func (b badPayload) Error() string { return b.field + " " + b.problem }

// upstreamError is a refusal by Discourse that no retry fixes.
type upstreamError struct{ err error }

func (u upstreamError) Error() string { return u.err.Error() }
func (u upstreamError) Unwrap() error { return u.err }

// retryLater is an event that cannot be handled yet (its complaint is still
// being routed); Discourse is asked to retry it.
type retryLater struct{ why string }

func (r retryLater) Error() string { return r.why }

// topicCreated records whether the topic is a complaint, and queues the first
// post if it arrived before the topic and was waiting for this decision.
func (h *Handler) topicCreated(ctx context.Context, t Topic) (Response, error) {
	if t.ID <= 0 {
		return Response{}, badPayload{"topic.id", "is missing"}
	}
	complaint, err := h.topicMatches(ctx, t)
	if err != nil {
		return Response{}, err
	}
	return h.decide(ctx, t.ID, complaint)
}

// decide records whether a topic is a complaint and settles its first post if
// it is waiting for that decision.
func (h *Handler) decide(ctx context.Context, topicID int64, complaint bool) (Response, error) {
	decision := "no"
	if complaint {
		decision = "yes"
	}
	if err := h.cfg.State.Set(ctx, topicKey(topicID), decision, topicTTL); err != nil {
		return Response{}, err
	}
	waiting, found, err := h.cfg.State.Get(ctx, waitingKey(topicID))
	if err != nil {
		return Response{}, err
	}
	if !found {
		if !complaint {
			return Response{Ignored: "topic is not in a complaint category and has no complaint tag"}, nil
		}
		return Response{Ignored: "topic recorded; its first post arrives as post_created"}, nil
	}
	var p Post
	if err := json.Unmarshal([]byte(waiting), &p); err != nil {
		return Response{}, fmt.Errorf("decoding the waiting first post of topic %d: %w", topicID, err)
	}
	res := Response{Ignored: "topic is not a complaint; its waiting first post is dropped"}
	if complaint {
		if res, err = h.enqueue(ctx, p); err != nil {
			return Response{}, err
		}
	}
	// Deleted only after the post is queued: a crash in between leaves it
	// waiting, and a retried event queues it again without a duplicate.
	if err := h.cfg.State.Delete(ctx, waitingKey(topicID)); err != nil {
		h.log.Warn("forum: could not delete a handled waiting post", "topic", topicID, "err", err)
	}
	return res, nil
}

// topicEdited turns a topic into a complaint when an edit gave it a complaint
// tag or moved it into a complaint category: its first post becomes the
// customer's message, read through the API because the topic event carries
// no text. Nothing is turned back: a complaint stays one until it is closed.
func (h *Handler) topicEdited(ctx context.Context, t Topic) (Response, error) {
	if t.ID <= 0 {
		return Response{}, badPayload{"topic.id", "is missing"}
	}
	decision, decided, err := h.cfg.State.Get(ctx, topicKey(t.ID))
	if err != nil {
		return Response{}, err
	}
	if decided && decision == "yes" {
		return Response{Ignored: "topic is already a complaint"}, nil
	}
	inCategory, err := h.categoryMatch(ctx, t.CategoryID, "")
	if err != nil {
		return Response{}, err
	}
	tagged := h.cfg.Filter.tagged(t.Tags)
	if t.Archetype == "private_message" || (!inCategory && !tagged) {
		// Not recorded: a topic_created still on its way decides.
		return Response{Ignored: "topic is not in a complaint category and has no complaint tag"}, nil
	}
	if _, waiting, err := h.cfg.State.Get(ctx, waitingKey(t.ID)); err != nil {
		return Response{}, err
	} else if waiting {
		return h.decide(ctx, t.ID, true)
	}
	if !decided && !tagged {
		// In a complaint category since before forgetmenot kept records of
		// it: an edit (a typo fixed) is no reason to open a complaint from
		// an old post. Its next customer post opens one.
		return Response{Ignored: "topic predates forgetmenot's records; its next customer post is a complaint"}, nil
	}
	if h.cfg.API == nil {
		return Response{}, upstreamError{fmt.Errorf("topic %d became a complaint, but no Discourse API is configured to read its first post", t.ID)}
	}
	p, err := h.cfg.API.firstPost(ctx, t.ID)
	if err != nil {
		err = fmt.Errorf("reading the first post of topic %d, which became a complaint: %w", t.ID, err)
		if isTemporary(err) {
			return Response{}, err
		}
		return Response{}, upstreamError{err}
	}
	res := Response{Ignored: "topic is a complaint now; its first post is not a customer's"}
	if why := h.notCustomer(p); why == "" && strings.TrimSpace(p.Raw) != "" {
		if res, err = h.enqueue(ctx, p); err != nil {
			return Response{}, err
		}
	}
	// Recorded after the first post is queued, so a failure in between
	// leaves the edit to be retried rather than a complaint without its start.
	if err := h.cfg.State.Set(ctx, topicKey(t.ID), "yes", topicTTL); err != nil {
		return Response{}, err
	}
	return res, nil
}

func (h *Handler) postCreated(ctx context.Context, p Post) (Response, error) {
	switch {
	case p.ID <= 0:
		return Response{}, badPayload{"post.id", "is missing"}
	case p.TopicID <= 0:
		return Response{}, badPayload{"post.topic_id", "is missing"}
	}
	if h.cfg.Filter.staff(p) || h.cfg.Owners[strings.ToLower(p.Username)] != "" {
		if why := h.notMessage(p); why != "" {
			return Response{Ignored: why}, nil
		}
		return h.staffPost(ctx, p)
	}
	if why := h.notCustomer(p); why != "" {
		return Response{Ignored: why}, nil
	}
	if strings.TrimSpace(p.Raw) == "" {
		return Response{Ignored: "post has no text"}, nil
	}
	inCategory, err := h.categoryMatch(ctx, p.CategoryID, p.CategorySlug)
	if err != nil {
		return Response{}, err
	}
	if inCategory {
		return h.enqueue(ctx, p)
	}
	if len(h.cfg.Filter.Tags) == 0 {
		return Response{Ignored: "topic is not in a complaint category"}, nil
	}
	// The topic may still count by its tags, which only topic events carry.
	decision, found, err := h.cfg.State.Get(ctx, topicKey(p.TopicID))
	if err != nil {
		return Response{}, err
	}
	switch {
	case found && decision == "yes":
		return h.enqueue(ctx, p)
	case found:
		return Response{Ignored: "topic is not in a complaint category and has no complaint tag"}, nil
	case p.PostNumber == 1:
		// The first post raced ahead of its topic_created: keep it (durably)
		// until the topic says whether it is a complaint.
		raw, err := json.Marshal(p)
		if err != nil {
			return Response{}, err
		}
		if err := h.cfg.State.Set(ctx, waitingKey(p.TopicID), string(raw), waitingTTL); err != nil {
			return Response{}, err
		}
		// topic_created may have decided between our read and our write, and
		// then found nothing waiting. Each handler writes its key before
		// reading the other's, so reading the decision again here means
		// whichever runs second sees the other; queuing the post twice is
		// harmless (deduplicated on the post id).
		decision, found, err := h.cfg.State.Get(ctx, topicKey(p.TopicID))
		if err != nil {
			return Response{}, err
		}
		if !found {
			return Response{Ignored: "first post kept until topic_created tells its tags"}, nil
		}
		return h.decide(ctx, p.TopicID, decision == "yes")
	}
	return Response{Ignored: "topic is unknown (created before forgetmenot listened) and not in a complaint category"}, nil
}

// staffPost records a staff member's post in a complaint topic as their
// reply: the customer was answered, in the forum, so the response clock
// stops; nothing is posted back.
func (h *Handler) staffPost(ctx context.Context, p Post) (Response, error) {
	if h.cfg.Staff == nil {
		return Response{Ignored: "post by staff (" + p.Username + ")"}, nil
	}
	if strings.TrimSpace(p.Raw) == "" {
		return Response{Ignored: "staff post has no text"}, nil
	}
	postID := strconv.FormatInt(p.ID, 10)
	actor := h.cfg.Owners[strings.ToLower(p.Username)]
	if actor == "" {
		actor = "forum:" + clip(p.Username, 60)
	}
	rep := router.ExternalReply{
		ThreadKey: TopicKey(p.TopicID), Key: "forum:post:" + postID, Actor: actor,
		Text: p.Raw, Via: router.ChannelForum, Ref: "post:" + postID,
	}
	// An answer to a customer's post belongs to that customer's complaint,
	// which is not always the topic owner's.
	if p.ReplyToPostNumber != nil && *p.ReplyToPostNumber > 0 {
		key, found, err := h.cfg.State.Get(ctx, authorKey(p.TopicID, *p.ReplyToPostNumber))
		if err != nil {
			return Response{}, err
		}
		if found {
			rep.CustomerKey = key
		}
	}
	c, err := h.cfg.Staff.RecordStaffReply(ctx, rep)
	var invalid *router.ValidationError
	switch {
	case errors.Is(err, router.ErrNotFound):
		coming, err := h.complaintMayComeYet(ctx, p)
		if err != nil {
			return Response{}, err
		}
		if coming {
			return Response{}, retryLater{fmt.Sprintf("the complaint of topic %d is still being opened, or its customer's post is not in yet; retry this staff post later", p.TopicID)}
		}
		return Response{Ignored: "post by staff (" + p.Username + ") in a topic that is not a complaint"}, nil
	case errors.As(err, &invalid):
		return Response{Ignored: "staff post cannot be recorded: " + invalid.Error()}, nil
	case err != nil:
		return Response{}, err
	}
	return Response{StaffReplyOn: c.ID}, nil
}

// complaintMayComeYet reports whether the complaint a staff post answers
// may still be opened: the customer's post is queued, waits for its
// topic's tags, belongs to a topic decided to be a complaint, or the topic
// is in a complaint category and the staff post is not its first (the
// customer's post may not have been accepted yet: Discourse retries a post
// answered 503, in any order with the answer). Such an answer is answered
// 503 so Discourse delivers it again, rather than dropped with a 2xx: the
// customer was answered, and the complaint must know. When the categories
// cannot be read, neither can this be decided: that error is a 503 too.
func (h *Handler) complaintMayComeYet(ctx context.Context, p Post) (bool, error) {
	for _, key := range []string{queuedKey(p.TopicID), waitingKey(p.TopicID)} {
		if _, found, err := h.cfg.State.Get(ctx, key); err != nil || found {
			return found, err
		}
	}
	if decision, found, err := h.cfg.State.Get(ctx, topicKey(p.TopicID)); err != nil || found {
		return found && decision == "yes", err
	}
	if p.PostNumber == 1 {
		return false, nil // staff opened the topic: no customer's post precedes it
	}
	if at, err := time.Parse(time.RFC3339, p.CreatedAt); err == nil && h.cfg.Clock().Sub(at) > staffAnswerWait {
		// Long enough for Discourse's redeliveries of the customer's post:
		// a topic from before forgetmenot listened (or whose complaint is
		// gone) is not retried for ever.
		return false, nil
	}
	return h.categoryMatch(ctx, p.CategoryID, p.CategorySlug)
}

// staffAnswerWait is how long a staff answer in a complaint category waits
// (answered 503) for the customer's post it may answer.
const staffAnswerWait = time.Hour

func (h *Handler) enqueue(ctx context.Context, p Post) (Response, error) {
	msg := Message(p, h.cfg.Clock())
	h.moveLegacyCustomer(ctx, p, msg)
	// Who wrote which post, for the staff answers that reply to it; written
	// before the post is queued, so an answer never finds the post without.
	if err := h.cfg.State.Set(ctx, authorKey(p.TopicID, p.PostNumber), msg.Customer.Key(router.ChannelForum), topicTTL); err != nil {
		return Response{}, err
	}
	id, dup, err := h.cfg.Queue.Enqueue(ctx, msg)
	if err != nil {
		return Response{}, err
	}
	// Staff answers that arrive before this post is routed wait for it.
	if err := h.cfg.State.Set(ctx, queuedKey(p.TopicID), "1", topicTTL); err != nil {
		h.log.Warn("forum: could not mark the topic as having a queued customer post", "topic", p.TopicID, "err", err)
	}
	return Response{MessageID: id, Duplicate: dup}, nil
}

// categoryMatch tells whether a category counts; with no categories
// configured every category does, unless tags narrow it.
func (h *Handler) categoryMatch(ctx context.Context, id int64, slug string) (bool, error) {
	if h.categories.empty() {
		return len(h.cfg.Filter.Tags) == 0, nil
	}
	return h.categories.match(ctx, id, slug)
}

func (h *Handler) topicMatches(ctx context.Context, t Topic) (bool, error) {
	if t.Archetype == "private_message" {
		return false, nil
	}
	inCategory, err := h.categoryMatch(ctx, t.CategoryID, "")
	if err != nil || inCategory {
		return inCategory, err
	}
	return h.cfg.Filter.tagged(t.Tags), nil
}

// Message turns a customer's post into an inbound message. The customer is
// the poster's Discourse user id, never the topic's owner: another member
// posting in a complaint topic is someone else. Stock Discourse sends no
// e-mail address; a plugin may, and then the history links by it.
func Message(p Post, now time.Time) router.Message {
	name := strings.TrimSpace(p.Name)
	if name == "" {
		name = p.Username
	}
	msg := router.Message{
		Channel:    router.ChannelForum,
		SourceID:   "post:" + strconv.FormatInt(p.ID, 10),
		Customer:   router.Customer{ID: strconv.FormatInt(p.UserID, 10), Name: name, Email: strings.TrimSpace(p.Email)},
		Subject:    strings.TrimSpace(p.TopicTitle),
		Body:       p.Raw,
		ThreadKeys: []string{TopicKey(p.TopicID)},
		Metadata: map[string]string{
			MetaTopicID:    strconv.FormatInt(p.TopicID, 10),
			MetaPostNumber: strconv.Itoa(p.PostNumber),
			MetaPostID:     strconv.FormatInt(p.ID, 10),
			MetaUsername:   p.Username,
		},
		ReceivedAt: now.UTC(),
	}
	if p.CategorySlug != "" {
		msg.Metadata[MetaCategory] = p.CategorySlug
	}
	return msg
}

// TopicKey is the thread key of a Discourse topic.
func TopicKey(topicID int64) string { return "forum:topic:" + strconv.FormatInt(topicID, 10) }

func topicKey(id int64) string   { return "topic:" + strconv.FormatInt(id, 10) }
func waitingKey(id int64) string { return "waiting:" + strconv.FormatInt(id, 10) }
func queuedKey(id int64) string  { return "queued:" + strconv.FormatInt(id, 10) }
func authorKey(topic int64, postNumber int) string {
	return "author:" + strconv.FormatInt(topic, 10) + ":" + strconv.Itoa(postNumber)
}

// notMessage says why a post is nobody's message to anyone, or "".
func (h *Handler) notMessage(p Post) string {
	switch {
	case p.UserID < 0:
		return "post by a system user (" + p.Username + ")"
	case p.PostType != 0 && p.PostType != postTypeRegular:
		return "not a regular post (moderator action, small action or whisper)"
	case p.TopicArchetype == "private_message":
		return "private message, not a forum topic"
	case h.ourselves != "" && strings.ToLower(p.Username) == h.ourselves:
		return "post by forgetmenot's own account (" + p.Username + "): already on the timeline"
	}
	return ""
}

// moveLegacyCustomer moves the poster's complaints recorded under their
// username (forum:<username>, as forgetmenot keyed forum customers before
// it keyed them by Discourse user id) to their user id, before their post is
// queued, so it continues their complaint and their history stays one. The
// signed post shows that the user id holds the username now, the same proof
// the username alone gave before. A username of digits only could be another
// user's id, so it is left. A failure is logged, and the post is queued
// anyway (it then opens a complaint of its own rather than being lost).
func (h *Handler) moveLegacyCustomer(ctx context.Context, p Post, msg router.Message) {
	if h.cfg.Legacy == nil || msg.Customer.Email != "" || msg.Customer.ID == "" || !legacyUsername(p.Username) {
		return
	}
	n, err := h.cfg.Legacy.RekeyCustomer(ctx, router.ChannelForum, p.Username, msg.Customer.ID)
	if err != nil {
		h.log.Warn("forum: could not move the complaints recorded under the poster's username to their user id; retried with their next post",
			"username", p.Username, "user_id", msg.Customer.ID, "err", err)
		return
	}
	if n > 0 {
		h.log.Info("forum: complaints recorded under the poster's username moved to their user id", "username", p.Username, "user_id", msg.Customer.ID, "complaints", n)
	}
}

// legacyUsername reports whether a username could have been a customer key
// before forum customers were keyed by user id, without being mistaken for
// a user id.
func legacyUsername(u string) bool {
	return u != "" && strings.ContainsFunc(u, func(r rune) bool { return r < '0' || r > '9' })
}

// notCustomer says why a post is not a customer's message, or "".
func (h *Handler) notCustomer(p Post) string {
	if why := h.notMessage(p); why != "" {
		return why
	}
	switch {
	case h.cfg.Filter.staff(p):
		return "post by staff (" + p.Username + ")"
	case p.UserID == 0:
		return "post names no user_id, so who wrote it cannot be told"
	}
	return ""
}

// staff reports whether the post's author answers for the shop: Discourse
// staff, a listed username, or a member of a listed group.
func (f Filter) staff(p Post) bool {
	return p.Staff || p.Admin || p.Moderator ||
		slices.Contains(f.Staff, strings.ToLower(p.Username)) ||
		(p.PrimaryGroupName != "" && slices.Contains(f.StaffGroups, strings.ToLower(p.PrimaryGroupName))) ||
		(p.FlairName != "" && slices.Contains(f.StaffGroups, strings.ToLower(p.FlairName)))
}

func (f Filter) tagged(tags []string) bool {
	for _, tag := range tags {
		if slices.Contains(f.Tags, strings.ToLower(tag)) {
			return true
		}
	}
	return false
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// Sign returns the X-Discourse-Event-Signature Discourse sends for body.
func Sign(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header against the raw body, in constant time.
func Verify(header string, body []byte, secret string) error {
	if header == "" {
		return errors.New("missing " + SignatureHeader + " header (set the webhook's secret in Discourse)")
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	sig, err := hex.DecodeString(hexSig)
	if !ok || err != nil || len(sig) != sha256.Size {
		return errors.New("malformed " + SignatureHeader + ": want sha256=<hex HMAC-SHA256>")
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	if !hmac.Equal(sig, m.Sum(nil)) {
		return errors.New("signature does not match the body: check that the webhook secret in Discourse equals FORGETMENOT_DISCOURSE_WEBHOOK_SECRET")
	}
	return nil
}
