package daemon

import (
	"context"
	"fmt"

	"github.com/forgetmenot/forgetmenot/channels/chat"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/texts"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

func init() { componentBuilders = append(componentBuilders, buildChat) }

// buildChat serves the web chat widget and its WebSocket. It needs nothing
// configured, so the demo works out of the box.
func buildChat(d Deps) (*Component, error) {
	cfg := d.Config
	if !cfg.ChatEnabled {
		return nil, nil
	}
	tx, err := loadChatTexts(cfg.ChatTemplates)
	if err != nil {
		return nil, err
	}
	dir := d.Router.Directory()
	s, err := chat.New(chat.Config{
		Queue: d.Ingest, State: d.Store.State("chat"),
		History:  chatHistory{store: d.Store, router: d.Router},
		Receipts: d.Router, Texts: tx,
		Expect: func() router.Expectation { return d.Router.Expect(router.ChannelChat) },
		OwnerName: func(id string) string {
			if o, ok := dir.Owner(id); ok && o.Name != "" {
				return o.Name
			}
			return id
		},
		AllowedOrigins: cfg.ChatAllowedOrigins, MaxMessageBytes: cfg.ChatMaxMessageBytes,
		RatePerMinute: cfg.ChatRatePerMinute, IPRatePerMinute: cfg.ChatIPRatePerMinute,
		MaxConnections: cfg.ChatMaxConnections, MaxConnectionsPerIP: cfg.ChatMaxConnectionsPerIP,
		SessionsPerIPPerMinute: cfg.ChatSessionsPerIPPerMinute,
		HelloTimeout:           cfg.ChatHelloTimeout.D(), IdleTimeout: cfg.ChatIdleTimeout.D(),
		UnseenAfter: cfg.ChatUnseenEmailAfter.D(),
		Metrics:     d.Metrics,
		Logger:      d.Log.With("component", "chat"),
	})
	if err != nil {
		return nil, fmt.Errorf("web chat: %w", err)
	}
	email := func() chat.CustomerSender {
		if snd := d.Sender(router.ChannelEmail); snd != nil {
			return snd
		}
		return nil
	}
	return &Component{
		Name: "chat", Channel: router.ChannelChat, Sender: s.Sender(email),
		Routes: s.Routes(), Run: s.Run,
	}, nil
}

// loadChatTexts reads the shipped chat texts with the operator's directory
// (if any) laid over them.
func loadChatTexts(dir string) (*texts.Set, error) {
	tx, err := texts.LoadWithOverrides(configs.ShippedChatTemplates(), dir,
		texts.Options{Fallback: "en", Required: chat.RequiredTexts, Sample: chat.SampleTextData})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configs.Var("CHAT_TEMPLATES"), err)
	}
	return tx, nil
}

// chatHistory finds a chat session's complaints: the one its thread key
// points at, and the closed ones it follows up.
type chatHistory struct {
	store  *queue.Store
	router *router.Router
}

// maxHistoryComplaints bounds how far back a returning visitor's history goes.
const maxHistoryComplaints = 5

func (h chatHistory) Conversations(ctx context.Context, threadKey string) ([]chat.Conversation, error) {
	m, err := h.store.ThreadComplaints(ctx, []string{threadKey})
	if err != nil {
		return nil, fmt.Errorf("looking up %s: %w", threadKey, err)
	}
	var out []chat.Conversation
	for id := m[threadKey]; id != "" && len(out) < maxHistoryComplaints; {
		c, tl, err := h.router.Complaint(ctx, id)
		if err != nil {
			// The router's error names the complaint already.
			return nil, fmt.Errorf("the chat's history: %w", err)
		}
		out = append([]chat.Conversation{{Complaint: c, Timeline: tl}}, out...)
		id = c.FollowUpOf
	}
	return out, nil
}
