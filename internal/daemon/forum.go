package daemon

import (
	"fmt"
	"net/http"
	"strings"

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
