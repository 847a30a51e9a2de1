package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/report"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/prometheus/client_golang/prometheus"
)

// Accountability: the scheduler that fires due reminders and breaches, the
// complaint-rate watch, and the report, volume, away/cover and satisfaction
// routes. It is always on; without a targets file there are no deadlines,
// but promises, away/cover and reports still work.
func init() { componentBuilders = append(componentBuilders, buildAccountability) }

// defaultTimerPoll applies when TIMER_POLL is not set (embedding, tests).
const defaultTimerPoll = 15 * time.Second

func buildAccountability(deps Deps) (*Component, error) {
	poll := deps.Config.TimerPoll.D()
	if poll <= 0 {
		poll = defaultTimerPoll
	}
	rateAlerts := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "forgetmenot_complaint_rate_alerts_total",
		Help: "Periods whose complaint rate (complaints / volume) reached the targets file's threshold; each alerts its recipients once.",
	})
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(rateAlerts); err != nil {
			return nil, fmt.Errorf("accountability: registering metrics: %w", err)
		}
	}
	return &Component{
		Name:   "accountability",
		Routes: api.AccountabilityRoutes(deps.APIAccess, volumeAlerts{deps.Router, rateAlerts}, nil, deps.Log, reportLinks(deps.Config)...),
		Run: func(ctx context.Context) error {
			return runScheduler(ctx, deps.Router, poll, deps.Log, func(n int) { rateAlerts.Add(float64(n)) })
		},
	}, nil
}

// volumeAlerts counts the rate alerts a posted volume raises, as the
// scheduler counts its own: a week's volume posted after its complaints is
// the usual way an alert comes.
type volumeAlerts struct {
	*router.Router
	alerts prometheus.Counter
}

func (v volumeAlerts) SetVolume(ctx context.Context, vol router.Volume) (router.Volume, error) {
	out, err := v.Router.SetVolume(ctx, vol)
	v.alerts.Add(float64(out.Alerted))
	return out, err
}

// timerBatch bounds one round of firing; a fuller backlog continues at once.
const timerBatch = 200

// runScheduler fires due timers every poll until ctx ends. Every replica
// runs it: each timer's firing is one guarded commit that also removes it,
// so a timer two replicas find at once fires once.
func runScheduler(ctx context.Context, r *router.Router, poll time.Duration, log *slog.Logger, rateAlerted func(int)) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		for {
			n, err := r.FireDue(ctx, timerBatch)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				log.Error("firing due timers; retrying next round", "err", err)
				break
			}
			if n < timerBatch {
				break
			}
		}
		n, err := r.CheckComplaintRate(ctx)
		rateAlerted(n)
		if err != nil && ctx.Err() == nil {
			log.Error("checking the complaint rate", "err", err)
		}
		if _, err := r.CheckDigest(ctx); err != nil && ctx.Err() == nil {
			log.Error("checking the weekly digest; retrying next round", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// digestSchedule is when the weekly digest goes out: DIGEST, when a Slack
// lead channel is there to receive it.
func digestSchedule(cfg configs.Config) *router.DigestSchedule {
	day, at, on, err := cfg.DigestSchedule()
	if err != nil || !on || cfg.SlackBotToken == "" || cfg.SlackLeadChannel == "" {
		return nil
	}
	s := &router.DigestSchedule{Day: day, At: at}
	if links := reportLinks(cfg); len(links) > 0 {
		s.Link = func(since, until time.Time) string { return links[0].Link(since, until, time.Now()) }
	}
	return s
}

// reportLinks says how the digest links to the HTML report: signed with
// REPORT_LINK_SECRET; unsigned only where the API is open anyway; none
// without PUBLIC_URL, or when the report needs a token and no secret is set.
func reportLinks(cfg configs.Config) []report.Links {
	switch {
	case cfg.PublicURL == "":
		return nil
	case cfg.ReportLinkSecret != "":
		return []report.Links{{BaseURL: cfg.PublicURL, Secret: []byte(cfg.ReportLinkSecret), ValidFor: cfg.ReportLinkTTL.D()}}
	case cfg.InsecureOpenAPI:
		return []report.Links{{BaseURL: cfg.PublicURL}}
	}
	return nil
}

// loadPolicy reads the targets file (none configured: no deadlines) and the
// satisfaction-link settings.
func loadPolicy(cfg configs.Config, roster *router.Roster) (*router.Policy, *router.CSAT, error) {
	var policy *router.Policy
	if cfg.TargetsFile != "" {
		p, err := configs.LoadTargets(cfg.TargetsFile, cfg.OwnersFile, roster)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", configs.Var("TARGETS_FILE"), err)
		}
		policy = p
	}
	var csat *router.CSAT
	if cfg.PublicURL != "" {
		csat = &router.CSAT{BaseURL: cfg.PublicURL, Secret: []byte(cfg.CSATSecret), ValidFor: cfg.CSATLinkTTL.D()}
	}
	return policy, csat, nil
}
