package configs

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// validateForumChat checks the forum and chat variables.
func (c Config) validateForumChat() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("configuration: %s: %s", Var(key), fmt.Sprintf(format, args...))
	}
	if c.DiscourseURL != "" {
		if u, err := url.Parse(c.DiscourseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("DISCOURSE_URL", "want the forum's http:// or https:// base URL, got %q", c.DiscourseURL)
		}
		if len(c.DiscourseWebhookSecret) < 16 {
			return bad("DISCOURSE_WEBHOOK_SECRET", "is required with %s and must be at least 16 characters: set the same long random value as the webhook's secret in Discourse", Var("DISCOURSE_URL"))
		}
	} else if c.DiscourseWebhookSecret != "" || c.DiscourseAPIKey != "" {
		return bad("DISCOURSE_URL", "is required when other DISCOURSE_ variables are set")
	}
	if c.DiscourseURL != "" && c.DiscourseCategoryRefresh.D() < time.Minute {
		return bad("DISCOURSE_CATEGORY_REFRESH", "must be at least 1m (the category tree is read from Discourse this often)")
	}
	if (c.DiscourseAPIKey == "") != (c.DiscourseAPIUsername == "") {
		return bad("DISCOURSE_API_USERNAME", "%s and %s go together: the key and the support account it posts as", Var("DISCOURSE_API_KEY"), Var("DISCOURSE_API_USERNAME"))
	}
	for _, o := range c.ChatAllowedOrigins {
		if strings.Contains(o, "://") {
			if u, err := url.Parse(o); err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return bad("CHAT_ALLOWED_ORIGINS", "%q is not an origin like https://shop.example.com", o)
			}
		}
	}
	if c.ChatEnabled {
		switch {
		case c.ChatMaxMessageBytes < 100 || c.ChatMaxMessageBytes > 64<<10:
			return bad("CHAT_MAX_MESSAGE_BYTES", "must be 100-65536")
		case c.ChatRatePerMinute < 1:
			return bad("CHAT_RATE_PER_MINUTE", "must be at least 1")
		case c.ChatIPRatePerMinute < 1:
			return bad("CHAT_IP_RATE_PER_MINUTE", "must be at least 1")
		case c.ChatMaxConnections < 0:
			return bad("CHAT_MAX_CONNECTIONS", "must not be negative (0: the default)")
		case c.ChatMaxConnectionsPerIP < 0:
			return bad("CHAT_MAX_CONNECTIONS_PER_IP", "must not be negative (0: the default)")
		case c.ChatSessionsPerIPPerMinute < 0:
			return bad("CHAT_SESSIONS_PER_IP_PER_MINUTE", "must not be negative (0: the default)")
		case c.ChatHelloTimeout != 0 && (c.ChatHelloTimeout.D() < 100*time.Millisecond || c.ChatHelloTimeout.D() > time.Minute):
			return bad("CHAT_HELLO_TIMEOUT", "must be 100ms-1m")
		case c.ChatIdleTimeout != 0 && c.ChatIdleTimeout.D() < time.Second:
			return bad("CHAT_IDLE_TIMEOUT", "must be at least 1s")
		case c.ChatUnseenEmailAfter < 0:
			return bad("CHAT_UNSEEN_EMAIL_AFTER", "must not be negative (0: never)")
		}
	}
	return nil
}
