package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/forgetmenot/forgetmenot/router"
)

// CustomerSender is another channel's sender (e-mail) the chat falls back on
// when the visitor has left, or did not see a reply in time.
type CustomerSender interface {
	Send(ctx context.Context, m router.CustomerMessage) (router.Sent, error)
}

// Sender delivers what staff say to the chat visitor: live to every open
// window of the session, by e-mail when none is open and the visitor left an
// address, and otherwise into the history they see on their next visit. A
// reply delivered live is watched: unless the widget reports it seen within
// UnseenAfter, the router queues it again and it is e-mailed.
type Sender struct {
	server *Server
	// Email returns the e-mail sender, or nil when e-mail is not configured;
	// asked at send time because channels are built in any order.
	Email func() CustomerSender
}

// Sender returns the chat's sender.
func (s *Server) Sender(email func() CustomerSender) *Sender {
	return &Sender{server: s, Email: email}
}

func (snd *Sender) mailer() CustomerSender {
	if snd.Email == nil {
		return nil
	}
	return snd.Email()
}

// Send implements the daemon's CustomerSender.
func (snd *Sender) Send(ctx context.Context, m router.CustomerMessage) (router.Sent, error) {
	s := snd.server
	session := sessionOf(m)
	if session == "" {
		return router.Sent{}, router.Permanent(fmt.Errorf("complaint %s has no chat session to answer in", m.Complaint.ID))
	}
	email := m.Complaint.Customer.Email
	mailer := snd.mailer()
	if m.Fallback != "" {
		// Delivered live before but not seen in time.
		if m.Fallback != router.ChannelEmail || mailer == nil || email == "" {
			return router.Sent{}, router.Permanent(fmt.Errorf("the %s was not seen in the chat, and it cannot be sent by %s (e-mail configured: %v, address known: %v)", m.Kind, m.Fallback, mailer != nil, email != ""))
		}
		return snd.email(ctx, mailer, m, "the reply was not seen in the chat")
	}
	sd := said{Kind: m.Kind, At: m.At, Complaint: m.Complaint.ID, Language: m.Complaint.Language, Owner: m.OwnerName,
		Author: m.AuthorName, Cover: m.CoverName, CustomerName: m.Complaint.Customer.Name, Body: m.Body, PromisedBy: m.Complaint.PromisedBy}
	raw, err := json.Marshal(liveLine{Session: session, Said: sd})
	if err != nil {
		return router.Sent{}, router.Permanent(err)
	}
	// Live delivery is best effort: the line is on the timeline already and
	// the widget shows it from the history when it reconnects.
	if err := s.cfg.State.Publish(ctx, liveTopic, string(raw)); err != nil {
		return router.Sent{}, fmt.Errorf("publishing the %s to chat session %s: %w", m.Kind, session, err)
	}
	_, online, err := s.cfg.State.Get(ctx, presenceKey(session))
	if err != nil {
		return router.Sent{}, fmt.Errorf("checking whether the visitor is connected: %w", err)
	}
	if online {
		sent := router.Sent{Via: string(router.ChannelChat), Ref: "live"}
		// Watched whether or not it can be e-mailed: a reply left unseen
		// is then at least said on the timeline (the owner must not take
		// it for read), and e-mailed where that is possible.
		if watched(m.Kind) && s.cfg.UnseenAfter > 0 {
			sent.Unseen = &router.UnseenFallback{After: s.cfg.UnseenAfter, Via: router.ChannelEmail}
		}
		return sent, nil
	}
	switch {
	case email != "" && mailer != nil:
		return snd.email(ctx, mailer, m, "the visitor left the chat")
	case email != "":
		return router.Sent{Via: string(router.ChannelChat), Skipped: "the visitor left the chat and e-mail is not configured; it is shown in the chat history on their next visit"}, nil
	}
	return router.Sent{Via: string(router.ChannelChat), Skipped: "the visitor left the chat and gave no e-mail address; it is shown in the chat history on their next visit"}, nil
}

func (snd *Sender) email(ctx context.Context, mailer CustomerSender, m router.CustomerMessage, why string) (router.Sent, error) {
	sent, err := mailer.Send(ctx, m)
	if err != nil {
		return router.Sent{}, fmt.Errorf("%s; e-mailing %s: %w", why, m.Complaint.Customer.Email, err)
	}
	if sent.Via == "" {
		sent.Via = string(router.ChannelEmail)
	}
	return sent, nil
}

// sessionOf finds the chat session to answer in: the customer's latest
// message when it came by chat, otherwise the complaint's latest chat
// thread. (The one place that reads the session off a message.)
func sessionOf(m router.CustomerMessage) string {
	if in := m.InReplyTo; in != nil && in.Channel == router.ChannelChat && in.Metadata[MetaSession] != "" {
		return in.Metadata[MetaSession]
	}
	for i := len(m.References) - 1; i >= 0; i-- {
		if s, ok := strings.CutPrefix(m.References[i], "chat:"); ok && s != "" {
			return s
		}
	}
	return ""
}
