package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/ctxtime"
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
		if ctxtime.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// socketEvents acknowledges each envelope at once where the answer carries
// nothing (events, button clicks) and hands the work to at most
// SocketWorkers concurrent handlers, so one slow event cannot delay the next
// acknowledgement past Slack's 3 seconds. Events about one complaint (or
// from one user, when about none) are handled in the order they came.
func (s *Slack) socketEvents(ctx context.Context, client *socketmode.Client) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, s.cfg.SocketWorkers)
	waiting := make(chan struct{}, maxWaitingEvents)
	var mu sync.Mutex
	tails := map[string]chan struct{}{}
	for {
		var evt socketmode.Event
		select {
		case <-ctx.Done():
			return
		case e, ok := <-client.Events:
			if !ok {
				return
			}
			evt = e
		}
		key, early := socketOrder(evt)
		if early && evt.Request != nil {
			if err := client.AckCtx(ctx, evt.Request.EnvelopeID, nil); err != nil {
				s.log.Warn("could not acknowledge a Slack request", "type", evt.Type, "err", err)
			}
		}
		if key == "" {
			s.socketEvent(ctx, client, evt, early)
			continue
		}
		// Events waiting for their turn are bounded too: past that many
		// the reader waits, as Slack then redelivers what it did not get
		// acknowledged.
		select {
		case waiting <- struct{}{}:
		case <-ctx.Done():
			return
		}
		mu.Lock()
		prev, done := tails[key], make(chan struct{})
		tails[key] = done
		mu.Unlock()
		// The reader never waits: an event waits for the one before it of
		// its key first, and only then for a worker slot. (Holding a slot
		// while waiting for its turn let one user's burst of events take
		// every slot, and another user's click was answered after Slack's
		// 3 seconds.)
		wg.Go(func() {
			defer func() {
				<-waiting
				close(done)
				mu.Lock()
				if tails[key] == done {
					delete(tails, key)
				}
				mu.Unlock()
			}()
			if prev != nil {
				select {
				case <-prev:
				case <-ctx.Done():
					return
				}
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-slots }()
			s.socketEvent(ctx, client, evt, early)
		})
	}
}

// maxWaitingEvents bounds the Socket Mode events held at once (running or
// waiting for the one before them of their key).
const maxWaitingEvents = 1024

// socketOrder says which events must stay in order with this one (its
// complaint, else its user; "" for connection events, handled at once), and
// whether it can be acknowledged before it is handled (its answer carries
// nothing).
func socketOrder(evt socketmode.Event) (key string, early bool) {
	switch evt.Type {
	case socketmode.EventTypeEventsAPI:
		ev, _ := evt.Data.(slackevents.EventsAPIEvent)
		switch in := ev.InnerEvent.Data.(type) {
		case *slackevents.MessageEvent:
			return "thread:" + in.Channel + ":" + in.ThreadTimeStamp, true
		case *slackevents.AppHomeOpenedEvent:
			return "user:" + in.User, true
		}
		return "events", true
	case socketmode.EventTypeInteractive:
		cb, _ := evt.Data.(slackgo.InteractionCallback)
		if cb.Type == slackgo.InteractionTypeBlockActions {
			if len(cb.ActionCallback.BlockActions) > 0 && cb.ActionCallback.BlockActions[0].Value != "" {
				return "complaint:" + cb.ActionCallback.BlockActions[0].Value, true
			}
			return "user:" + cb.User.ID, true
		}
		var meta modalMeta
		if json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta) == nil && meta.Complaint != "" {
			return "complaint:" + meta.Complaint, false
		}
		return "user:" + cb.User.ID, false
	case socketmode.EventTypeSlashCommand:
		cmd, _ := evt.Data.(slackgo.SlashCommand)
		return "user:" + cmd.UserID, false
	}
	return "", false
}

// socketEventTimeout bounds the handling of one Socket Mode event, so one
// that hangs (Redis or Slack not answering) frees its slot and does not
// stop the events that follow it in order.
const socketEventTimeout = 30 * time.Second

func (s *Slack) socketEvent(ctx context.Context, client *socketmode.Client, evt socketmode.Event, acked bool) {
	ctx, cancel := context.WithTimeout(ctx, socketEventTimeout)
	defer cancel()
	ack := func(payload any) {
		if evt.Request == nil || acked {
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
		s.event(ev, func(f func(context.Context)) { f(ctx) })
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slackgo.InteractionCallback)
		if !ok {
			ack(nil)
			return
		}
		// The answer goes back at once; the work it starts runs here after
		// it, in this complaint's order.
		var after []func(context.Context)
		ack(s.interaction(ctx, cb, func(f func(context.Context)) { after = append(after, f) }))
		for _, f := range after {
			f(ctx)
		}
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
