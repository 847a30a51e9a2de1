package forum

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// SenderConfig configures the Discourse API client that posts replies.
type SenderConfig struct {
	// BaseURL is the forum's address, e.g. https://forum.example.com.
	BaseURL string
	// APIKey and APIUsername are of the support account that posts.
	APIKey      string
	APIUsername string
	// Acknowledge: post a short public reply naming the owner when a topic
	// becomes a complaint.
	Acknowledge bool
	// State remembers which customer messages were posted, so a retried
	// delivery does not post twice.
	State  State
	Client *http.Client
}

// Sender posts what staff say to the customer into the topic.
type Sender struct {
	cfg SenderConfig
}

// NewSender builds the sender.
func NewSender(cfg SenderConfig) *Sender {
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 20 * time.Second}
	}
	return &Sender{cfg: cfg}
}

// sentTTL keeps the record of a posted message longer than the outbox retries it.
const sentTTL = 30 * 24 * time.Hour

// Send posts m in the complaint's topic, as an answer to the customer's latest
// post there.
func (s *Sender) Send(ctx context.Context, m router.CustomerMessage) (router.Sent, error) {
	if m.Kind == router.ToCustomerAcknowledgement && !s.cfg.Acknowledge {
		return router.Sent{Via: string(router.ChannelForum), Skipped: "forum acknowledgements are off (FORGETMENOT_DISCOURSE_ACKNOWLEDGE=false)"}, nil
	}
	topic, replyTo, err := where(m)
	if err != nil {
		return router.Sent{}, router.Permanent(err)
	}
	doneKey := "sent:" + m.ID
	if ref, found, err := s.cfg.State.Get(ctx, doneKey); err != nil {
		return router.Sent{}, err
	} else if found {
		return router.Sent{Via: string(router.ChannelForum), Ref: ref}, nil
	}
	req := createPost{TopicID: topic, Raw: text(m)}
	if replyTo > 0 {
		req.ReplyToPostNumber = replyTo
	}
	id, err := s.post(ctx, req)
	if err != nil {
		return router.Sent{}, fmt.Errorf("posting the %s to topic %d on %s: %w", m.Kind, topic, s.cfg.BaseURL, err)
	}
	ref := "post"
	if id > 0 {
		ref = "post:" + strconv.FormatInt(id, 10)
	}
	// A lost record only risks a second post if this very delivery is
	// retried; the error is not worth failing a delivery that happened.
	_ = s.cfg.State.Set(ctx, doneKey, ref, sentTTL)
	return router.Sent{Via: string(router.ChannelForum), Ref: ref}, nil
}

// where finds the topic to answer in: the customer's latest post when it came
// by the forum, otherwise the complaint's most recent forum topic.
func where(m router.CustomerMessage) (topic int64, replyTo int, err error) {
	if in := m.InReplyTo; in != nil && in.Channel == router.ChannelForum {
		topic, _ = strconv.ParseInt(in.Metadata[MetaTopicID], 10, 64)
		replyTo, _ = strconv.Atoi(in.Metadata[MetaPostNumber])
		if topic > 0 {
			return topic, replyTo, nil
		}
	}
	for i := len(m.References) - 1; i >= 0; i-- {
		if id, ok := strings.CutPrefix(m.References[i], "forum:topic:"); ok {
			if topic, _ = strconv.ParseInt(id, 10, 64); topic > 0 {
				return topic, 0, nil
			}
		}
	}
	return 0, 0, fmt.Errorf("complaint %s has no forum topic to answer in", m.Complaint.ID)
}

// text words the post; the owner's name signs it so the customer knows who
// answers.
func text(m router.CustomerMessage) string {
	mention := ""
	if u := m.Complaint.Customer.ID; u != "" {
		mention = "@" + u + " "
	}
	switch m.Kind {
	case router.ToCustomerAcknowledgement:
		return fmt.Sprintf("%sThank you for reporting this. **%s** from our support team owns it now (reference %s) and will answer here.", mention, m.OwnerName, m.Complaint.ID)
	case router.ToCustomerPromise:
		by := m.Complaint.PromisedBy
		return fmt.Sprintf("%s\n\nYou will hear from us by %s.\n\n— %s", strings.TrimSpace(m.Body), by.UTC().Format("Monday 2 January 15:04 MST"), m.AuthorName)
	}
	return strings.TrimSpace(m.Body) + "\n\n— " + m.AuthorName
}

type createPost struct {
	TopicID           int64  `json:"topic_id"`
	Raw               string `json:"raw"`
	ReplyToPostNumber int    `json:"reply_to_post_number,omitempty"`
}

// post calls POST /posts.json and returns the new post's id. Rate limits and
// server errors are retried by the outbox; other refusals are permanent.
func (s *Sender) post(ctx context.Context, body createPost) (int64, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, router.Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.BaseURL+"/posts.json", bytes.NewReader(raw))
	if err != nil {
		return 0, router.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Api-Key", s.cfg.APIKey)
	req.Header.Set("Api-Username", s.cfg.APIUsername)
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		err := fmt.Errorf("Discourse rate limit (429): %s", discourseError(answer))
		if after := retryAfter(resp.Header.Get("Retry-After")); after > 0 {
			return 0, router.RetryAfter(err, after)
		}
		return 0, err
	case resp.StatusCode >= 500:
		return 0, fmt.Errorf("Discourse answered %d: %s", resp.StatusCode, discourseError(answer))
	case resp.StatusCode >= 400:
		return 0, router.Permanent(fmt.Errorf("Discourse refused the post (%d): %s", resp.StatusCode, discourseError(answer)))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return 0, fmt.Errorf("Discourse answered %d", resp.StatusCode)
	}
	var created struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(answer, &created); err != nil || created.ID == 0 {
		// It was posted; only its id is unknown.
		return 0, nil
	}
	return created.ID, nil
}

// discourseError extracts Discourse's {"errors": [...]} text.
func discourseError(body []byte) string {
	var e struct {
		Errors    []string `json:"errors"`
		ErrorType string   `json:"error_type"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
		return strings.Join(e.Errors, "; ")
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(no details)"
	}
	return s
}

func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}
