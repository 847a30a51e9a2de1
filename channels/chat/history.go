package chat

import (
	"context"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// history is what the visitor of a session sees again on return: their own
// messages, staff replies and promises told to them, and who owns each
// complaint. Internal notes and routing details stay with staff.
func (s *Server) history(ctx context.Context, c *client) ([]Line, error) {
	if s.cfg.History == nil {
		return nil, nil
	}
	convs, err := s.cfg.History.Conversations(ctx, ThreadKey(c.session))
	if err != nil {
		return nil, err
	}
	var out []Line
	for _, conv := range convs {
		out = append(out, s.lines(c, conv)...)
	}
	return out, nil
}

func (s *Server) lines(c *client, conv Conversation) []Line {
	var out []Line
	acknowledged := false
	cp := conv.Complaint
	add := func(sd said) {
		sd.Complaint, sd.Language, sd.CustomerName = cp.ID, cp.Language, cp.Customer.Name
		l := s.line(c, sd)
		if watched(sd.Kind) {
			c.watchLine(l.ID, cp.ID)
		}
		out = append(out, l)
	}
	for _, e := range conv.Timeline {
		switch {
		case e.Message != nil && e.Message.DeliveryReport != nil:
			// A mail system's report that something did not arrive: for
			// staff, not a line the visitor wrote.
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
			add(said{Kind: router.ToCustomerAcknowledgement, At: e.At, Owner: s.cfg.OwnerName(e.Event.Owner)})
		case e.Event.Type == router.EventReplied:
			add(said{Kind: router.ToCustomerReply, At: e.At, Body: e.Event.Text, Owner: s.cfg.OwnerName(e.Event.Owner),
				Author: s.cfg.OwnerName(e.Event.Owner), Cover: s.coverName(e.Event.Actor, e.Event.Owner)})
		case e.Event.Type == router.EventSent && e.Event.Details["kind"] == string(router.ToCustomerCSAT) && e.Event.Text != "":
			// The satisfaction question, also when the visitor had left.
			at, err := time.Parse(time.RFC3339Nano, e.Event.Details["said_at"])
			if err != nil {
				at = e.At
			}
			add(said{Kind: router.ToCustomerCSAT, At: at, Body: e.Event.Text})
		case e.Event.Type == router.EventPromised && e.Event.Details["via"] != "":
			by, _ := time.Parse(time.RFC3339, e.Event.Details["by"])
			add(said{Kind: router.ToCustomerPromise, At: e.At, Body: e.Event.Text, PromisedBy: by, Owner: s.cfg.OwnerName(e.Event.Owner),
				Author: s.cfg.OwnerName(e.Event.Owner), Cover: s.coverName(e.Event.Actor, e.Event.Owner)})
		}
	}
	return out
}

// coverName is the name of the colleague who answered for the owner, ""
// when the owner answered (or the actor is no owner: an API caller).
func (s *Server) coverName(actor, owner string) string {
	if actor == owner || actor == "" {
		return ""
	}
	if other := s.cfg.OwnerName(actor); other != actor {
		return other
	}
	return ""
}
