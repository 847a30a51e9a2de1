package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/metrics"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/prometheus/client_golang/prometheus"
)

// CustomerSender writes to customers through one channel. An error marked
// router.Permanent is not retried (the owner is told instead); any other error
// is retried with backoff.
type CustomerSender interface {
	Send(ctx context.Context, m router.CustomerMessage) (router.Sent, error)
}

// Component is a channel or integration plugged into the daemon. Every field
// is optional.
type Component struct {
	Name string
	// Channel and Sender: the component writes to this channel's customers.
	Channel router.Channel
	Sender  CustomerSender
	// Notifier tells staff; the first component that has one replaces the
	// console notifier.
	Notifier Notifier
	// Routes are mounted on the daemon's HTTP server (pattern → handler, in
	// net/http ServeMux syntax). They carry their own authentication.
	Routes map[string]http.Handler
	// Run works in the background until ctx ends (an IMAP IDLE loop, a Slack
	// socket). It should log and retry its own failures; a returned error is
	// logged.
	Run func(ctx context.Context) error
	// Check reports a problem no retry fixes (revoked token, unreachable
	// server) for /readyz details; nil means fine.
	Check func(ctx context.Context) error
}

// Deps is what a component may use of the daemon.
type Deps struct {
	Config configs.Config
	Log    *slog.Logger
	// Ingest queues inbound customer messages, idempotently by channel and
	// source id.
	Ingest interface {
		Enqueue(ctx context.Context, msg router.Message) (id string, duplicate bool, err error)
	}
	Router *router.Router
	Store  *queue.Store
	// Metrics registers a component's own collectors.
	Metrics prometheus.Registerer
	// Counters are the daemon's metrics, for a component that counts into
	// series every daemon exports (Slack's fallback routes).
	Counters *metrics.Metrics
	// APIAccess protects a component's management routes like the /v1 API.
	APIAccess api.Access
	// Sender returns the sender of another channel (e-mail, to reach a chat
	// visitor who left), or nil.
	Sender func(router.Channel) CustomerSender
	// LayoutReady is closed once the stored data has been migrated to this
	// version's key layout; a component's Run that changes complaints waits
	// for it (nil: ready).
	LayoutReady <-chan struct{}
}

// componentBuilders build the configured components; a builder returns nil
// when its component is not configured. Channels register here.
var componentBuilders []func(Deps) (*Component, error)

// senders resolves which channel reaches a complaint's customer: the channel
// the complaint came by, or e-mail when that channel cannot answer and the
// customer left an address.
type senders map[router.Channel]CustomerSender

func (s senders) Reach(c router.Complaint) (router.Channel, error) {
	if _, ok := s[c.Channel]; ok {
		return c.Channel, nil
	}
	if _, ok := s[router.ChannelEmail]; ok && c.Customer.Email != "" {
		return router.ChannelEmail, nil
	}
	if c.Customer.Email != "" {
		return "", fmt.Errorf("complaint %s came by %s, which cannot carry replies, and e-mail is not configured (SMTP), so %s cannot be written to", c.ID, c.Channel, c.Customer.Email)
	}
	return "", fmt.Errorf("complaint %s came by %s, which cannot carry replies, and the customer left no e-mail address", c.ID, c.Channel)
}

func (s senders) get(ch router.Channel) CustomerSender { return s[ch] }
