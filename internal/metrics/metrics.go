// Package metrics defines forgetmenot's Prometheus metrics in one place, so
// the names operators alert on are easy to find and stay stable.
package metrics

import (
	"context"
	"time"

	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the collectors the daemon updates.
type Metrics struct {
	Registry       *prometheus.Registry
	Ingested       *prometheus.CounterVec
	Duplicates     *prometheus.CounterVec
	Routed         *prometheus.CounterVec
	Opened         prometheus.Counter
	Reopened       prometheus.Counter
	Closed         prometheus.Counter
	Reassigned     prometheus.Counter
	OverCapacity   prometheus.Counter
	RoutingLatency prometheus.Histogram
	Notifications  *prometheus.CounterVec
	// CustomerMessages counts what was said to customers, by kind, channel
	// and result (sent, skipped, retry, failed).
	CustomerMessages *prometheus.CounterVec
	DeadLettered     *prometheus.CounterVec
	// Breaches counts deadlines missed (kind deadline: answer or
	// resolution) and promises broken (kind promise).
	Breaches *prometheus.CounterVec
	// Reloads counts roster and rules reloads by result (ok, failed);
	// ReloadOK is 1 when the last one succeeded (or none was tried).
	Reloads  *prometheus.CounterVec
	ReloadOK prometheus.Gauge
	// ConsumersRemoved counts consumers of gone replicas removed from a
	// stream's consumer group.
	ConsumersRemoved *prometheus.CounterVec
	// SlackFallbacks counts notifications Slack refused that reached their
	// recipient by a fallback route, per route; Undelivered those that
	// reached them by no route, per kind. The Slack component counts them;
	// every daemon exports them (0 without Slack), so one dashboard and one
	// set of alerts fit every deployment.
	SlackFallbacks *prometheus.CounterVec
	Undelivered    *prometheus.CounterVec
}

// New registers every metric on a fresh registry, plus a collector that reads
// queue depths from Redis at scrape time.
func New(stats func(context.Context) (queue.Stats, error)) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		Ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "forgetmenot_messages_ingested_total", Help: "Inbound messages durably queued, per channel.",
		}, []string{"channel"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "forgetmenot_messages_duplicate_total", Help: "Inbound messages refused as already queued (same channel and source id).",
		}, []string{"channel"}),
		Routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "forgetmenot_messages_routed_total", Help: "Messages routed, by outcome: opened, attached, reopened, delivery_report (a bounce recorded on its complaint), duplicate.",
		}, []string{"outcome"}),
		Opened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "forgetmenot_complaints_opened_total", Help: "Complaints opened (each with an owner).",
		}),
		Reopened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "forgetmenot_complaints_reopened_total", Help: "Closed complaints reopened by a customer message within the reopen window.",
		}),
		Closed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "forgetmenot_complaints_closed_total", Help: "Complaints closed.",
		}),
		Reassigned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "forgetmenot_complaints_reassigned_total", Help: "Explicit reassignments.",
		}),
		OverCapacity: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "forgetmenot_assignments_over_capacity_total", Help: "New complaints assigned while every owner in the team was at capacity.",
		}),
		RoutingLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "forgetmenot_routing_latency_seconds",
			Help:    "From a message being queued to it being on a complaint with an owner.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		Notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "forgetmenot_notifications_total", Help: "Outbox deliveries by kind and result (sent, retry, failed).",
		}, []string{"kind", "result"}),
		CustomerMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "forgetmenot_customer_messages_total", Help: "Acknowledgements, replies and promises to customers by kind, channel and result (sent, skipped, retry, failed).",
		}, []string{"kind", "channel", "result"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "forgetmenot_dead_lettered_total", Help: "Entries moved to the dead letters, per stream (inbound, outbox).",
		}, []string{"stream"}),
	}
	m.Breaches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "forgetmenot_breaches_total", Help: "Deadlines missed (kind deadline: answer or resolution) and promises broken (kind promise); the owner stays, the lead is alerted.",
	}, []string{"kind"})
	m.Reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "forgetmenot_config_reloads_total", Help: "Roster and routing-rule reloads (SIGHUP) by result (ok, failed: the previous files stay in force).",
	}, []string{"result"})
	m.ReloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "forgetmenot_config_last_reload_successful", Help: "1 when the last reload of the roster and rules succeeded (or none was asked for), 0 when it was refused.",
	})
	m.ReloadOK.Set(1)
	m.ConsumersRemoved = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "forgetmenot_consumers_removed_total", Help: "Consumers of replicas that are gone (idle, nothing pending) removed from a stream's consumer group, per stream.",
	}, []string{"stream"})
	m.SlackFallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "forgetmenot_slack_fallback_total",
		Help: "Notifications Slack refused that reached their recipient by a fallback route (slack_plain, lead_channel, email).",
	}, []string{"route"})
	m.Undelivered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "forgetmenot_notifications_undelivered_total",
		Help: "Notifications that reached their recipient by no route at all (Slack, plain DM, lead channel, e-mail): each is in the dead letters. Alert on any increase.",
	}, []string{"kind"})
	reg.MustRegister(m.Ingested, m.Duplicates, m.Routed, m.Opened, m.Reopened, m.Closed, m.Reassigned,
		m.OverCapacity, m.RoutingLatency, m.Notifications, m.CustomerMessages, m.DeadLettered,
		m.Breaches, m.Reloads, m.ReloadOK, m.ConsumersRemoved, m.SlackFallbacks, m.Undelivered,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		// go_build_info{path,version,checksum}: which build each replica runs.
		collectors.NewBuildInfoCollector(),
		&queueCollector{stats: stats})
	return m
}

// Label values known in advance. Every series an alert or dashboard reads
// is created at start with 0 (Prepare), so "no data" never hides a problem
// and increase() sees the first event.
var (
	// Streams are the queue streams, as they appear in the stream label.
	Streams = []string{"inbound", "outbox"}
	// Results of a delivery to staff or customers.
	notificationResults = []string{"sent", "retry", "failed"}
	customerResults     = []string{"sent", "skipped", "retry", "failed"}
	notificationKinds   = []router.NotificationKind{
		router.NotifyAssigned, router.NotifyMessage, router.NotifyReopened, router.NotifyReassigned,
		router.NotifyClosed, router.NotifyAcknowledged, router.NotifyReplied, router.NotifyPromised,
		router.NotifyReminder, router.NotifyEscalation, router.NotifyDeliveryFailed, router.NotifyComplaintRate,
		router.NotifyMerged, router.NotifyDigest, router.NotifyErased,
	}
	customerKinds = []router.CustomerMessageKind{
		router.ToCustomerAcknowledgement, router.ToCustomerReply, router.ToCustomerPromise, router.ToCustomerCSAT,
	}
	outcomes = []router.OutcomeKind{
		router.OutcomeOpened, router.OutcomeAttached, router.OutcomeReopened, router.OutcomeDuplicate, router.OutcomeDeliveryReport,
	}
	// BreachDeadline and BreachPromise are the kind label of Breaches.
	BreachDeadline, BreachPromise = "deadline", "promise"
)

// Prepare creates every labelled series with 0: ingest and duplicates for
// each channel that takes complaints in, customer messages for each channel
// that writes to customers, Slack's fallback routes (fallbackRoutes, the
// routes the Slack channel tries), and every stream, kind, outcome and
// result.
func (m *Metrics) Prepare(intake, senders []router.Channel, fallbackRoutes []string) {
	for _, ch := range intake {
		m.Ingested.WithLabelValues(string(ch))
		m.Duplicates.WithLabelValues(string(ch))
	}
	for _, ch := range senders {
		for _, k := range customerKinds {
			for _, r := range customerResults {
				m.CustomerMessages.WithLabelValues(string(k), string(ch), r)
			}
		}
	}
	for _, k := range notificationKinds {
		for _, r := range notificationResults {
			m.Notifications.WithLabelValues(string(k), r)
		}
		m.Undelivered.WithLabelValues(string(k))
	}
	for _, r := range fallbackRoutes {
		m.SlackFallbacks.WithLabelValues(r)
	}
	for _, o := range outcomes {
		m.Routed.WithLabelValues(string(o))
	}
	for _, s := range Streams {
		m.DeadLettered.WithLabelValues(s)
		m.ConsumersRemoved.WithLabelValues(s)
	}
	m.Breaches.WithLabelValues(BreachDeadline)
	m.Breaches.WithLabelValues(BreachPromise)
	m.Reloads.WithLabelValues("ok")
	m.Reloads.WithLabelValues("failed")
}

var (
	waitingDesc = prometheus.NewDesc("forgetmenot_queue_lag_messages", "Entries waiting on a stream (not yet handled), per stream.", []string{"stream"}, nil)
	delayedDesc = prometheus.NewDesc("forgetmenot_queue_delayed_messages", "Entries waiting for a retry, per stream.", []string{"stream"}, nil)
	oldestDesc  = prometheus.NewDesc("forgetmenot_queue_oldest_age_seconds", "Age of the oldest waiting entry, per stream.", []string{"stream"}, nil)
	deadDesc    = prometheus.NewDesc("forgetmenot_dead_letters", "Entries in the dead letters (see `forgetmenot deadletters list`).", nil, nil)
	upDesc      = prometheus.NewDesc("forgetmenot_redis_up", "1 when Redis answered the last scrape.", nil, nil)
)

// queueCollector reads the queues when scraped, so the figures are current
// and nothing polls Redis between scrapes.
type queueCollector struct {
	stats func(context.Context) (queue.Stats, error)
}

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{waitingDesc, delayedDesc, oldestDesc, deadDesc, upDesc} {
		ch <- d
	}
}

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := q.stats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
	for name, st := range map[string]queue.StreamStats{"inbound": s.Inbound, "outbox": s.Outbox} {
		ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(st.Waiting), name)
		ch <- prometheus.MustNewConstMetric(delayedDesc, prometheus.GaugeValue, float64(st.Delayed), name)
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, st.OldestAge.Seconds(), name)
	}
	ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(s.DeadLetters))
}
