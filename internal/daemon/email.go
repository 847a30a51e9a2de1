package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/forgetmenot/forgetmenot/channels/email"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/httpx"
	"github.com/forgetmenot/forgetmenot/router"
)

func init() { componentBuilders = append(componentBuilders, buildEmail) }

// buildEmail wires the e-mail channel: IMAP intake for the configured
// mailboxes and SMTP for writing to customers. Either may be configured
// alone; with neither, e-mail is off.
func buildEmail(d Deps) (*Component, error) {
	cfg := d.Config
	if cfg.MailboxesFile == "" && cfg.SMTPHost == "" {
		return nil, nil
	}
	state := d.Store.State("email")
	c := &Component{Name: "email", Channel: router.ChannelEmail}
	metrics := email.NewMetrics(d.Metrics)
	var boxes []configs.Mailbox
	var mailboxes []email.Mailbox
	if cfg.MailboxesFile != "" {
		var err error
		boxes, err = configs.LoadMailboxes(cfg.MailboxesFile, d.Router.Directory())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", configs.Var("MAILBOXES_FILE"), err)
		}
		for _, b := range boxes {
			mb, err := EmailMailbox(b)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", configs.Var("MAILBOXES_FILE"), err)
			}
			mailboxes = append(mailboxes, mb)
		}
	}
	var own []string
	var sender *email.Sender
	if cfg.SMTPHost != "" {
		var err error
		sender, err = buildSender(d, state, boxes, mailboxes, metrics)
		if err != nil {
			return nil, err
		}
		c.Sender = sender
		own = append(own, sender.Address())
		c.Check = func(context.Context) error { return sender.Check() }
	}
	if cfg.MailboxesFile == "" {
		return c, nil
	}
	for _, b := range boxes {
		if b.Address != "" {
			own = append(own, b.Address)
		}
	}
	parse := email.ParseOptions{OwnAddresses: own, PlusAddressing: cfg.EmailPlusAddressing}
	var ingesters []*email.Ingester
	for _, mb := range mailboxes {
		in, err := email.NewIngester(email.IngesterConfig{
			Mailbox: mb,
			Parse:   parse, Queue: d.Ingest, State: state, Logger: d.Log.With("component", "email"), Metrics: metrics,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", configs.Var("MAILBOXES_FILE"), err)
		}
		ingesters = append(ingesters, in)
	}
	// Of several replicas, one at a time reads each mailbox: the lease runs
	// out RECLAIM_IDLE after its holder died, like the queues' pending work.
	holder, leaseTTL := cfg.ConsumerNameOrDefault(), cfg.ReclaimIdle.D()
	c.Run = func(ctx context.Context) error {
		var wg sync.WaitGroup
		for _, in := range ingesters {
			wg.Go(func() {
				runLeased(ctx, state, "lease:mailbox:"+in.Name(), holder, leaseTTL, d.Log.With("component", "email", "mailbox", in.Name()),
					func(ctx context.Context) { _ = in.Run(ctx) })
			})
		}
		wg.Wait()
		return nil
	}
	c.Check = func(context.Context) error {
		var errs []error
		if sender != nil {
			errs = append(errs, sender.Check())
		}
		for _, in := range ingesters {
			if err := in.Check(); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	c.Routes = map[string]http.Handler{
		"GET /v1/email/quarantine": d.APIAccess.Require(quarantineHandler(state)),
	}
	return c, nil
}

func buildSender(d Deps, state email.AckLimiter, boxes []configs.Mailbox, mailboxes []email.Mailbox, metrics *email.Metrics) (*email.Sender, error) {
	cfg := d.Config
	sc, err := EmailSMTP(cfg, boxes, mailboxes)
	if err != nil {
		return nil, err
	}
	sc.Metrics = metrics
	tpl, err := email.LoadTemplates(cfg.EmailTemplates, "en")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configs.Var("EMAIL_TEMPLATES"), err)
	}
	s, err := email.NewSender(sc, tpl, state, d.Log.With("component", "email"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configs.Var("SMTP_HOST"), err)
	}
	return s, nil
}

// QuarantineList is the answer of GET /v1/email/quarantine.
type QuarantineList struct {
	Quarantine []email.Quarantined `json:"quarantine"`
	Count      int                 `json:"count"`
}

// quarantineHandler lists mail that could not be read, newest first.
func quarantineHandler(state interface {
	List(ctx context.Context, k string, n int) ([]string, error)
}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := 50
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				httpx.WriteError(w, http.StatusBadRequest, "limit must be a number from 1 to 1000", "limit")
				return
			}
			limit = n
		}
		raw, err := state.List(r.Context(), email.QuarantineKey, limit)
		if err != nil {
			httpx.WriteError(w, http.StatusServiceUnavailable, err.Error(), "")
			return
		}
		out := QuarantineList{Quarantine: []email.Quarantined{}}
		for _, s := range raw {
			var q email.Quarantined
			if json.Unmarshal([]byte(s), &q) == nil {
				out.Quarantine = append(out.Quarantine, q)
			}
		}
		out.Count = len(out.Quarantine)
		httpx.WriteJSON(w, http.StatusOK, out)
	})
}
