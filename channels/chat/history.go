package chat

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// history is what the visitor of a session sees again on return: their own
// messages, staff replies and promises told to them, and who owns each
// complaint. Internal notes and routing details stay with staff.
func (s *Server) history(ctx context.Context, session string) ([]Line, error) {
	if s.cfg.History == nil {
		return nil, nil
	}
	convs, err := s.cfg.History.Conversations(ctx, ThreadKey(session))
	if err != nil {
		return nil, err
	}
	var out []Line
	for _, conv := range convs {
		out = append(out, s.lines(conv)...)
	}
	return out, nil
}

func (s *Server) lines(conv Conversation) []Line {
	var out []Line
	acknowledged := false
	for _, e := range conv.Timeline {
		switch {
		case e.Message != nil:
			id := e.Message.ID
			if e.Message.Channel == router.ChannelChat {
				// The widget's own id, so its local copy and this line are one.
				if _, clientID, ok := strings.Cut(e.Message.SourceID, ":"); ok {
					id = clientID
				}
			}
			out = append(out, Line{ID: id, From: "visitor", Text: e.Message.Body, Author: e.Message.Customer.Name, At: e.At})
		case e.Event == nil:
		case e.Event.Type == router.EventAssigned && !acknowledged:
			// The first assignment is the one the acknowledgement announced
			// (same moment, so the live line and this one share their id).
			acknowledged = true
			out = append(out, Line{ID: lineID(router.ToCustomerAcknowledgement, e.At), From: "system",
				Text: acknowledgement(s.cfg.OwnerName(e.Event.Owner), conv.Complaint.ID), At: e.At})
		case e.Event.Type == router.EventReplied:
			out = append(out, Line{ID: lineID(router.ToCustomerReply, e.At), From: "staff", Text: e.Event.Text,
				Author: s.signature(e.Event.Actor, e.Event.Owner), At: e.At})
		case e.Event.Type == router.EventPromised && e.Event.Details["via"] != "":
			by, _ := time.Parse(time.RFC3339, e.Event.Details["by"])
			out = append(out, Line{ID: lineID(router.ToCustomerPromise, e.At), From: "staff", Text: promise(e.Event.Text, by),
				Author: s.signature(e.Event.Actor, e.Event.Owner), At: e.At})
		}
	}
	return out
}

// signature words who answered as the router signs it: "Anna", or "Bas for
// Anna" when a colleague answered.
func (s *Server) signature(actor, owner string) string {
	name := s.cfg.OwnerName(owner)
	if actor != owner && actor != "" {
		if other := s.cfg.OwnerName(actor); other != actor {
			return other + " for " + name
		}
	}
	return name
}

// lineID identifies what was said to the visitor by its kind and moment: the
// outbox's CustomerMessage and the timeline entry of the same change share
// the moment.
func lineID(kind router.CustomerMessageKind, at time.Time) string {
	return string(kind) + "@" + at.UTC().Format(time.RFC3339Nano)
}

func acknowledgement(owner, complaintID string) string {
	return fmt.Sprintf("%s is now handling your question (reference %s) and will answer here.", owner, complaintID)
}

func promise(note string, by time.Time) string {
	if by.IsZero() {
		return note
	}
	return fmt.Sprintf("%s\nYou will hear from us by %s.", note, by.UTC().Format("Monday 2 January 15:04 MST"))
}
