package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/slack"
	"github.com/prometheus/client_golang/prometheus"
)

func init() { componentBuilders = append(componentBuilders, buildSlack) }

// buildSlack plugs in Slack when a bot token is configured: it becomes the
// notifier, and staff act through Socket Mode (Run) or the signed HTTP
// endpoints (Routes).
func buildSlack(d Deps) (*Component, error) {
	cfg := d.Config
	if cfg.SlackBotToken == "" {
		return nil, nil
	}
	errorsTotal := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "forgetmenot_slack_errors_total",
		Help: "Slack failures that no retry fixes, by Slack error code (user_not_found, token_revoked, …).",
	}, []string{"code"})
	if d.Metrics != nil {
		if err := d.Metrics.Register(errorsTotal); err != nil {
			return nil, fmt.Errorf("slack: registering metrics: %w", err)
		}
	}
	s, err := slack.New(slack.Config{
		BotToken: cfg.SlackBotToken, AppToken: cfg.SlackAppToken, SigningSecret: cfg.SlackSigningSecret,
		APIURL: cfg.SlackAPIURL, LeadChannel: cfg.SlackLeadChannel, Categories: cfg.CloseCategories(),
		Complaints: d.Router, State: d.Store.State("slack"), Log: d.Log,
		OnPermanentError: func(code string) { errorsTotal.WithLabelValues(code).Inc() },
	})
	if err != nil {
		return nil, err
	}
	c := &Component{Name: "slack", Notifier: s, Check: s.Check}
	run := func(ctx context.Context) error {
		// A bad token shows in the log and /readyz at start, not at the first
		// complaint.
		verifyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := s.Verify(verifyCtx); err != nil {
			d.Log.Error("slack: the bot token does not work", "err", err)
		}
		cancel()
		var err error
		if cfg.SlackMode == "socket" {
			err = s.RunSocket(ctx)
		} else {
			<-ctx.Done()
		}
		s.Wait() // let actions in progress finish
		return err
	}
	c.Run = run
	if cfg.SlackMode == "http" {
		c.Routes = s.Routes()
	}
	return c, nil
}
