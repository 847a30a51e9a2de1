package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	openDesc    = prometheus.NewDesc("forgetmenot_open_complaints", "Open complaints per owner.", []string{"owner"}, nil)
	overdueDesc = prometheus.NewDesc("forgetmenot_overdue_complaints", "Open complaints past a running deadline (answer, resolution or promise), per owner.", []string{"owner"}, nil)
	pendingDesc = prometheus.NewDesc("forgetmenot_promises_pending", "Promised follow-ups not yet kept or broken.", nil, nil)
	brokenDesc  = prometheus.NewDesc("forgetmenot_promises_broken", "Broken promises on complaints that are still open.", nil, nil)
	capDesc     = prometheus.NewDesc("forgetmenot_owner_capacity", "Open complaints each roster owner is expected to carry (the roster's capacity).", []string{"owner"}, nil)
)

// WatchAccountability adds gauges read from the open complaints at scrape
// time, at most every 30 seconds: open and overdue per owner (every owner
// on the roster in force, zero included, so alerts see a value), each
// owner's capacity, promises pending and broken. Owner ids are staff, never
// customers: no label carries customer data.
func (m *Metrics) WatchAccountability(open func(context.Context) ([]router.Complaint, error), dir router.Directory, now func() time.Time) {
	m.Registry.MustRegister(&accountabilityCollector{open: open, dir: dir, now: now})
}

// accountabilityRefresh bounds how often a scrape reads every open
// complaint: with many open complaints, several scrapers and replicas, a
// read per scrape would load Redis and the daemon for figures that move
// slowly anyway.
const accountabilityRefresh = 30 * time.Second

type accountabilityCollector struct {
	open func(context.Context) ([]router.Complaint, error)
	dir  router.Directory
	now  func() time.Time

	mu       sync.Mutex
	readAt   time.Time
	figures  accountabilityFigures
	hasFresh bool
}

type accountabilityFigures struct {
	open, overdue   map[string]int
	pending, broken int
}

func (a *accountabilityCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{openDesc, overdueDesc, pendingDesc, brokenDesc, capDesc} {
		ch <- d
	}
}

func (a *accountabilityCollector) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.hasFresh || time.Since(a.readAt) >= accountabilityRefresh {
		f, err := a.read()
		if err != nil {
			return // forgetmenot_redis_up reports the outage
		}
		a.figures, a.readAt, a.hasFresh = f, time.Now(), true
	}
	f := a.figures
	for _, o := range a.dir.Owners() {
		ch <- prometheus.MustNewConstMetric(capDesc, prometheus.GaugeValue, float64(o.Capacity), o.ID)
	}
	for o, n := range f.open {
		ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(n), o)
		ch <- prometheus.MustNewConstMetric(overdueDesc, prometheus.GaugeValue, float64(f.overdue[o]), o)
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(f.pending))
	ch <- prometheus.MustNewConstMetric(brokenDesc, prometheus.GaugeValue, float64(f.broken))
}

func (a *accountabilityCollector) read() (accountabilityFigures, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cs, err := a.open(ctx)
	if err != nil {
		return accountabilityFigures{}, err
	}
	open, overdue := map[string]int{}, map[string]int{}
	for _, o := range a.dir.Owners() {
		open[o.ID], overdue[o.ID] = 0, 0
	}
	pending, broken := 0, 0
	now := a.now()
	for _, c := range cs {
		open[c.Owner]++
		if c.Overdue(now) {
			overdue[c.Owner]++
		}
		if !c.PromisedBy.IsZero() {
			pending++
		}
		broken += c.PromisesBroken
	}
	return accountabilityFigures{open: open, overdue: overdue, pending: pending, broken: broken}, nil
}
