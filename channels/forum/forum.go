// Package forum is the Discourse channel: topics and posts arrive through a
// signed webhook and become inbound messages; what staff say to the customer
// goes back as a post in the topic through the Discourse API.
//
// Threading is by topic: every post of a topic carries the thread key
// "forum:topic:<id>", so it lands on the complaint of that topic. Deduplication
// is by post: Discourse gives every retry a new event id, and the first post
// of a topic is announced twice (topic_created, post_created), so the post id
// is the only stable key.
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

// Filter decides which topics are complaints.
type Filter struct {
	// Categories are category ids or slugs; empty means every category.
	Categories []string
	// Tags: a topic carrying one of them is a complaint, whatever its category.
	Tags []string
	// Staff are usernames whose posts are never customer messages (the
	// support account is always one of them).
	Staff []string
}

// Config configures the webhook handler.
type Config struct {
	Queue    Enqueuer
	State    State
	Secret   string
	Filter   Filter
	MaxBytes int64
	Clock    func() time.Time
	Logger   *slog.Logger
}

// Handler serves POST /v1/forum/discourse.
type Handler struct {
	cfg Config
	log *slog.Logger
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
	for i, s := range cfg.Filter.Staff {
		cfg.Filter.Staff[i] = strings.ToLower(s)
	}
	for i, s := range cfg.Filter.Tags {
		cfg.Filter.Tags[i] = strings.ToLower(s)
	}
	return &Handler{cfg: cfg, log: cfg.Logger}
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
}

// Topic is the part of Discourse's webhook topic that matters here. It has no
// text: the first post arrives separately as post_created.
type Topic struct {
	ID         int64    `json:"id"`
	Title      string   `json:"title"`
	CategoryID int64    `json:"category_id"`
	Archetype  string   `json:"archetype"`
	Tags       []string `json:"tags"`
	CreatedBy  struct {
		Username string `json:"username"`
	} `json:"created_by"`
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
	case event == "post_created" && p.Post != nil:
		res, err = h.postCreated(ctx, *p.Post)
	case event == "topic_created" || event == "post_created":
		httpx.WriteError(w, http.StatusBadRequest, fmt.Sprintf("%s event without a %s object", event, strings.TrimSuffix(event, "_created")), "")
		return
	default:
		// Answer 200 so Discourse does not retry events it was told to send
		// but that mean nothing here (edits, likes, user events).
		res.Ignored = fmt.Sprintf("event %q is not handled (only topic_created and post_created)", event)
	}
	if err != nil {
		var bad badPayload
		if errors.As(err, &bad) {
			httpx.WriteError(w, http.StatusBadRequest, err.Error(), bad.field)
			return
		}
		h.log.Error("forum: could not store the event; Discourse must retry", "event", event, "err", err)
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, http.StatusServiceUnavailable, "the queue is unavailable; nothing was stored, retry later", "")
		return
	}
	status := http.StatusOK
	if res.MessageID != "" && !res.Duplicate {
		status = http.StatusAccepted
	}
	if res.Ignored != "" {
		h.log.Debug("forum: event ignored", "event", event, "why", res.Ignored)
	}
	httpx.WriteJSON(w, status, res)
}

type badPayload struct{ field, problem string }

func (b badPayload) Error() string { return b.field + " " + b.problem }

// topicCreated records whether the topic is a complaint, and queues the first
// post if it arrived before the topic and was waiting for this decision.
func (h *Handler) topicCreated(ctx context.Context, t Topic) (Response, error) {
	if t.ID <= 0 {
		return Response{}, badPayload{"topic.id", "is missing"}
	}
	decision := "no"
	if t.Archetype != "private_message" && h.cfg.Filter.topicMatches(t) {
		decision = "yes"
	}
	if err := h.cfg.State.Set(ctx, topicKey(t.ID), decision, topicTTL); err != nil {
		return Response{}, err
	}
	waiting, found, err := h.cfg.State.Get(ctx, waitingKey(t.ID))
	if err != nil {
		return Response{}, err
	}
	if !found {
		if decision == "no" {
			return Response{Ignored: "topic is not in a complaint category and has no complaint tag"}, nil
		}
		return Response{Ignored: "topic recorded; its first post arrives as post_created"}, nil
	}
	var p Post
	if err := json.Unmarshal([]byte(waiting), &p); err != nil {
		return Response{}, fmt.Errorf("decoding the waiting first post of topic %d: %w", t.ID, err)
	}
	res := Response{Ignored: "topic is not a complaint; its waiting first post is dropped"}
	if decision == "yes" {
		if res, err = h.enqueue(ctx, p); err != nil {
			return Response{}, err
		}
	}
	// Deleted only after the post is queued: a crash in between leaves it
	// waiting, and a retried event queues it again without a duplicate.
	if err := h.cfg.State.Delete(ctx, waitingKey(t.ID)); err != nil {
		h.log.Warn("forum: could not delete a handled waiting post", "topic", t.ID, "err", err)
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
	if why := h.cfg.Filter.notCustomer(p); why != "" {
		return Response{Ignored: why}, nil
	}
	if strings.TrimSpace(p.Raw) == "" {
		return Response{Ignored: "post has no text"}, nil
	}
	if h.cfg.Filter.categoryMatches(p.CategoryID, p.CategorySlug) {
		return h.enqueue(ctx, p)
	}
	if len(h.cfg.Filter.Tags) == 0 {
		return Response{Ignored: "topic is not in a complaint category"}, nil
	}
	// The topic may still count by its tags, which only topic_created carries.
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
		res := Response{Ignored: "topic is not in a complaint category and has no complaint tag"}
		if decision == "yes" {
			if res, err = h.enqueue(ctx, p); err != nil {
				return Response{}, err
			}
		}
		// Deleted only after the post is queued, as in topicCreated.
		if err := h.cfg.State.Delete(ctx, waitingKey(p.TopicID)); err != nil {
			h.log.Warn("forum: could not delete a handled waiting post", "topic", p.TopicID, "err", err)
		}
		return res, nil
	}
	return Response{Ignored: "topic is unknown (created before forgetmenot listened) and not in a complaint category"}, nil
}

func (h *Handler) enqueue(ctx context.Context, p Post) (Response, error) {
	id, dup, err := h.cfg.Queue.Enqueue(ctx, Message(p, h.cfg.Clock()))
	if err != nil {
		return Response{}, err
	}
	return Response{MessageID: id, Duplicate: dup}, nil
}

// Message turns a customer's post into an inbound message.
func Message(p Post, now time.Time) router.Message {
	name := strings.TrimSpace(p.Name)
	if name == "" {
		name = p.Username
	}
	msg := router.Message{
		Channel:    router.ChannelForum,
		SourceID:   "post:" + strconv.FormatInt(p.ID, 10),
		Customer:   router.Customer{ID: p.Username, Name: name, Email: strings.TrimSpace(p.Email)},
		Subject:    strings.TrimSpace(p.TopicTitle),
		Body:       p.Raw,
		ThreadKeys: []string{TopicKey(p.TopicID)},
		Metadata: map[string]string{
			MetaTopicID:    strconv.FormatInt(p.TopicID, 10),
			MetaPostNumber: strconv.Itoa(p.PostNumber),
			MetaPostID:     strconv.FormatInt(p.ID, 10),
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

// notCustomer says why a post is not a customer's message, or "".
func (f Filter) notCustomer(p Post) string {
	switch {
	case p.Staff || p.Admin || p.Moderator:
		return "post by staff (" + p.Username + ")"
	case slices.Contains(f.Staff, strings.ToLower(p.Username)):
		return "post by a support account (" + p.Username + ")"
	case p.UserID < 0:
		return "post by a system user (" + p.Username + ")"
	case p.PostType != 0 && p.PostType != postTypeRegular:
		return "not a regular post (moderator action, small action or whisper)"
	case p.TopicArchetype == "private_message":
		return "private message, not a forum topic"
	}
	return ""
}

func (f Filter) categoryMatches(id int64, slug string) bool {
	if len(f.Categories) == 0 {
		// Without categories, every topic counts unless tags narrow it.
		return len(f.Tags) == 0
	}
	ids := strconv.FormatInt(id, 10)
	for _, c := range f.Categories {
		if c == ids || (slug != "" && strings.EqualFold(c, slug)) {
			return true
		}
	}
	return false
}

func (f Filter) topicMatches(t Topic) bool {
	if f.categoryMatches(t.CategoryID, "") {
		return true
	}
	for _, tag := range t.Tags {
		if slices.Contains(f.Tags, strings.ToLower(tag)) {
			return true
		}
	}
	return false
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
