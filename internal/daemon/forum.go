package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/forum"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/texts"
	"github.com/forgetmenot/forgetmenot/router"
)

func init() { componentBuilders = append(componentBuilders, buildForum) }

// buildForum takes complaints from a Discourse webhook, records staff
// answers given in the forum, and, with an API key, answers in the topic.
func buildForum(d Deps) (*Component, error) {
	cfg := d.Config
	if cfg.DiscourseURL == "" {
		return nil, nil
	}
	// Loaded even without an API key, so a broken template fails at start.
	tpl, err := texts.LoadWithOverrides(configs.ForumTemplates(), cfg.DiscourseTemplates, forum.TextOptions)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configs.Var("DISCOURSE_TEMPLATES"), err)
	}
	state := d.Store.State("forum")
	// Without a key the API reads what anonymous visitors may (public
	// categories and topics) and posts nothing.
	api := forum.NewAPI(cfg.DiscourseURL, cfg.DiscourseAPIKey, cfg.DiscourseAPIUsername, nil)
	owners := map[string]string{}
	for _, o := range d.Router.Directory().Owners() {
		if o.DiscourseUsername != "" {
			owners[strings.ToLower(o.DiscourseUsername)] = o.ID
		}
	}
	h := forum.New(forum.Config{
		Queue: d.Ingest, State: state, Secret: cfg.DiscourseWebhookSecret, MaxBytes: cfg.MaxMessageBytes,
		Filter: forum.Filter{Categories: cfg.DiscourseCategories, Tags: cfg.DiscourseTags, Staff: cfg.DiscourseStaff, StaffGroups: cfg.DiscourseStaffGroups},
		API:    api, Staff: d.Router, Owners: owners, CategoryRefresh: cfg.DiscourseCategoryRefresh.D(), Legacy: d.Store,
		Logger: d.Log.With("component", "forum"),
	})
	c := &Component{
		Name: "forum", Channel: router.ChannelForum,
		Routes: map[string]http.Handler{"POST /v1/forum/discourse": h},
		Run:    migrateForumCustomers(d, api, d.Log.With("component", "forum")),
	}
	if cfg.DiscourseAPIKey == "" {
		d.Log.Warn("forum: no FORGETMENOT_DISCOURSE_API_KEY, so replies cannot be posted in the forum; stock Discourse sends no e-mail addresses, so forum customers get replies only where a plugin supplied theirs")
		return c, nil
	}
	c.Sender, err = forum.NewSender(forum.SenderConfig{
		API: api, Acknowledge: cfg.DiscourseAcknowledge, Templates: tpl, Zone: d.Router.TimeZone, State: state,
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// forumUserIDs names the one-time move of forum customers from usernames to
// user ids (its completion is recorded under Keys.Migration).
const forumUserIDs = "forum-user-ids"

// migrateForumCustomers moves, once per deployment, the complaints of forum
// customers still recorded under their username to their user id (see
// forum.MigrateLegacyCustomers), so those who never post again are found by
// their user id too. One replica runs it (a lease); its completion is
// recorded, so later starts only read that. A run that fails (Discourse
// unreachable, the key refused) is retried with backoff; a run cut short
// by a crash or a lost lease is run again, by this replica or another, and
// moves only what is left.
func migrateForumCustomers(d Deps, api *forum.API, log *slog.Logger) func(ctx context.Context) error {
	holder, ttl := d.Config.ConsumerNameOrDefault(), d.Config.ReclaimIdle.D()
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	store := d.Store
	done := func(ctx context.Context) bool {
		at, ok, err := store.MigrationDone(ctx, forumUserIDs)
		if err == nil && ok {
			log.Info("forum: customers were moved from usernames to user ids before; not looked for again", "finished", at)
		}
		return err == nil && ok
	}
	once := func(ctx context.Context) error {
		if done(ctx) {
			return nil // another replica finished it
		}
		res, err := forum.MigrateLegacyCustomers(ctx, forum.MigrationConfig{
			API: api, Legacy: store, Logger: log, Pace: forum.DefaultLookupPace,
			Customers: func(ctx context.Context) ([]forum.LegacyCandidate, error) {
				list, err := store.ChannelCustomers(ctx, router.ChannelForum)
				out := make([]forum.LegacyCandidate, 0, len(list))
				for _, c := range list {
					out = append(out, forum.LegacyCandidate{ID: c.ID, First: c.First})
				}
				return out, err
			},
		})
		if err != nil {
			return err
		}
		if err := store.MarkMigrationDone(ctx, forumUserIDs, time.Now()); err != nil {
			return err
		}
		log.Info("forum: customers recorded under their username moved to their user id",
			"usernames", res.Usernames, "moved", res.Moved, "complaints", res.Complaints,
			"unknown_to_discourse", res.Unknown, "username_taken_by_newer_account", res.Newer, "refused", res.Refused)
		return nil
	}
	return func(ctx context.Context) error {
		if d.LayoutReady != nil {
			select {
			case <-d.LayoutReady:
			case <-ctx.Done():
				return nil
			}
		}
		if done(ctx) {
			return nil
		}
		ctx, finished := context.WithCancel(ctx)
		defer finished()
		runLeased(ctx, store.State("forum"), "lease:migration:"+forumUserIDs, holder, ttl, log, func(ctx context.Context) {
			for wait := 10 * time.Second; ; wait = min(2*wait, 30*time.Minute) {
				err := once(ctx)
				if err == nil {
					finished() // every replica stops here, once it sees it done
					return
				}
				if ctx.Err() != nil {
					return
				}
				log.Warn("forum: could not move the customers recorded under their username to their user id; retrying", "err", err, "retry_in", wait)
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		})
		return nil
	}
}
