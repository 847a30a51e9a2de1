package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var componentDesc = prometheus.NewDesc("forgetmenot_component_up",
	"1 while a channel or integration reports no problem that retries cannot fix (IMAP login, Slack token, …), 0 otherwise; details on /readyz for authenticated callers.",
	[]string{"component"}, nil)

// WatchComponents adds forgetmenot_component_up per component, from the
// same checks /readyz runs, at scrape time; a component without a check
// (nil) is up while the daemon runs. The label is the component's
// name (email, slack, forum, …); the error itself stays out of the metric.
func (m *Metrics) WatchComponents(checks map[string]func(context.Context) error) {
	if len(checks) == 0 {
		return
	}
	m.Registry.MustRegister(&componentCollector{checks: checks})
}

type componentCollector struct {
	checks map[string]func(context.Context) error
}

func (c *componentCollector) Describe(ch chan<- *prometheus.Desc) { ch <- componentDesc }

func (c *componentCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for name, check := range c.checks {
		wg.Go(func() {
			up := 1.0
			if check != nil && check(ctx) != nil {
				up = 0
			}
			ch <- prometheus.MustNewConstMetric(componentDesc, prometheus.GaugeValue, up, name)
		})
	}
	wg.Wait()
}
