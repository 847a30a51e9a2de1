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

// OpenFiguresFunc reads the open figures (router.AccountabilityStore's
// OpenFigures).
type OpenFiguresFunc func(ctx context.Context, owners []string, now time.Time) (router.OpenFigures, error)

// WatchAccountability adds gauges read at scrape time, at most every 5
// seconds, from the indexes the store keeps with every commit (never from
// the open complaints themselves): open and overdue per owner (every owner
// on the roster in force, zero included, so alerts see a value), each
// owner's capacity, promises pending and broken. Owner ids are staff, never
// customers: no label carries customer data.
func (m *Metrics) WatchAccountability(figures OpenFiguresFunc, dir router.Directory, now func() time.Time) {
	m.Registry.MustRegister(&accountabilityCollector{read: figures, dir: dir, now: now})
}

// accountabilityRefresh bounds how often scrapes read Redis: a few commands
// per owner, so only several scrapers and replicas at once would notice.
const accountabilityRefresh = 5 * time.Second

type accountabilityCollector struct {
	read OpenFiguresFunc
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
		f, err := a.load()
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

func (a *accountabilityCollector) load() (accountabilityFigures, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var owners []string
	for _, o := range a.dir.Owners() {
		owners = append(owners, o.ID)
	}
	f, err := a.read(ctx, owners, a.now())
	if err != nil {
		return accountabilityFigures{}, err
	}
	open, overdue := map[string]int{}, map[string]int{}
	for o, fig := range f.Owners {
		open[o], overdue[o] = fig.Open, fig.Overdue
	}
	return accountabilityFigures{open: open, overdue: overdue, pending: f.PromisesPending, broken: f.PromisesBroken}, nil
}
