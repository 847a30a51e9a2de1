// Package daemon wires forgetmenot together: configuration, Redis, the router,
// the queue consumers, the channels and the HTTP server, and shuts them down
// in order.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/channels/console"
	"github.com/forgetmenot/forgetmenot/channels/slack"
	"github.com/forgetmenot/forgetmenot/channels/webhook"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/cleantext"
	"github.com/forgetmenot/forgetmenot/internal/httpx"
	"github.com/forgetmenot/forgetmenot/internal/metrics"
	"github.com/forgetmenot/forgetmenot/internal/version"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Notifier tells staff about a complaint. An error marked router.Permanent is
// not retried; any other error is, with backoff.
type Notifier interface {
	Notify(ctx context.Context, n router.Notification) error
}

// Daemon is a running forgetmenot: build it with New, then Run it.
type Daemon struct {
	cfg      configs.Config
	log      *slog.Logger
	embedded *queue.Embedded
	redis    io.Closer
	store    *queue.Store
	router   *router.Router
	metrics  *metrics.Metrics
	notifier Notifier
	// customNotifier is set once a component supplied the notifier.
	customNotifier bool
	// senders is filled once the components are built; the router holds it
	// from the start to answer whether a customer can be reached.
	senders    senders
	components []*Component
	inbound    *queue.Consumer
	outbox     *queue.Consumer
	listener   net.Listener
	server     *http.Server
	// layoutReady is closed when Run has migrated the stored data.
	layoutReady chan struct{}
	// refused carries why the stored data cannot be used by this version
	// (a newer one has run on it): Run stops with it.
	refused chan error
}

// New loads the roster and rules, connects to Redis (or starts the embedded
// one) and binds the HTTP listener. Configuration errors are returned here,
// before anything runs.
func New(cfg configs.Config, log *slog.Logger) (*Daemon, error) {
	if err := checkExposure(context.Background(), cfg); err != nil {
		return nil, err
	}
	proxies, err := httpx.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configs.Var("TRUSTED_PROXIES"), err)
	}
	access := api.Access{Token: cfg.APIToken, Open: cfg.InsecureOpenAPI}
	set, err := loadSettings(cfg)
	if err != nil {
		return nil, err
	}
	roster, rules := set.roster, set.rules
	keys, err := queue.NewKeys(cfg.Namespace)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configs.Var("NAMESPACE"), err)
	}
	d := &Daemon{cfg: cfg, log: log, senders: senders{}, layoutReady: make(chan struct{}), refused: make(chan error, 1)}
	redisURL := cfg.RedisURL
	if redisURL == "" {
		d.embedded, err = queue.StartEmbedded()
		if err != nil {
			return nil, err
		}
		redisURL = d.embedded.URL()
	}
	rdb, err := queue.Connect(redisURL)
	if err != nil {
		d.close()
		return nil, fmt.Errorf("%s: %w", configs.Var("REDIS_URL"), err)
	}
	d.redis = rdb
	d.store = queue.NewStore(rdb, keys, cfg.DedupRetention.D())
	d.store.SetOnceRetention(cfg.OnceRetention.D())
	d.metrics = metrics.New(d.store.Stats)
	d.router, err = router.New(router.Config{
		Store: d.store, Directory: roster, Rules: rules, ReopenWindow: cfg.ReopenWindow.D(),
		Reachability: d.senders, Policy: set.policy, CSAT: set.csat, Logger: log,
		Categories: cfg.CloseCategories(), Digest: digestSchedule(cfg),
		// Counted in the router, so closes and reassignments from every
		// surface (API, CLI, Slack) are counted.
		OnEvent: func(t router.EventType) {
			switch t {
			case router.EventClosed:
				d.metrics.Closed.Inc()
			case router.EventReassigned:
				d.metrics.Reassigned.Inc()
			case router.EventBreached:
				d.metrics.Breaches.WithLabelValues(metrics.BreachDeadline).Inc()
			case router.EventPromiseBroken:
				d.metrics.Breaches.WithLabelValues(metrics.BreachPromise).Inc()
			}
		},
	})
	if err != nil {
		d.close()
		return nil, err
	}
	d.metrics.WatchAccountability(d.store.OpenFigures, d.router.Directory(), time.Now)
	d.notifier = console.New(log, d.router.Directory())

	name := cfg.ConsumerNameOrDefault()
	d.inbound = queue.NewConsumer(rdb, keys, queue.ConsumerConfig{
		Stream: keys.Inbound(), Group: queue.RouterGroup, Name: name, Workers: cfg.RouterWorkers,
		Handler: d.route, MaxAttempts: cfg.MaxAttempts, ReclaimIdle: cfg.ReclaimIdle.D(),
		OnDeadLetter: d.inboundDeadLetter, Logger: log,
		ExpireIdle: cfg.ConsumerExpiry.D(), OnConsumerRemoved: func(string) { d.metrics.ConsumersRemoved.WithLabelValues("inbound").Inc() },
	})
	d.outbox = queue.NewConsumer(rdb, keys, queue.ConsumerConfig{
		Stream: keys.Outbox(), Group: queue.DeliveryGroup, Name: name, Workers: cfg.DeliveryWorkers,
		Handler: d.deliver, MaxAttempts: cfg.MaxAttempts, ReclaimIdle: cfg.ReclaimIdle.D(), Linger: queue.DefaultDeliveryLinger,
		OnDeadLetter: d.outboxDeadLetter, Logger: log,
		ExpireIdle: cfg.ConsumerExpiry.D(), OnConsumerRemoved: func(string) { d.metrics.ConsumersRemoved.WithLabelValues("outbox").Inc() },
	})

	intake := countingQueue{d.store, d.metrics}
	if err := d.buildComponents(Deps{Config: cfg, Log: log, Ingest: intake, Router: d.router, Store: d.store, Metrics: d.metrics.Registry, Counters: d.metrics, Sender: d.senders.get, APIAccess: access, LayoutReady: d.layoutReady}); err != nil {
		d.close()
		return nil, err
	}
	routes := map[string]http.Handler{}
	checks := map[string]func(context.Context) error{}
	health := map[string]func(context.Context) error{} // every component, for forgetmenot_component_up
	for _, c := range d.components {
		health[c.Name] = c.Check
		for pattern, h := range c.Routes {
			routes[pattern] = h
		}
		if c.Check != nil {
			checks[c.Name] = c.Check
		}
	}
	d.metrics.WatchComponents(health)
	d.metrics.Prepare(intakeChannels(cfg), slices.Sorted(maps.Keys(d.senders)), slack.FallbackRoutes)
	ingest := webhook.New(webhook.Config{
		Queue: intake, Secrets: cfg.WebhookSecret, Open: cfg.InsecureOpenWebhook, MaxBytes: cfg.MaxMessageBytes, Logger: log,
	})
	handler := api.New(api.Config{
		Complaints: d.router, DeadLetters: d.store, Store: d.store, Access: access, TrustedProxies: proxies,
		Ingest: ingest, Metrics: promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{}), MetricsToken: cfg.MetricsToken,
		Routes: routes, Checks: checks,
		Logger: log,
	})
	d.server = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	d.listener, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		d.close()
		return nil, fmt.Errorf("%s: %w", configs.Var("HTTP_ADDR"), err)
	}

	warnExposure(log, cfg, d.listener.Addr().String())
	if d.embedded != nil {
		log.Warn("IN-MEMORY MODE: " + configs.Var("REDIS_URL") + " is not set, so complaints live in an embedded Redis inside this process and are LOST when it stops. Set it (redis://host:6379/0) for real use.")
	}
	log.Info("forgetmenot starting", "version", version.String(),
		"http", d.listener.Addr().String(), "redis", configs.RedactURL(redisURL), "namespace", cfg.Namespace,
		"owners", len(roster.Owners()), "teams", len(roster.TeamIDs()), "rules", len(rules.Rules), "consumer", name)
	return d, nil
}

// Addr is the address the HTTP server listens on.
func (d *Daemon) Addr() string { return d.listener.Addr().String() }

// Router exposes the router (for tests and embedding).
func (d *Daemon) Router() *router.Router { return d.router }

// Store exposes the store (for tests and embedding).
func (d *Daemon) Store() *queue.Store { return d.store }

// buildComponents builds every configured channel and integration and plugs
// in their senders and notifier.
func (d *Daemon) buildComponents(deps Deps) error {
	for _, build := range componentBuilders {
		c, err := build(deps)
		if err != nil {
			return err
		}
		if c == nil {
			continue
		}
		d.components = append(d.components, c)
		if c.Sender != nil {
			if _, dup := d.senders[c.Channel]; dup {
				return fmt.Errorf("two components write to %s customers", c.Channel)
			}
			d.senders[c.Channel] = c.Sender
		}
		if c.Notifier != nil && !d.customNotifier {
			d.notifier, d.customNotifier = c.Notifier, true
		}
		d.log.Info("component enabled", "component", c.Name)
	}
	return nil
}

// AddSender makes the daemon write to a channel's customers through s (for
// tests and embedding); call before Run.
func (d *Daemon) AddSender(ch router.Channel, s CustomerSender) { d.senders[ch] = s }

// SetNotifier replaces the console notifier; call before Run.
func (d *Daemon) SetNotifier(n Notifier) { d.notifier = n }

// migrate brings data of earlier versions to the current key layout,
// retrying until it succeeds; false when ctx ended first.
func (d *Daemon) migrate(ctx context.Context) bool {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		m, err := d.store.Migrate(ctx)
		if err == nil {
			switch {
			case m.Fresh:
			case m.From != m.To:
				d.log.Info("stored data migrated to this version's key layout", "from_layout", m.From, "to_layout", m.To, "complaints_converted", m.ComplaintsConverted, "complaints_compacted", m.ComplaintsCompacted, "breaches_indexed", m.BreachesIndexed)
			case m.ComplaintsConverted > 0 || m.ComplaintsCompacted > 0:
				// The layout was current: a replica of an older version
				// wrote these since.
				d.log.Warn("complaints stored in an earlier layout were converted: a replica of an older version wrote them; stop it", "complaints_converted", m.ComplaintsConverted, "complaints_compacted", m.ComplaintsCompacted, "layout", m.To)
			}
			return true
		}
		if errors.Is(err, queue.ErrNewerLayout) {
			// Nothing this replica would do with such data is right: it
			// stops, and says so, rather than answer on misread complaints.
			d.log.Error("refusing to run: stop this replica and run the newer version", "err", err)
			d.refused <- fmt.Errorf("stored data: %w", err)
			return false
		}
		d.log.Warn("could not migrate the stored data to this version's key layout; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// Run serves until ctx is cancelled, then shuts down in order: stop intake
// (in-flight HTTP requests finish), let the consumers finish the entries they
// are handling (unstarted ones stay pending for takeover), close Redis.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.close()
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var work sync.WaitGroup
	work.Go(func() {
		// Routing writes the current key layout: data of earlier versions
		// is migrated first (retried while Redis is away).
		if d.migrate(workCtx) {
			close(d.layoutReady)
			_ = d.inbound.Run(workCtx)
		}
	})
	work.Go(func() {
		// Deliveries wait for the layout too: a notification another
		// replica queued is read with the complaint as that replica stored
		// it.
		select {
		case <-d.layoutReady:
			_ = d.outbox.Run(workCtx)
		case <-workCtx.Done():
		}
	})
	work.Go(d.reloadOnHangup(workCtx))
	for _, c := range d.components {
		if c.Run != nil {
			work.Go(func() {
				// What components do (timers, retention, intake) waits for
				// the layout check, like routing and delivery.
				select {
				case <-d.layoutReady:
				case <-workCtx.Done():
					return
				}
				if err := c.Run(workCtx); err != nil && workCtx.Err() == nil {
					d.log.Error("component stopped", "component", c.Name, "err", err)
				}
			})
		}
	}

	served := make(chan error, 1)
	go func() { served <- d.server.Serve(d.listener) }()
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("http server: %w", err)
		}
	case runErr = <-d.refused:
	}

	d.log.Info("shutting down: intake stopped, finishing in-flight work", "timeout", d.cfg.ShutdownTimeout.D())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout.D())
	defer cancel()
	if err := d.server.Shutdown(shutdownCtx); err != nil {
		d.log.Warn("http shutdown did not finish in time", "err", err)
	}
	stopWork()
	finished := make(chan struct{})
	go func() { work.Wait(); close(finished) }()
	select {
	case <-finished:
		d.log.Info("shutdown complete")
	case <-shutdownCtx.Done():
		d.log.Warn("shutdown timeout: unfinished entries stay pending and are taken over by another replica or the next start")
	}
	return runErr
}

// Close releases what New acquired (listener, Redis) for a Daemon that is
// not going to Run.
func (d *Daemon) Close() {
	if d.listener != nil {
		_ = d.listener.Close()
	}
	d.close()
}

func (d *Daemon) close() {
	if d.redis != nil {
		_ = d.redis.Close()
	}
	if d.embedded != nil {
		d.embedded.Close()
	}
}

// route is the inbound stream's handler: one message onto one complaint.
func (d *Daemon) route(ctx context.Context, del *queue.Delivery) error {
	msg, err := queue.DecodeMessage(del.Data)
	if err != nil {
		return router.Permanent(fmt.Errorf("inbound entry %s is not a message: %w", del.ID, err))
	}
	out, err := d.router.Route(ctx, msg)
	if err != nil {
		return err
	}
	d.metrics.Routed.WithLabelValues(string(out.Kind)).Inc()
	switch out.Kind {
	case router.OutcomeOpened:
		d.metrics.Opened.Inc()
		if out.OverCapacity {
			d.metrics.OverCapacity.Inc()
		}
	case router.OutcomeReopened:
		d.metrics.Reopened.Inc()
	}
	if out.Kind != router.OutcomeDuplicate {
		d.metrics.RoutingLatency.Observe(time.Since(msg.ReceivedAt).Seconds())
	}
	d.log.Info("message routed", "message", msg.ID, "channel", msg.Channel, "outcome", out.Kind,
		"complaint", out.ComplaintID, "owner", out.Owner, "over_capacity", out.OverCapacity)
	return nil
}

// deliver is the outbox's handler.
func (d *Daemon) deliver(ctx context.Context, del *queue.Delivery) error {
	out, err := queue.DecodeOutgoing(del.Data)
	if err != nil {
		return router.Permanent(fmt.Errorf("outbox entry %s is not decodable: %w", del.ID, err))
	}
	if out.Customer != nil {
		// A mail or post to a customer is not sent twice for a lost
		// acknowledgement: it is acknowledged on its own, at once.
		del.AckNow = true
		return d.sendToCustomer(ctx, *out.Customer)
	}
	if out.Notification == nil {
		return router.Permanent(fmt.Errorf("outbox entry %s has nothing to deliver", del.ID))
	}
	err = d.notifier.Notify(ctx, *out.Notification)
	result := "sent"
	if err != nil {
		result = "retry"
		if router.IsPermanent(err) {
			result = "failed"
		}
	}
	d.metrics.Notifications.WithLabelValues(string(out.Notification.Kind), result).Inc()
	return err
}

// sendToCustomer delivers what staff (or the acknowledgement) said to the
// customer and records it on the complaint. A permanent failure is recorded
// and told to the owner here, so it is not retried.
func (d *Daemon) sendToCustomer(ctx context.Context, m router.CustomerMessage) error {
	via, err := d.senders.Reach(m.Complaint)
	if err != nil {
		return d.undeliverable(ctx, m, router.Permanent(err))
	}
	sent, err := d.senders[via].Send(ctx, m)
	if err != nil {
		if router.IsPermanent(err) {
			return d.undeliverable(ctx, m, err)
		}
		d.metrics.CustomerMessages.WithLabelValues(string(m.Kind), string(via), "retry").Inc()
		return fmt.Errorf("sending %s %s via %s: %w", m.Kind, m.ID, via, err)
	}
	if sent.Via == "" {
		sent.Via = string(via)
	}
	result := "sent"
	if sent.Skipped != "" {
		result = "skipped"
	}
	d.metrics.CustomerMessages.WithLabelValues(string(m.Kind), string(via), result).Inc()
	d.log.Info("customer message "+result, "complaint", m.Complaint.ID, "kind", m.Kind, "via", sent.Via, "ref", sent.Ref, "skipped", sent.Skipped)
	// The message is out; if recording fails the delivery is retried, and the
	// channel's idempotent identifiers keep the customer from a second copy
	// where the channel allows it.
	return d.router.RecordSent(ctx, m, sent)
}

func (d *Daemon) undeliverable(ctx context.Context, m router.CustomerMessage, cause error) error {
	d.metrics.CustomerMessages.WithLabelValues(string(m.Kind), string(m.Complaint.Channel), "failed").Inc()
	d.log.Error("customer message cannot be delivered; the owner is told", "complaint", m.Complaint.ID, "kind", m.Kind, "owner", m.Complaint.Owner, "err", cause)
	if err := d.router.RecordUndeliverable(ctx, m, cause); err != nil {
		return fmt.Errorf("recording that %s could not be delivered: %w", m.ID, err)
	}
	return nil
}

func (d *Daemon) inboundDeadLetter(ctx context.Context, del *queue.Delivery, cause error) {
	d.metrics.DeadLettered.WithLabelValues("inbound").Inc()
	d.log.Error("inbound message moved to the dead letters: it is NOT on a complaint; inspect with `forgetmenot deadletters list`",
		"entry", del.ID, "attempts", del.Attempt+1, "err", cause)
}

func (d *Daemon) outboxDeadLetter(ctx context.Context, del *queue.Delivery, cause error) {
	d.metrics.DeadLettered.WithLabelValues("outbox").Inc()
	out, err := queue.DecodeOutgoing(del.Data)
	if err != nil || (out.Notification == nil && out.Customer == nil) {
		d.log.Error("undecodable outbox entry moved to the dead letters", "entry", del.ID, "err", cause)
		return
	}
	if m := out.Customer; m != nil {
		if err := d.undeliverable(ctx, *m, cause); err != nil {
			d.log.Error("could not record the failed customer message on the complaint", "complaint", m.Complaint.ID, "err", err)
		}
		return
	}
	n := out.Notification
	if n.Complaint.ID == "" {
		// About no one complaint (the complaint-rate alert): there is no
		// timeline to record it on; the log and the dead letter are its record.
		d.log.Error("alert moved to the dead letters", "notification", n.ID, "kind", n.Kind, "recipient", n.Recipient, "err", cause)
		return
	}
	d.log.Error("notification moved to the dead letters", "notification", n.ID, "complaint", n.Complaint.ID, "recipient", n.Recipient, "err", cause)
	what := fmt.Sprintf("%s notification to %s", n.Kind, n.Recipient)
	if err := d.router.RecordDeliveryFailure(ctx, n.Complaint.ID, what, cause); err != nil {
		d.log.Error("could not record the failed notification on the complaint", "complaint", n.Complaint.ID, "err", err)
	}
}

// countingQueue counts ingested and duplicate messages per channel.
type countingQueue struct {
	store   *queue.Store
	metrics *metrics.Metrics
}

// Every channel's messages pass here, so this is where customer text is
// cleaned once (cleantext) before anything stores or shows it.
func (c countingQueue) Enqueue(ctx context.Context, msg router.Message) (string, bool, error) {
	cleantext.Message(&msg)
	id, dup, err := c.store.Enqueue(ctx, msg)
	if err == nil {
		if dup {
			c.metrics.Duplicates.WithLabelValues(string(msg.Channel)).Inc()
		} else {
			c.metrics.Ingested.WithLabelValues(string(msg.Channel)).Inc()
		}
	}
	return id, dup, err
}

// intakeChannels are the channels this configuration takes complaints in
// by: the webhook always, the others when configured.
func intakeChannels(cfg configs.Config) []router.Channel {
	chs := []router.Channel{router.ChannelWebhook}
	if cfg.MailboxesFile != "" {
		chs = append(chs, router.ChannelEmail)
	}
	if cfg.DiscourseURL != "" {
		chs = append(chs, router.ChannelForum)
	}
	if cfg.ChatEnabled {
		chs = append(chs, router.ChannelChat)
	}
	return chs
}
