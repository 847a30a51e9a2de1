package metrics

import (
	"context"
	"slices"
	"testing"

	"github.com/forgetmenot/forgetmenot/queue"
)

// What must hold: Slack's fallback and undelivered counters exist on every
// daemon, at 0, for every route and notification kind, before anything was
// sent and without Slack, so the dashboard and increase() have a baseline.
func TestPrepareCreatesTheSlackFallbackSeries(t *testing.T) {
	m := New(func(context.Context) (queue.Stats, error) { return queue.Stats{}, nil })
	routes := []string{"slack_plain", "lead_channel", "email"}
	m.Prepare(nil, nil, routes)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, f := range families {
		if f.GetName() != "forgetmenot_slack_fallback_total" && f.GetName() != "forgetmenot_notifications_undelivered_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			if v := s.GetCounter().GetValue(); v != 0 {
				t.Errorf("%s starts at %v, want 0", f.GetName(), v)
			}
			for _, l := range s.GetLabel() {
				got[f.GetName()] = append(got[f.GetName()], l.GetValue())
			}
		}
	}
	for _, r := range routes {
		if !slices.Contains(got["forgetmenot_slack_fallback_total"], r) {
			t.Errorf("forgetmenot_slack_fallback_total{route=%q} is missing: %v", r, got["forgetmenot_slack_fallback_total"])
		}
	}
	for _, k := range notificationKinds {
		if !slices.Contains(got["forgetmenot_notifications_undelivered_total"], string(k)) {
			t.Errorf("forgetmenot_notifications_undelivered_total{kind=%q} is missing", k)
		}
	}
}
