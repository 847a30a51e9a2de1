package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/forgetmenot/forgetmenot/channels/slack/blockkit"
	slackgo "github.com/slack-go/slack"
)

// Message is a message payload: the fallback text (notifications, screen
// readers) and the blocks.
type Message struct {
	Text   string
	Blocks []slackgo.Block
}

// Validate checks a payload against Slack's documented limits (blockkit)
// before it is sent. It takes a Message, a *slackgo.Msg (a slash command's
// answer), a slackgo.ModalViewRequest or a slackgo.HomeTabViewRequest. The
// error is a Slack error response with Slack's code (invalid_blocks,
// invalid_arguments, no_text, msg_too_long) and the messages naming each
// broken path, so it is handled exactly like Slack's own refusal.
func Validate(payload any) error {
	var err error
	switch p := payload.(type) {
	case Message:
		err = checkMessage(p.Text, p.Blocks)
	case *Message:
		err = checkMessage(p.Text, p.Blocks)
	case *slackgo.Msg:
		err = checkMessage(p.Text, p.Blocks.BlockSet)
	case slackgo.ModalViewRequest, *slackgo.ModalViewRequest, slackgo.HomeTabViewRequest, *slackgo.HomeTabViewRequest:
		raw, merr := json.Marshal(p)
		if merr != nil {
			return fmt.Errorf("slack: encoding a view: %w", merr)
		}
		err = blockkit.CheckView(raw)
	default:
		return fmt.Errorf("slack: cannot validate a %T", payload)
	}
	var be *blockkit.Error
	if errors.As(err, &be) {
		return slackgo.SlackErrorResponse{Err: be.Code, ResponseMetadata: slackgo.ResponseMetadata{Messages: be.Messages}}
	}
	return err
}

func checkMessage(text string, blocks []slackgo.Block) error {
	var raw []byte
	if len(blocks) > 0 {
		var err error
		if raw, err = json.Marshal(slackgo.Blocks{BlockSet: blocks}); err != nil {
			return fmt.Errorf("slack: encoding blocks: %w", err)
		}
	}
	return blockkit.CheckMessage(text, raw)
}

// The Web API calls that carry payloads: each validates first, so nothing
// Slack would refuse is sent (and a refusal is handled the same way whether
// Slack or the validator said it).

func msgOptions(m Message) []slackgo.MsgOption {
	opts := []slackgo.MsgOption{slackgo.MsgOptionText(m.Text, false)}
	if len(m.Blocks) > 0 {
		opts = append(opts, slackgo.MsgOptionBlocks(m.Blocks...))
	}
	return opts
}

// postMessage posts m to channel, in the thread threadTS when set, and
// returns the message's timestamp.
func (s *Slack) postMessage(ctx context.Context, channel, threadTS string, m Message) (string, error) {
	if err := Validate(m); err != nil {
		s.log.Error("refusing to send a message Slack would reject; this is a bug", "channel", channel, "err", err)
		return "", err
	}
	opts := msgOptions(m)
	if threadTS != "" {
		opts = append(opts, slackgo.MsgOptionTS(threadTS))
	}
	_, ts, err := s.api.PostMessageContext(ctx, channel, opts...)
	return ts, err
}

func (s *Slack) updateMessage(ctx context.Context, channel, ts string, m Message) error {
	if err := Validate(m); err != nil {
		s.log.Error("refusing to send a message update Slack would reject; this is a bug", "channel", channel, "err", err)
		return err
	}
	_, _, _, err := s.api.UpdateMessageContext(ctx, channel, ts, msgOptions(m)...)
	return err
}

func (s *Slack) postEphemeral(ctx context.Context, channel, user string, m Message) error {
	if err := Validate(m); err != nil {
		s.log.Error("refusing to send an ephemeral message Slack would reject; this is a bug", "channel", channel, "err", err)
		return err
	}
	_, err := s.api.PostEphemeralContext(ctx, channel, user, msgOptions(m)...)
	return err
}

func (s *Slack) openView(ctx context.Context, trigger string, v slackgo.ModalViewRequest) error {
	if err := Validate(v); err != nil {
		s.log.Error("refusing to open a modal Slack would reject; this is a bug", "view", v.CallbackID, "err", err)
		return err
	}
	_, err := s.api.OpenViewContext(ctx, trigger, v)
	return err
}

func (s *Slack) publishView(ctx context.Context, user string, v slackgo.HomeTabViewRequest) error {
	if err := Validate(v); err != nil {
		s.log.Error("refusing to publish an App Home Slack would reject; this is a bug", "user", user, "err", err)
		return err
	}
	_, err := s.api.PublishViewContext(ctx, slackgo.PublishViewContextRequest{UserID: user, View: v})
	return err
}

// answer is a slash command's answer, validated: one Slack would refuse
// becomes its plain text, which always passes.
func (s *Slack) answer(m *slackgo.Msg) *slackgo.Msg {
	if err := Validate(m); err != nil {
		s.log.Error("a /complaints answer Slack would reject; sending its text only (a bug)", "err", err)
		return &slackgo.Msg{ResponseType: m.ResponseType, Text: fit(orDefault(m.Text, "Sorry, that answer could not be shown."), blockkit.MaxMessageText)}
	}
	return m
}
