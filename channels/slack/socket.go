package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// RunSocket receives staff actions over Socket Mode (no public URL needed)
// until ctx ends. slack-go reconnects when Slack asks; when the connection
// fails anyway, this reconnects with backoff.
func (s *Slack) RunSocket(ctx context.Context) error {
	if s.cfg.AppToken == "" {
		return errors.New("slack: Socket Mode needs the app-level token (xapp-…)")
	}
	for failures := 0; ; {
		client := socketmode.New(s.api, socketmode.OptionLog(slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)))
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); s.socketEvents(runCtx, client) }()
		start := time.Now()
		err := client.RunContext(runCtx)
		cancel()
		<-done
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			failures = 0
		}
		failures++
		if code := slackCode(err); code != "" {
			err = s.classify("socket mode", err)
		}
		wait := min(time.Second<<min(failures, 6), time.Minute)
		wait = wait/2 + rand.N(wait/2+1)
		s.log.Warn("slack socket mode disconnected; reconnecting", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (s *Slack) socketEvents(ctx context.Context, client *socketmode.Client) {
	for {
		select {
		case <-ctx.Done():
			return
		case evt, ok := <-client.Events:
			if !ok {
				return
			}
			s.socketEvent(ctx, client, evt)
		}
	}
}

// socketEventTimeout bounds the handling of one Socket Mode event: events are
// handled one after the other, so one that hangs (Redis or Slack not
// answering) must not stop all that follow.
const socketEventTimeout = 30 * time.Second

func (s *Slack) socketEvent(ctx context.Context, client *socketmode.Client, evt socketmode.Event) {
	ctx, cancel := context.WithTimeout(ctx, socketEventTimeout)
	defer cancel()
	ack := func(payload any) {
		if evt.Request == nil {
			return
		}
		if err := client.AckCtx(ctx, evt.Request.EnvelopeID, payload); err != nil {
			s.log.Warn("could not acknowledge a Slack request", "type", evt.Type, "err", err)
		}
	}
	switch evt.Type {
	case socketmode.EventTypeConnected:
		s.health.ok("socket mode")
		s.log.Info("slack socket mode connected")
	case socketmode.EventTypeInvalidAuth:
		s.health.failed("invalid_auth", "socket mode", s.now())
		s.cfg.OnPermanentError("invalid_auth")
		s.log.Error("slack refuses the app-level token; renew FORGETMENOT_SLACK_APP_TOKEN")
	case socketmode.EventTypeEventsAPI:
		ev, ok := evt.Data.(slackevents.EventsAPIEvent)
		ack(nil)
		if !ok {
			return
		}
		if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok && !s.once(ctx, "event:"+cb.EventID) {
			return
		}
		s.Event(ctx, ev)
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slackgo.InteractionCallback)
		if !ok {
			ack(nil)
			return
		}
		ack(s.Interaction(ctx, cb))
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slackgo.SlashCommand)
		if !ok {
			ack(nil)
			return
		}
		ack(s.Command(ctx, cmd))
	case socketmode.EventTypeConnectionError, socketmode.EventTypeIncomingError:
		s.log.Warn("slack socket mode trouble", "type", evt.Type, "detail", fmt.Sprint(evt.Data))
	}
}
