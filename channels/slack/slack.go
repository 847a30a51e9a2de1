// Package slack is forgetmenot's staff channel: it tells owners about their
// complaints in Slack (one DM thread per complaint, its top message kept
// current) and carries out what they do there (buttons, modals, notes typed
// in the thread, the /complaints command) through the router.
//
// It talks to Slack through slack-go; durable bookkeeping (which message is a
// complaint's thread, which notification was already posted, which action was
// already handled) lives behind the small State interface, so a retried
// delivery updates instead of posting twice.
package slack

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	slackgo "github.com/slack-go/slack"
	"sync"
)

// State is the durable key-value store the channel keeps its bookkeeping in
// (thread timestamps, posted notifications, handled actions).
type State interface {
	Get(ctx context.Context, k string) (value string, found bool, err error)
	Set(ctx context.Context, k, value string, ttl time.Duration) error
	// Claim stores value under k only if k is free and reports whether it did.
	Claim(ctx context.Context, k, value string, ttl time.Duration) (bool, error)
	// Delete frees k (a claim whose work failed, so a retry can claim it).
	Delete(ctx context.Context, k string) error
}

// Complaints is what the channel uses of the router: reading complaints and
// the lifecycle steps staff take from Slack.
type Complaints interface {
	Complaint(ctx context.Context, id string) (router.Complaint, []router.Entry, error)
	Complaints(ctx context.Context, f router.Filter) ([]router.Complaint, error)
	Owners(ctx context.Context) ([]router.OwnerStatus, error)
	Acknowledge(ctx context.Context, id, actor string) (router.Complaint, error)
	Reply(ctx context.Context, id, actor, body string) (router.Complaint, error)
	Promise(ctx context.Context, id, actor string, by time.Time, note string, tellCustomer bool) (router.Complaint, error)
	CloseWith(ctx context.Context, id, actor string, closing router.Closing) (router.Complaint, error)
	Reassign(ctx context.Context, id, actor, to, reason string) (router.Complaint, error)
	AddNote(ctx context.Context, id, actor, text, key string) (router.Complaint, error)
	MayAct(c router.Complaint, ownerID string) bool
	// Reach says by which channel a reply reaches the customer, or why
	// none can.
	Reach(c router.Complaint) (router.Channel, error)
	Directory() router.Directory
	// OwnerTimeZone is the zone of the owner's calendar: where their
	// worklist's "today" is.
	OwnerTimeZone(owner string) *time.Location
	// CustomerHistory is the customer's other complaints: the newest few
	// and the true count.
	CustomerHistory(ctx context.Context, c router.Complaint, limit int) (router.History, error)
	// RecordNotificationRoute puts on the timeline which fallback route
	// reached the recipient of a notification.
	RecordNotificationRoute(ctx context.Context, complaintID, notificationID, route, cause string) error
	// SetAway and Back record an owner's absence exactly as the API does.
	SetAway(ctx context.Context, a router.Absence, actor string) (router.Absence, error)
	Back(ctx context.Context, owner, actor string) error
}

// StaffMailer sends a plain e-mail to a member of staff (the last route of a
// notification Slack refused). The daemon's SMTP sender provides it.
type StaffMailer interface {
	MailStaff(ctx context.Context, to, subject, body string) error
}

// Config wires the Slack channel.
type Config struct {
	// BotToken (xoxb-…) is required; AppToken (xapp-…) is needed for Socket
	// Mode; SigningSecret for HTTP mode.
	BotToken      string
	AppToken      string
	SigningSecret string
	// APIURL overrides Slack's Web API base URL (tests).
	APIURL string
	// LeadChannel, when set, receives escalations and over-capacity notices
	// (a channel id such as C0123ABC; the app must be invited to it).
	LeadChannel string
	Complaints  Complaints
	State       State
	Log         *slog.Logger
	// Pace is the least time between two messages posted to one Slack
	// channel (default 1s, Slack's documented rate for chat.postMessage).
	Pace time.Duration
	// OnPermanentError is told the Slack error code of every failure no retry
	// fixes (for a metric).
	OnPermanentError func(code string)
	// Categories are the root causes offered when closing (empty: free
	// text).
	Categories []string
	// Mailer, when set, is the last fallback route: a plain e-mail to the
	// owner's roster address when Slack refuses a notification for good.
	Mailer StaffMailer
	// LinkBase is the daemon's public address; fallback messages link to
	// the complaint under it (empty: the CLI command only).
	LinkBase string
	// OnFallback is told the route (slack_plain, lead_channel, email) of
	// every notification that reached its recipient by a fallback route;
	// OnUndelivered the kind of every one that reached them by none (an
	// alert: it goes to the dead letters).
	OnFallback    func(route string)
	OnUndelivered func(kind string)
	// HomeDebounce is how long a change waits before the App Home of its
	// owner (and their lead) is published again, so a burst of changes
	// publishes once (default 2s).
	HomeDebounce time.Duration
	// SocketWorkers bounds the Socket Mode events handled at once (default
	// 8); events about one complaint are handled in order.
	SocketWorkers int
	// Clock is for tests; default time.Now.
	Clock func() time.Time
	// HTTPTimeout bounds every Slack Web API call (default 20s), so a Slack
	// that does not answer fails the call, and the outbox retries, instead
	// of holding a worker forever.
	HTTPTimeout time.Duration
}

// Slack is the channel: a Notifier for the outbox and the handlers for what
// staff do in Slack.
type Slack struct {
	cfg    Config
	api    *slackgo.Client
	log    *slog.Logger
	people *people
	pace   *pacer
	health *health
	now    func() time.Time
	work   waitGroup
	// stopped (under stopMu) is set when Stop begins.
	stopMu  sync.Mutex
	stopped bool
	home    *debouncer
}

// New builds the channel. It does not contact Slack.
func New(cfg Config) (*Slack, error) {
	switch {
	case cfg.BotToken == "":
		return nil, errors.New("slack: a bot token is required")
	case cfg.Complaints == nil || cfg.State == nil:
		return nil, errors.New("slack: complaints and state are required")
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = 20 * time.Second
	}
	opts := []slackgo.Option{slackgo.OptionHTTPClient(&http.Client{Timeout: cfg.HTTPTimeout})}
	if cfg.AppToken != "" {
		opts = append(opts, slackgo.OptionAppLevelToken(cfg.AppToken))
	}
	if cfg.APIURL != "" {
		u := cfg.APIURL
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		opts = append(opts, slackgo.OptionAPIURL(u))
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Pace <= 0 {
		cfg.Pace = time.Second
	}
	if cfg.OnPermanentError == nil {
		cfg.OnPermanentError = func(string) {}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.OnFallback == nil {
		cfg.OnFallback = func(string) {}
	}
	if cfg.OnUndelivered == nil {
		cfg.OnUndelivered = func(string) {}
	}
	if cfg.HomeDebounce <= 0 {
		cfg.HomeDebounce = 2 * time.Second
	}
	if cfg.SocketWorkers <= 0 {
		cfg.SocketWorkers = 8
	}
	api := slackgo.New(cfg.BotToken, opts...)
	log := cfg.Log.With("component", "slack")
	s := &Slack{
		cfg: cfg, api: api, log: log,
		people: newPeople(api, cfg.Complaints.Directory(), cfg.Clock),
		pace:   newPacer(cfg.Pace),
		health: &health{},
		now:    cfg.Clock,
		home:   newDebouncer(cfg.HomeDebounce),
	}
	return s, nil
}

// API exposes the Slack Web API client (for Socket Mode and tests).
func (s *Slack) API() *slackgo.Client { return s.api }

// How long bookkeeping is kept. Threads live as long as a complaint might be
// reopened or followed up; handled-action markers only need to outlive
// Slack's retries.
const (
	threadTTL  = 400 * 24 * time.Hour
	postedTTL  = 60 * 24 * time.Hour
	handledTTL = 24 * time.Hour
)
