// Package daemon wires forgetmenot together: configuration, Redis, the router,
// the queue consumers, the channels and the HTTP server, and shuts them down
// in order.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/channels/console"
	"github.com/forgetmenot/forgetmenot/channels/webhook"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/metrics"
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
	inbound  *queue.Consumer
	outbox   *queue.Consumer
	listener net.Listener
	server   *http.Server
}

// New loads the roster and rules, connects to Redis (or starts the embedded
// one) and binds the HTTP listener. Configuration errors are returned here,
// before anything runs.
func New(cfg configs.Config, log *slog.Logger) (*Daemon, error) {
	roster, err := configs.LoadRoster(cfg.OwnersFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configs.Var("OWNERS_FILE"), err)
	}
	rules, err := configs.LoadRouting(cfg.RoutingFile, roster)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configs.Var("ROUTING_FILE"), err)
	}
	keys, err := queue.NewKeys(cfg.Namespace)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configs.Var("NAMESPACE"), err)
	}
	d := &Daemon{cfg: cfg, log: log}
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
	d.router, err = router.New(router.Config{
		Store: d.store, Directory: roster, Rules: rules, ReopenWindow: cfg.ReopenWindow.D(), Logger: log,
	})
	if err != nil {
		d.close()
		return nil, err
	}
	d.metrics = metrics.New(d.store.Stats)
	d.notifier = console.New(log, roster)

	name := cfg.ConsumerNameOrDefault()
	d.inbound = queue.NewConsumer(rdb, keys, queue.ConsumerConfig{
		Stream: keys.Inbound(), Group: queue.RouterGroup, Name: name, Workers: cfg.RouterWorkers,
		Handler: d.route, MaxAttempts: cfg.MaxAttempts, ReclaimIdle: cfg.ReclaimIdle.D(),
		OnDeadLetter: d.inboundDeadLetter, Logger: log,
	})
	d.outbox = queue.NewConsumer(rdb, keys, queue.ConsumerConfig{
		Stream: keys.Outbox(), Group: queue.DeliveryGroup, Name: name, Workers: cfg.DeliveryWorkers,
		Handler: d.deliver, MaxAttempts: cfg.MaxAttempts, ReclaimIdle: cfg.ReclaimIdle.D(),
		OnDeadLetter: d.outboxDeadLetter, Logger: log,
	})

	ingest := webhook.New(webhook.Config{
		Queue: countingQueue{d.store, d.metrics}, Secrets: cfg.WebhookSecret, MaxBytes: cfg.MaxMessageBytes, Logger: log,
	})
	handler := api.New(api.Config{
		Complaints: d.router, DeadLetters: d.store, Store: d.store, Token: cfg.APIToken,
		Ingest: ingest, Metrics: promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{}),
		OnClosed: d.metrics.Closed.Inc, OnReassigned: d.metrics.Reassigned.Inc, Logger: log,
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

	if d.embedded != nil {
		log.Warn("IN-MEMORY MODE: " + configs.Var("REDIS_URL") + " is not set, so complaints live in an embedded Redis inside this process and are LOST when it stops. Set it (redis://host:6379/0) for real use.")
	}
	log.Info("forgetmenot starting",
		"http", d.listener.Addr().String(), "redis", redactURL(redisURL), "namespace", cfg.Namespace,
		"owners", len(roster.Owners()), "teams", len(roster.TeamIDs()), "rules", len(rules.Rules), "consumer", name)
	return d, nil
}

// Addr is the address the HTTP server listens on.
func (d *Daemon) Addr() string { return d.listener.Addr().String() }

// Router exposes the router (for tests and embedding).
func (d *Daemon) Router() *router.Router { return d.router }

// Store exposes the store (for tests and embedding).
func (d *Daemon) Store() *queue.Store { return d.store }

// SetNotifier replaces the console notifier; call before Run.
func (d *Daemon) SetNotifier(n Notifier) { d.notifier = n }

// Run serves until ctx is cancelled, then shuts down in order: stop intake
// (in-flight HTTP requests finish), let the consumers finish the entries they
// are handling (unstarted ones stay pending for takeover), close Redis.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.close()
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var work sync.WaitGroup
	work.Go(func() { _ = d.inbound.Run(workCtx) })
	work.Go(func() { _ = d.outbox.Run(workCtx) })

	served := make(chan error, 1)
	go func() { served <- d.server.Serve(d.listener) }()
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("http server: %w", err)
		}
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
	var msg router.Message
	if err := json.Unmarshal(del.Data, &msg); err != nil {
		return router.Permanent(fmt.Errorf("inbound entry %s is not a message: %w", del.ID, err))
	}
	out, err := d.router.Route(ctx, msg, del)
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
	var out router.Outgoing
	if err := json.Unmarshal(del.Data, &out); err != nil {
		return router.Permanent(fmt.Errorf("outbox entry %s is not decodable: %w", del.ID, err))
	}
	if out.Notification == nil {
		return router.Permanent(fmt.Errorf("outbox entry %s has nothing to deliver", del.ID))
	}
	err := d.notifier.Notify(ctx, *out.Notification)
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

func (d *Daemon) inboundDeadLetter(ctx context.Context, del *queue.Delivery, cause error) {
	d.metrics.DeadLettered.WithLabelValues("inbound").Inc()
	d.log.Error("inbound message moved to the dead letters: it is NOT on a complaint; inspect with `forgetmenot deadletters list`",
		"entry", del.ID, "attempts", del.Attempt+1, "err", cause)
}

func (d *Daemon) outboxDeadLetter(ctx context.Context, del *queue.Delivery, cause error) {
	d.metrics.DeadLettered.WithLabelValues("outbox").Inc()
	var out router.Outgoing
	if json.Unmarshal(del.Data, &out) != nil || out.Notification == nil {
		d.log.Error("undecodable outbox entry moved to the dead letters", "entry", del.ID, "err", cause)
		return
	}
	n := out.Notification
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

func (c countingQueue) Enqueue(ctx context.Context, msg router.Message) (string, bool, error) {
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

// redactURL drops credentials from a URL before it is logged.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	u.User = nil
	return u.String()
}
