package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/slack"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/prometheus/client_golang/prometheus"
)

func init() { componentBuilders = append(componentBuilders, buildSlack) }

// staffMailer e-mails staff through the e-mail channel's SMTP sender, looked
// up when needed (components are built in turn, and SMTP may be off): the
// last route of a notification Slack refused.
type staffMailer struct {
	sender func(router.Channel) CustomerSender
}

func (m staffMailer) MailStaff(ctx context.Context, to, subject, body string) error {
	mail, ok := m.sender(router.ChannelEmail).(slack.StaffMailer)
	if !ok {
		return router.Permanent(errors.New("e-mail is not configured (SMTP_HOST)"))
	}
	return mail.MailStaff(ctx, to, subject, body)
}

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
	// The fallback and undelivered counters are the daemon's (every daemon
	// exports them, at 0 without Slack).
	onFallback, onUndelivered := func(string) {}, func(string) {}
	if d.Counters != nil {
		onFallback = func(route string) { d.Counters.SlackFallbacks.WithLabelValues(route).Inc() }
		onUndelivered = func(kind string) { d.Counters.Undelivered.WithLabelValues(kind).Inc() }
	}
	var mailer slack.StaffMailer
	if d.Sender != nil {
		mailer = staffMailer{d.Sender}
	}
	s, err := slack.New(slack.Config{
		BotToken: cfg.SlackBotToken, AppToken: cfg.SlackAppToken, SigningSecret: cfg.SlackSigningSecret,
		APIURL: cfg.SlackAPIURL, LeadChannel: cfg.SlackLeadChannel, Categories: cfg.CloseCategories(),
		Complaints: d.Router, State: d.Store.State("slack"), Log: d.Log,
		OnPermanentError: func(code string) { errorsTotal.WithLabelValues(code).Inc() },
		Mailer:           mailer, LinkBase: cfg.PublicURL,
		OnFallback:    onFallback,
		OnUndelivered: onUndelivered,
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
		s.Stop() // let actions in progress finish; no more App Home refreshes
		return err
	}
	c.Run = run
	if cfg.SlackMode == "http" {
		c.Routes = s.Routes()
	}
	return c, nil
}
