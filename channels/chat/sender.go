package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/forgetmenot/forgetmenot/router"
)

// CustomerSender is another channel's sender (e-mail) the chat falls back on
// when the visitor has left.
type CustomerSender interface {
	Send(ctx context.Context, m router.CustomerMessage) (router.Sent, error)
}

// Sender delivers what staff say to the chat visitor: live to every open
// window of the session, by e-mail when none is open and the visitor left an
// address, and otherwise into the history they see on their next visit.
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

// Send implements the daemon's CustomerSender.
func (snd *Sender) Send(ctx context.Context, m router.CustomerMessage) (router.Sent, error) {
	s := snd.server
	session := sessionOf(m)
	if session == "" {
		return router.Sent{}, router.Permanent(fmt.Errorf("complaint %s has no chat session to answer in", m.Complaint.ID))
	}
	line := Line{ID: lineID(m.Kind, m.At), From: "staff", Text: m.Body, Author: m.AuthorName, At: m.At}
	switch m.Kind {
	case router.ToCustomerAcknowledgement:
		line.From, line.Author, line.Text = "system", "", acknowledgement(m.OwnerName, m.Complaint.ID)
	case router.ToCustomerPromise:
		line.Text = promise(m.Body, m.Complaint.PromisedBy)
	}
	raw, err := json.Marshal(liveLine{Session: session, Line: line})
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
		return router.Sent{Via: string(router.ChannelChat), Ref: "live"}, nil
	}
	email := m.Complaint.Customer.Email
	var mailer CustomerSender
	if snd.Email != nil {
		mailer = snd.Email()
	}
	switch {
	case email != "" && mailer != nil:
		sent, err := mailer.Send(ctx, m)
		if err != nil {
			return router.Sent{}, fmt.Errorf("the visitor left the chat; e-mailing %s: %w", email, err)
		}
		if sent.Via == "" {
			sent.Via = string(router.ChannelEmail)
		}
		return sent, nil
	case email != "":
		return router.Sent{Via: string(router.ChannelChat), Skipped: "the visitor left the chat and e-mail is not configured; it is shown in the chat history on their next visit"}, nil
	}
	return router.Sent{Via: string(router.ChannelChat), Skipped: "the visitor left the chat and gave no e-mail address; it is shown in the chat history on their next visit"}, nil
}

// sessionOf finds the chat session to answer in: the customer's latest
// message when it came by chat, otherwise the complaint's latest chat thread.
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
