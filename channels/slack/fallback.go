package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/forgetmenot/forgetmenot/router"
	slackgo "github.com/slack-go/slack"
)

// Never silent: when Slack refuses a notification for good (invalid_blocks,
// msg_too_long, channel_not_found, not_in_channel, user_not_found,
// account_inactive, a revoked token, …) the owner is still told, by the
// first route that works:
//
//  1. slack_plain: a minimal plain-text DM with the reference and a link;
//  2. lead_channel: the lead channel, asked to tell the owner;
//  3. email: a plain e-mail to the owner's roster address.
//
// The route that got through is recorded on the complaint's timeline. Only
// when every route failed is the notification dead-lettered, and then an
// alert is raised (OnUndelivered for the metric, and the lead channel).

// Fallback routes, as recorded on the timeline and counted.
const (
	RouteSlackPlain  = "slack_plain"
	RouteLeadChannel = "lead_channel"
	RouteEmail       = "email"
)

// FallbackRoutes are the fallback routes in the order they are tried.
var FallbackRoutes = []string{RouteSlackPlain, RouteLeadChannel, RouteEmail}

func fallbackKey(notificationID, route string) string {
	return "fallback:" + notificationID + ":" + route
}

// reroute tries the fallback routes for n after cause made the usual one
// fail for good.
func (s *Slack) reroute(ctx context.Context, n router.Notification, cause error) error {
	code := slackCode(cause)
	if code == "" {
		code = "refused"
	}
	s.log.Warn("slack did not take a notification; trying the fallback routes", "notification", n.ID, "complaint", n.Complaint.ID, "recipient", n.Recipient, "code", code, "err", cause)
	var failures []string
	var retryable error
	for _, r := range []struct {
		route string
		try   func(context.Context, router.Notification, string) error
	}{
		{RouteSlackPlain, s.plainDM},
		{RouteLeadChannel, s.leadAsk},
		{RouteEmail, s.mailOwner},
	} {
		try := func(ctx context.Context) error { return r.try(ctx, n, code) }
		if router.LastAttempt(ctx) && r.route != RouteEmail {
			// A Slack that hangs takes its share only (see Notify).
			try = func(ctx context.Context) error {
				sctx, cancel := context.WithTimeout(ctx, lastAttemptSlackBudget)
				defer cancel()
				return r.try(sctx, n, code)
			}
		}
		sent, err := s.onceRoute(ctx, n, r.route, try)
		if err == nil {
			if sent {
				s.cfg.OnFallback(r.route)
			}
			s.log.Info("notification reached its recipient by a fallback route", "notification", n.ID, "complaint", n.Complaint.ID, "recipient", n.Recipient, "route", r.route)
			if n.Complaint.ID != "" {
				if err := s.cfg.Complaints.RecordNotificationRoute(ctx, n.Complaint.ID, n.ID, r.route, code); err != nil {
					if router.LastAttempt(ctx) {
						// Delivered: no retry follows to record it, and a
						// dead letter would claim it was not.
						s.log.Error("notification delivered by a fallback route, but the route could not be recorded on the complaint", "notification", n.ID, "complaint", n.Complaint.ID, "route", r.route, "err", err)
						return nil
					}
					// Delivered but not recorded: a retry re-records (once),
					// and does not send again (onceRoute).
					return fmt.Errorf("slack: recording the %s route of %s: %w", r.route, n.ID, err)
				}
			}
			return nil
		}
		failures = append(failures, r.route+": "+err.Error())
		if !router.IsPermanent(err) && retryable == nil {
			retryable = err
		}
	}
	all := fmt.Errorf("slack: no route reached %s for %s (%s)", n.Recipient, n.ID, strings.Join(failures, "; "))
	if retryable != nil && !router.LastAttempt(ctx) {
		// A route may work on the next try (SMTP down a moment): the outbox
		// retries; its last attempt raises the alarm below.
		return fmt.Errorf("%w; retrying: %w", all, retryable)
	}
	s.alertUndelivered(n, all)
	return router.Permanent(all)
}

var errNoRoute = router.Permanent(errors.New("not configured"))

// onceRoute runs send once per notification and route: a retried
// notification that already went out by this route does not send again.
func (s *Slack) onceRoute(ctx context.Context, n router.Notification, route string, send func(context.Context) error) (sent bool, err error) {
	key := fallbackKey(n.ID, route)
	if _, done, err := s.cfg.State.Get(ctx, key); err != nil {
		return false, err
	} else if done {
		return false, nil
	}
	if err := send(ctx); err != nil {
		return false, err
	}
	if err := s.cfg.State.Set(ctx, key, s.now().UTC().Format("2006-01-02T15:04:05Z"), postedTTL); err != nil {
		s.log.Warn("could not record a fallback delivery; a retry may send it again", "notification", n.ID, "route", route, "err", err)
	}
	return true, nil
}

// complaintLink is where the complaint can be read in full.
func (s *Slack) complaintLink(id string) string {
	if id == "" {
		return "`forgetmenot report`"
	}
	cmd := "`forgetmenot complaints show " + id + "`"
	if s.cfg.LinkBase == "" {
		return cmd
	}
	return "<" + strings.TrimRight(s.cfg.LinkBase, "/") + "/v1/complaints/" + id + "|" + id + "> or " + cmd
}

// plainSummary says in one line what a notification is about, escaped for
// mrkdwn and short.
func (s *Slack) plainSummary(n router.Notification) string {
	c := n.Complaint
	if c.ID == "" {
		reason := "the complaint rate reached its threshold"
		if n.Event != nil && n.Event.Reason != "" {
			reason = n.Event.Reason
		}
		return "Complaint rate alert: " + esc(reason, reasonLen)
	}
	what := strings.ReplaceAll(string(n.Kind), "_", " ")
	line := c.ID + " (" + what + ")"
	if label := c.Customer.Label(); label != "" {
		line += ": " + esc(label, nameLen)
	}
	if c.Subject != "" {
		line += " — " + esc(c.Subject, 300)
	}
	return line
}

func (s *Slack) plainDM(ctx context.Context, n router.Notification, code string) error {
	user, err := s.people.slackUser(ctx, n.Recipient)
	if err != nil {
		if errors.Is(err, errNotOnRoster) || errors.Is(err, errNoAddress) {
			return router.Permanent(err)
		}
		return s.classify("DM to owner "+n.Recipient, err)
	}
	ch, _, _, err := s.api.OpenConversationContext(ctx, &slackgo.OpenConversationParameters{Users: []string{user}, ReturnIM: true})
	if err != nil {
		return s.classify("DM to owner "+n.Recipient, fmt.Errorf("conversations.open: %w", err))
	}
	if ch == nil || ch.ID == "" {
		return errors.New("conversations.open returned no channel")
	}
	if err := s.pace.wait(ctx, ch.ID); err != nil {
		return err
	}
	text := ":bell: " + s.plainSummary(n) + "\nSlack could not show the full message (" + esc(code, 60) + "). Everything: " + s.complaintLink(n.Complaint.ID)
	if n.Complaint.ID == "" {
		text = ":bell: " + s.plainSummary(n) + "\n_Complaints per period: `forgetmenot report`_"
	}
	if _, err := s.postMessage(ctx, ch.ID, "", Message{Text: fit(text, 3000)}); err != nil {
		return s.classify("DM to owner "+n.Recipient, err)
	}
	s.health.ok("DM to owner " + n.Recipient)
	return nil
}

func (s *Slack) leadAsk(ctx context.Context, n router.Notification, code string) error {
	if s.cfg.LeadChannel == "" {
		return errNoRoute
	}
	if err := s.pace.wait(ctx, s.cfg.LeadChannel); err != nil {
		return err
	}
	text := fmt.Sprintf(":warning: *%s could not be reached in Slack* (%s). Please tell them: %s\nEverything: %s",
		esc(s.people.name(n.Recipient), nameLen), esc(code, 60), s.plainSummary(n), s.complaintLink(n.Complaint.ID))
	if _, err := s.postMessage(ctx, s.cfg.LeadChannel, "", Message{Text: fit(text, 3000)}); err != nil {
		return s.classify("lead channel "+s.cfg.LeadChannel, err)
	}
	return nil
}

func (s *Slack) mailOwner(ctx context.Context, n router.Notification, code string) error {
	if s.cfg.Mailer == nil {
		return errNoRoute
	}
	o, ok := s.cfg.Complaints.Directory().Owner(n.Recipient)
	if !ok || o.Email == "" {
		return router.Permanent(fmt.Errorf("owner %q has no e-mail address on the roster", n.Recipient))
	}
	c := n.Complaint
	subject := "Complaint rate alert"
	if c.ID != "" {
		subject = clipRaw(c.ID+": "+strings.ReplaceAll(string(n.Kind), "_", " ")+" — "+orDefault(c.Subject, c.Customer.Label()), 200)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\n\nSlack refused to show you this notification (%s), so it comes by e-mail.\n\n", firstName(o.Name), code)
	if c.ID != "" {
		fmt.Fprintf(&b, "Complaint: %s\nWhat happened: %s\nCustomer: %s\n", c.ID, strings.ReplaceAll(string(n.Kind), "_", " "), c.Customer.Label())
		if c.Subject != "" {
			fmt.Fprintf(&b, "Subject: %s\n", c.Subject)
		}
		if n.Message != nil && n.Message.Body != "" {
			fmt.Fprintf(&b, "\nThe customer wrote:\n%s\n", clipRaw(n.Message.Body, 4000))
		}
		fmt.Fprintf(&b, "\nEverything: forgetmenot complaints show %s\n", c.ID)
		if s.cfg.LinkBase != "" {
			fmt.Fprintf(&b, "%s/v1/complaints/%s\n", strings.TrimRight(s.cfg.LinkBase, "/"), c.ID)
		}
	} else if n.Event != nil {
		fmt.Fprintf(&b, "%s\n", orDefault(n.Event.Reason, "The complaint rate reached its threshold."))
	}
	if err := s.cfg.Mailer.MailStaff(ctx, o.Email, subject, b.String()); err != nil {
		return fmt.Errorf("e-mail to %s: %w", o.Email, err)
	}
	return nil
}

// alertUndelivered raises the alarm for a notification no route delivered:
// the metric and the log at once, and the lead channel when it can still be
// reached. That post runs as background work with its own deadline: the
// lead channel was just used by the route that asked the lead, so its post
// waits out Slack's pace, and the delivery's remaining time (which the
// fallbacks used up) must not be what decides whether the alarm is raised.
func (s *Slack) alertUndelivered(n router.Notification, cause error) {
	s.cfg.OnUndelivered(string(n.Kind))
	s.log.Error("NOTIFICATION NOT DELIVERED by any route; it goes to the dead letters", "notification", n.ID, "complaint", n.Complaint.ID, "recipient", n.Recipient, "err", cause)
	if s.cfg.LeadChannel == "" {
		return
	}
	text := fmt.Sprintf(":rotating_light: *Not delivered:* %s for %s reached them by no route (Slack, lead channel, e-mail). It is in the dead letters: `forgetmenot deadletters list`. %s",
		s.plainSummary(n), esc(s.people.name(n.Recipient), nameLen), s.complaintLink(n.Complaint.ID))
	s.background(func(ctx context.Context) {
		if err := s.pace.wait(ctx, s.cfg.LeadChannel); err != nil {
			s.log.Error("could not post the undelivered alert to the lead channel", "notification", n.ID, "err", err)
			return
		}
		if _, err := s.postMessage(ctx, s.cfg.LeadChannel, "", Message{Text: fit(text, 3000)}); err != nil {
			s.log.Error("could not post the undelivered alert to the lead channel", "notification", n.ID, "err", err)
		} else {
			s.health.ok("lead channel " + s.cfg.LeadChannel) // reachable again: /readyz says so
		}
	})
}
