package daemon

import (
	"net/http"

	"github.com/forgetmenot/forgetmenot/channels/forum"
	"github.com/forgetmenot/forgetmenot/router"
)

func init() { componentBuilders = append(componentBuilders, buildForum) }

// buildForum takes complaints from a Discourse webhook and, with an API key,
// answers in the topic.
func buildForum(d Deps) (*Component, error) {
	cfg := d.Config
	if cfg.DiscourseURL == "" {
		return nil, nil
	}
	state := d.Store.State("forum")
	staff := append([]string(nil), cfg.DiscourseStaff...)
	if cfg.DiscourseAPIUsername != "" {
		// Our own replies come back as post_created: never a customer's.
		staff = append(staff, cfg.DiscourseAPIUsername)
	}
	h := forum.New(forum.Config{
		Queue: d.Ingest, State: state, Secret: cfg.DiscourseWebhookSecret, MaxBytes: cfg.MaxMessageBytes,
		Filter: forum.Filter{Categories: cfg.DiscourseCategories, Tags: cfg.DiscourseTags, Staff: staff},
		Logger: d.Log.With("component", "forum"),
	})
	c := &Component{
		Name: "forum", Channel: router.ChannelForum,
		Routes: map[string]http.Handler{"POST /v1/forum/discourse": h},
	}
	if cfg.DiscourseAPIKey != "" {
		c.Sender = forum.NewSender(forum.SenderConfig{
			BaseURL: cfg.DiscourseURL, APIKey: cfg.DiscourseAPIKey, APIUsername: cfg.DiscourseAPIUsername,
			Acknowledge: cfg.DiscourseAcknowledge, State: state,
		})
	} else {
		d.Log.Warn("forum: no FORGETMENOT_DISCOURSE_API_KEY, so replies cannot be posted in the forum; they go by e-mail when the customer's address is known")
	}
	return c, nil
}
