package forum

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/texts"
	"github.com/forgetmenot/forgetmenot/router"
)

// SenderConfig configures the Discourse API client that posts replies.
type SenderConfig struct {
	// API posts as the support account (it needs a key).
	API *API
	// Acknowledge: post a short public reply naming the owner when a topic
	// becomes a complaint.
	Acknowledge bool
	// Templates word every post, by the complaint's language.
	Templates *texts.Set
	// Zone gives the time zone a complaint's promised time is told in (the
	// owner's business calendar); nil tells it in UTC.
	Zone func(router.Complaint) *time.Location
	// State remembers which customer messages were posted, so a retried
	// delivery does not post twice.
	State State
}

// Sender posts what staff say to the customer into the topic.
type Sender struct {
	cfg SenderConfig
}

// NewSender builds the sender.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if cfg.API == nil || cfg.Templates == nil || cfg.State == nil {
		return nil, errors.New("forum: the sender needs the API, templates and state")
	}
	if cfg.Zone == nil {
		cfg.Zone = func(router.Complaint) *time.Location { return time.UTC }
	}
	return &Sender{cfg: cfg}, nil
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
	raw, err := s.text(m)
	if err != nil {
		return router.Sent{}, router.Permanent(fmt.Errorf("wording the %s: %w", m.Kind, err))
	}
	doneKey := "sent:" + m.ID
	if ref, found, err := s.cfg.State.Get(ctx, doneKey); err != nil {
		return router.Sent{}, err
	} else if found {
		return router.Sent{Via: string(router.ChannelForum), Ref: ref}, nil
	}
	id, err := s.cfg.API.createPost(ctx, createPost{TopicID: topic, Raw: raw, ReplyToPostNumber: replyTo})
	if err != nil {
		err = fmt.Errorf("posting the %s to topic %d on %s: %w", m.Kind, topic, s.cfg.API.BaseURL(), err)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.RetryAfter > 0:
			return router.Sent{}, router.RetryAfter(err, ae.RetryAfter)
		case !isTemporary(err):
			return router.Sent{}, router.Permanent(err)
		}
		return router.Sent{}, err
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

// text words the post from the templates, in the complaint's language; the
// owner's name signs it so the customer knows who answers, and a promised
// time is given in the business calendar's zone.
func (s *Sender) text(m router.CustomerMessage) (string, error) {
	owner := m.OwnerName
	if owner == "" {
		owner = m.Complaint.Owner
	}
	author := m.AuthorName
	if author == "" {
		author = owner
	}
	lang := s.cfg.Templates.Lang(m.Complaint.Language)
	d := TextData{
		Reference: m.Complaint.ID, Owner: owner, OwnerFirstName: firstName(owner), Author: author,
		CustomerName: m.Complaint.Customer.Name, Username: username(m), Subject: m.Complaint.Subject,
		Body: strings.TrimSpace(m.Body),
	}
	if !m.Complaint.PromisedBy.IsZero() {
		d.PromisedBy = texts.At(m.Complaint.PromisedBy, lang, s.cfg.Zone(m.Complaint))
	}
	return s.cfg.Templates.Render(string(m.Kind), lang, d)
}

// username is the forum account to @mention: the author of the customer's
// latest forum post on the complaint, who is the complaint's customer.
func username(m router.CustomerMessage) string {
	if in := m.InReplyTo; in != nil && in.Channel == router.ChannelForum {
		return in.Metadata[MetaUsername]
	}
	return ""
}
