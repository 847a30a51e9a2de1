// Package configs loads and validates forgetmenot's configuration: environment
// variables (prefix FORGETMENOT_) and the owners roster and routing rules from
// YAML. Every error names the variable, or the file and line, to fix.
//
// The directory also holds example files that work as shipped.
package configs

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/forgetmenot/forgetmenot/internal/httpx"
	"github.com/kelseyhightower/envconfig"
)

// Prefix of every environment variable.
const Prefix = "FORGETMENOT"

// Config is everything set through the environment. The tags are the single
// source of the `forgetmenot config` listing.
type Config struct {
	RedisURL          string   `envconfig:"REDIS_URL" desc:"Redis URL: redis://[:password@]host:port/db or rediss:// for TLS; a Redis Cluster as redis+cluster://[:password@]host1:port1,host2:port2 (or rediss+cluster://). Empty: an embedded in-memory Redis whose data is lost on exit (for trying forgetmenot out)."`
	Namespace         string   `envconfig:"NAMESPACE" default:"fmn" desc:"Key namespace in Redis (also the Redis Cluster hash tag). Deployments sharing one Redis need different ones."`
	HTTPAddr          string   `envconfig:"HTTP_ADDR" default:"127.0.0.1:8080" desc:"Listen address of the HTTP server (webhook, API, health, metrics). The default answers this host only; :8080 listens on every interface and then needs API_TOKEN and WEBHOOK_SECRET (or the INSECURE_OPEN_ switches)."`
	OwnersFile        string   `envconfig:"OWNERS_FILE" default:"configs/owners.yaml" desc:"The owners roster: teams and the people who own complaints."`
	RoutingFile       string   `envconfig:"ROUTING_FILE" default:"configs/routing.yaml" desc:"Ordered routing rules and the default team."`
	WebhookSecret     Secrets  `envconfig:"WEBHOOK_SECRET" desc:"HMAC-SHA256 secret for X-Forgetmenot-Signature on POST /v1/messages; several comma-separated while rotating. Empty: only callers on this host are accepted (see TRUSTED_PROXIES), and serve refuses a non-loopback HTTP_ADDR unless INSECURE_OPEN_WEBHOOK is set."`
	APIToken          string   `envconfig:"API_TOKEN" desc:"Bearer token for the /v1 management API and the CLI. Empty: the API answers callers on this host only (see TRUSTED_PROXIES), and serve refuses a non-loopback HTTP_ADDR unless INSECURE_OPEN_API is set."`
	APIURL            string   `envconfig:"API_URL" desc:"CLI only: the daemon's base URL. Default: http://127.0.0.1 with the port of HTTP_ADDR."`
	ReopenWindow      Duration `envconfig:"REOPEN_WINDOW" default:"14d" desc:"A customer message on a complaint closed less than this long ago reopens it with the same owner; later ones open a follow-up."`
	DedupRetention    Duration `envconfig:"DEDUP_RETENTION" default:"90d" desc:"How long ingest idempotency keys (channel + source id) are kept: a source sending the same id again within this time is answered with the first message's id. 0 keeps them forever (the keys then grow without bound)."`
	OnceRetention     Duration `envconfig:"ONCE_RETENTION" default:"90d" desc:"How long the message → complaint index (routing's guard against redelivery, GET /v1/messages/{id}) and once-keys (delivery reports, notes, rate alerts) are kept. At least 63d: rate alerts look back 8 weeks (0: the default)."`
	Retention         Duration `envconfig:"RETENTION" default:"0" desc:"Closed complaints whose close lies longer ago than this (e.g. 2y, 730d) are pseudonymised in the background, in small batches, once across replicas (README: Privacy). 0 keeps them."`
	MaxMessageBytes   int64    `envconfig:"MAX_MESSAGE_BYTES" default:"1048576" desc:"Largest webhook request body accepted; larger ones get 413."`
	RouterWorkers     int      `envconfig:"ROUTER_WORKERS" default:"8" desc:"Concurrent routing workers in this process (replicas add their own). Each mostly waits on Redis, so more than cores pays."`
	DeliveryWorkers   int      `envconfig:"DELIVERY_WORKERS" default:"2" desc:"Concurrent outbox delivery workers (notifications, replies)."`
	MaxAttempts       int      `envconfig:"MAX_ATTEMPTS" default:"5" desc:"Attempts before a queue entry goes to the dead letters."`
	ReclaimIdle       Duration `envconfig:"RECLAIM_IDLE" default:"30s" desc:"An entry unacknowledged this long (its consumer died or hangs) is taken over by another consumer."`
	ConsumerName      string   `envconfig:"CONSUMER_NAME" desc:"This replica's name in the consumer groups. Default: hostname-port (the container's or pod's name and the HTTP port), stable across restarts. A stable name lets a restarted replica resume its own pending work at once."`
	ShutdownTimeout   Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"20s" desc:"On SIGTERM: how long in-flight requests and deliveries may take to finish."`
	LogLevel          string   `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error."`
	LogFormat         string   `envconfig:"LOG_FORMAT" default:"text" desc:"text (readable) or json (for log collectors)."`
	LogRepeatInterval Duration `envconfig:"LOG_REPEAT_INTERVAL" default:"10s" desc:"A warning or error repeated word for word (a failed read or dial during a Redis outage, also go-redis's own lines) is logged once per this interval, then summed up as \"N similar lines suppressed\"."`

	// Forum (Discourse) and web chat channels.
	DiscourseURL           string  `envconfig:"DISCOURSE_URL" desc:"Forum: the Discourse base URL (https://forum.example.com). Set it to take complaints from POST /v1/forum/discourse."`
	DiscourseWebhookSecret string  `envconfig:"DISCOURSE_WEBHOOK_SECRET" desc:"Forum: the secret of the Discourse webhook (X-Discourse-Event-Signature); required with DISCOURSE_URL."`
	DiscourseAPIKey        string  `envconfig:"DISCOURSE_API_KEY" desc:"Forum: API key for posting replies (and reading private categories and topics). Empty: replies cannot be posted in the forum; stock Discourse sends no e-mail addresses, so only a customer whose address a plugin supplied gets them by e-mail."`
	DiscourseAPIUsername   string  `envconfig:"DISCOURSE_API_USERNAME" desc:"Forum: the support account replies are posted as (required with DISCOURSE_API_KEY); its posts are never customer messages."`
	DiscourseCategories    Secrets `envconfig:"DISCOURSE_CATEGORIES" desc:"Forum: comma-separated category slugs or ids whose topics are complaints. Empty: every category (unless DISCOURSE_TAGS narrows it)."`
	DiscourseTags          Secrets `envconfig:"DISCOURSE_TAGS" desc:"Forum: comma-separated tags; a topic carrying one is a complaint whatever its category."`
	DiscourseStaff         Secrets `envconfig:"DISCOURSE_STAFF" desc:"Forum: comma-separated usernames whose posts are staff answers, recorded as replies, never customer messages (Discourse's staff, admins and moderators are recognised anyway)."`
	DiscourseAcknowledge   bool    `envconfig:"DISCOURSE_ACKNOWLEDGE" default:"true" desc:"Forum: answer a new complaint's topic with a short public post naming its owner."`
	ChatEnabled            bool    `envconfig:"CHAT_ENABLED" default:"true" desc:"Web chat: serve /chat/widget.js, /chat/demo and the WebSocket /chat/ws."`
	ChatAllowedOrigins     Secrets `envconfig:"CHAT_ALLOWED_ORIGINS" desc:"Web chat: comma-separated origins of the sites embedding the widget (https://shop.example.com, or host patterns like *.example.com). Empty: this daemon's own host only."`
	ChatMaxMessageBytes    int     `envconfig:"CHAT_MAX_MESSAGE_BYTES" default:"4000" desc:"Web chat: longest chat message accepted."`
	ChatRatePerMinute      int     `envconfig:"CHAT_RATE_PER_MINUTE" default:"20" desc:"Web chat: messages per minute per chat session."`
	ChatIPRatePerMinute    int     `envconfig:"CHAT_IP_RATE_PER_MINUTE" default:"60" desc:"Web chat: messages per minute per client IP address (the connection's peer: behind a proxy, all visitors share it)."`
	// Web chat: socket limits, the unseen-reply e-mail and the texts.
	ChatMaxConnections         int      `envconfig:"CHAT_MAX_CONNECTIONS" default:"10000" desc:"Web chat: open chat sockets this replica accepts in all; more get 503 and the widget says the chat is busy."`
	ChatMaxConnectionsPerIP    int      `envconfig:"CHAT_MAX_CONNECTIONS_PER_IP" default:"20" desc:"Web chat: open chat sockets per client IP address on this replica; more get 429 and the widget says the chat is busy."`
	ChatSessionsPerIPPerMinute int      `envconfig:"CHAT_SESSIONS_PER_IP_PER_MINUTE" default:"10" desc:"Web chat: new chat sessions a client IP address may start per minute (returning visitors are not counted)."`
	ChatHelloTimeout           Duration `envconfig:"CHAT_HELLO_TIMEOUT" default:"10s" desc:"Web chat: a socket that does not say hello this long after the upgrade is closed."`
	ChatIdleTimeout            Duration `envconfig:"CHAT_IDLE_TIMEOUT" default:"10m" desc:"Web chat: a socket that sends nothing this long is closed with a reason the widget shows (the widget pings every 50 s while its page is open)."`
	ChatUnseenEmailAfter       Duration `envconfig:"CHAT_UNSEEN_EMAIL_AFTER" default:"10m" desc:"Web chat: a staff reply or promise delivered live but not seen in the widget this long is e-mailed, when the visitor left an address and e-mail is configured. 0: never."`
	ChatTemplates              string   `envconfig:"CHAT_TEMPLATES" desc:"Web chat: directory of chat texts (<lang>.tmpl or <name>.<lang>.tmpl) that replace the shipped ones file by file (en is the fallback; copy from configs/chat-templates). Empty: the shipped texts (nl, en, de, fr)."`
	// Forum: staff groups, editable texts, category refresh.
	DiscourseStaffGroups     Secrets  `envconfig:"DISCOURSE_STAFF_GROUPS" desc:"Forum: comma-separated Discourse groups whose members' posts are staff answers (matched on the post's primary or flair group)."`
	DiscourseTemplates       string   `envconfig:"DISCOURSE_TEMPLATES" desc:"Forum: directory of <kind>.<lang>.tmpl files that replace the shipped forum texts one by one (acknowledgement, reply, promise, csat; en is the fallback). Empty: the shipped nl, en, de and fr texts."`
	DiscourseCategoryRefresh Duration `envconfig:"DISCOURSE_CATEGORY_REFRESH" default:"10m" desc:"Forum: how long the category tree read from /categories.json (slugs, subcategories) is trusted before it is read again."`
	// Slack: staff notifications and actions. Without a bot token Slack is
	// off and notifications go to the log.
	SlackBotToken      string   `envconfig:"SLACK_BOT_TOKEN" desc:"Slack bot token (xoxb-…). Set: owners are told in Slack and act from there. Empty: notifications go to the log."`
	SlackAppToken      string   `envconfig:"SLACK_APP_TOKEN" desc:"Slack app-level token (xapp-…, scope connections:write) for Socket Mode."`
	SlackSigningSecret string   `envconfig:"SLACK_SIGNING_SECRET" desc:"Slack signing secret; HTTP mode verifies every request on /slack/events, /slack/interactivity and /slack/commands with it."`
	SlackMode          string   `envconfig:"SLACK_MODE" default:"socket" desc:"socket (no public URL needed; needs SLACK_APP_TOKEN) or http (Slack calls /slack/...; needs SLACK_SIGNING_SECRET)."`
	SlackLeadChannel   string   `envconfig:"SLACK_LEAD_CHANNEL" desc:"Slack channel id (C…) for escalations, over-capacity notices, complaint-rate alerts and the weekly digest; invite the app to it. Empty: none."`
	SlackCategories    []string `envconfig:"SLACK_CATEGORIES" default:"product defect,delivery,billing,service,website or app,policy,customer misunderstanding,other" desc:"Root-cause categories offered when closing from Slack, comma-separated."`
	SlackAPIURL        string   `envconfig:"SLACK_API_URL" desc:"Slack Web API base URL; only for tests and proxies (default https://slack.com/api/)."`
	// Accountability: deadlines, reminders, satisfaction questions.
	TargetsFile string   `envconfig:"TARGETS_FILE" default:"configs/targets.yaml" desc:"Accountability targets: response and resolution deadlines, business calendars, reminders, the complaint-rate watch."`
	TimerPoll   Duration `envconfig:"TIMER_POLL" default:"15s" desc:"How often each replica looks for due reminders and breaches (each fires once, whichever replica finds it)."`
	PublicURL   string   `envconfig:"PUBLIC_URL" desc:"The daemon's address as customers reach it (https://support.example.com), for the satisfaction links. Empty: no satisfaction question."`
	CSATSecret  string   `envconfig:"CSAT_SECRET" desc:"Secret (16+ characters) that signs the satisfaction links; needed with PUBLIC_URL."`
	CSATLinkTTL Duration `envconfig:"CSAT_LINK_TTL" default:"30d" desc:"How long after the close a satisfaction link still records an answer (the answer may be changed 3 times)."`
	// Reports: close categories, the weekly digest and its report links.
	Categories       []string `envconfig:"CATEGORIES" desc:"Root-cause categories a close must choose from, by API, CLI and Slack alike, comma-separated. Empty: SLACK_CATEGORIES (the older name) applies."`
	Digest           string   `envconfig:"DIGEST" default:"monday 09:00" desc:"When the weekly digest of last week goes to SLACK_LEAD_CHANNEL: a weekday and a time of the default business calendar (moved to the next start of work when that is not working time), or off."`
	ReportLinkSecret string   `envconfig:"REPORT_LINK_SECRET" desc:"Secret (16+ characters) that signs the digest's links to the HTML report (PUBLIC_URL/v1/report…): each opens one week's report without the API token until it expires. Empty: the link is unsigned when no API_TOKEN is set, else the digest has none."`
	ReportLinkTTL    Duration `envconfig:"REPORT_LINK_TTL" default:"14d" desc:"How long a digest's signed report link works."`
	// E-mail channel: IMAP intake from the mailboxes file, SMTP for
	// acknowledgements and replies. Both off when unset.
	MailboxesFile       string `envconfig:"MAILBOXES_FILE" desc:"IMAP mailboxes to read customer mail from (see configs/mailboxes.yaml). Empty: no e-mail intake."`
	SMTPHost            string `envconfig:"SMTP_HOST" desc:"SMTP server for mail to customers (acknowledgements, replies). Empty: no outbound e-mail."`
	SMTPPort            int    `envconfig:"SMTP_PORT" default:"587" desc:"SMTP port: 587 for STARTTLS, 465 for implicit TLS."`
	SMTPTLS             string `envconfig:"SMTP_TLS" default:"starttls" desc:"starttls, implicit or none (local servers only)."`
	SMTPUsername        string `envconfig:"SMTP_USERNAME" desc:"SMTP login (AUTH PLAIN); empty: no login."`
	SMTPPassword        string `envconfig:"SMTP_PASSWORD" desc:"SMTP password (or use SMTP_PASSWORD_FILE)."`
	SMTPPasswordFile    string `envconfig:"SMTP_PASSWORD_FILE" desc:"File holding the SMTP password (a Docker or Kubernetes secret)."`
	SMTPAuth            string `envconfig:"SMTP_AUTH" default:"password" desc:"password (AUTH PLAIN with SMTP_USERNAME, or no login without one) or oauth2 (XOAUTH2/OAUTHBEARER with the token of the mailbox SMTP_OAUTH2_MAILBOX; Microsoft 365, Google)."`
	SMTPOAuth2Mailbox   string `envconfig:"SMTP_OAUTH2_MAILBOX" desc:"With SMTP_AUTH=oauth2: the mailbox (name in MAILBOXES_FILE, auth: oauth2) whose token signs in to SMTP; SMTP_USERNAME defaults to its username."`
	SMTPFrom            string `envconfig:"SMTP_FROM" desc:"From address of mail to customers, e.g. 'Klantenservice <support@example.nl>'. Required with SMTP_HOST."`
	EmailPlusAddressing bool   `envconfig:"EMAIL_PLUS_ADDRESSING" default:"false" desc:"Reply-To support+c-1042@… on mail to customers, so answers find their complaint even without threading headers (the mail server must deliver plus-addresses to the mailbox)."`
	EmailTemplates      string `envconfig:"EMAIL_TEMPLATES" default:"configs/email-templates" desc:"Directory of the editable acknowledgement, reply and promise templates (<kind>.<lang>.tmpl; en is the fallback)."`
	// Exposure: whose word about the client address counts, and the
	// explicit switches that open a surface without its secret.
	TrustedProxies      []string `envconfig:"TRUSTED_PROXIES" desc:"Comma-separated CIDRs or addresses of the reverse proxies in front of the daemon (127.0.0.1/32 for nginx on this host, the ingress' pod network). Only their X-Forwarded-For is believed; the rightmost hop that is not a trusted proxy is the client. Empty: no forwarding header is believed, and a request carrying one is never local."`
	InsecureOpenAPI     bool     `envconfig:"INSECURE_OPEN_API" default:"false" desc:"true: without API_TOKEN the /v1 management API answers EVERY caller, which can read and change every complaint. Only behind something else that guards the daemon; warned about at every start."`
	InsecureOpenWebhook bool     `envconfig:"INSECURE_OPEN_WEBHOOK" default:"false" desc:"true: without WEBHOOK_SECRET POST /v1/messages accepts unsigned complaints from EVERY caller. Warned about at every start."`
	MetricsToken        string   `envconfig:"METRICS_TOKEN" desc:"Bearer token /metrics asks for (Prometheus: authorization: {credentials: …}). Empty: /metrics answers everyone (warned about when HTTP_ADDR is not loopback)."`
	ConsumerExpiry      Duration `envconfig:"CONSUMER_EXPIRY" default:"1h" desc:"A consumer in the Redis consumer groups idle this long with nothing pending (a replica that is gone) is removed. Entries still pending are never lost: such a consumer stays until they are taken over. 0 keeps them all."`
}

// FromEnv reads and validates the configuration from the environment.
func FromEnv() (Config, error) {
	// An empty variable means "use the default", as compose files and
	// orchestrators often set variables to "" rather than leave them out.
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		if key := t.Field(i).Tag.Get("envconfig"); key != "" {
			if v, set := os.LookupEnv(Var(key)); set && strings.TrimSpace(v) == "" {
				_ = os.Unsetenv(Var(key))
			}
		}
	}
	var c Config
	if err := envconfig.Process(Prefix, &c); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			// envconfig names Go types; say it in the operator's words.
			var ne *strconv.NumError
			if errors.As(pe.Err, &ne) {
				want := map[string]string{"ParseBool": "true or false", "ParseInt": "a whole number", "ParseUint": "a whole number, 0 or more", "ParseFloat": "a number"}[ne.Func]
				if want != "" {
					return Config{}, fmt.Errorf("configuration: %s: %q is not valid: want %s", pe.KeyName, pe.Value, want)
				}
			}
			return Config{}, fmt.Errorf("configuration: %s: %q is not valid: %w", pe.KeyName, pe.Value, pe.Err)
		}
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Var is the full environment variable name for a key such as "REDIS_URL".
func Var(key string) string { return Prefix + "_" + key }

// Validate checks values envconfig cannot: URLs, addresses, ranges.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("configuration: %s: %s", Var(key), fmt.Sprintf(format, args...))
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil {
			return bad("REDIS_URL", "not a URL: %v", err)
		}
		if !oneOf(u.Scheme, "redis", "rediss", "redis+cluster", "rediss+cluster") {
			return bad("REDIS_URL", "scheme must be redis://, rediss://, redis+cluster:// or rediss+cluster://, not %q", u.Scheme)
		}
		if strings.HasSuffix(u.Scheme, "+cluster") {
			if p := strings.TrimPrefix(u.Path, "/"); p != "" && p != "0" {
				return bad("REDIS_URL", "a Redis Cluster has only database 0, not %q", p)
			}
			for _, node := range strings.Split(u.Host, ",") {
				if _, port, err := net.SplitHostPort(strings.TrimSpace(node)); err != nil || port == "" {
					return bad("REDIS_URL", "cluster node %q: want host:port", node)
				}
			}
			if opt := ReplicaReadOption(u.Query()); opt != "" {
				return bad("REDIS_URL", "%s sends reads to replicas, which lag behind their master: forgetmenot reads what it just wrote (routing, the API, an erasure's scans); remove it", opt)
			}
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return bad("HTTP_ADDR", "want host:port or :port: %v", err)
	}
	if c.APIURL != "" {
		if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return bad("API_URL", "want an http:// or https:// URL, got %q", c.APIURL)
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("PUBLIC_URL", "want an http:// or https:// URL, got %q", c.PublicURL)
		}
		if len(c.CSATSecret) < 16 {
			return bad("CSAT_SECRET", "set a secret of at least 16 characters to sign the satisfaction links for PUBLIC_URL")
		}
	}
	if _, _, _, err := c.DigestSchedule(); err != nil {
		return bad("DIGEST", "%v", err)
	}
	if c.ReportLinkSecret != "" && len(c.ReportLinkSecret) < 16 {
		return bad("REPORT_LINK_SECRET", "use a secret of at least 16 characters")
	}
	// Slack offers the categories as a static select: at most 100 options,
	// each at most 75 characters.
	cats := c.CloseCategories()
	if len(cats) > 100 {
		return bad("CATEGORIES", "%d categories; Slack's close menu takes at most 100", len(cats))
	}
	for _, cat := range cats {
		if utf8.RuneCountInString(cat) > 75 {
			return bad("CATEGORIES", "category %q is longer than 75 characters, the most a Slack menu option shows", cat)
		}
	}
	if _, err := httpx.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return bad("TRUSTED_PROXIES", "%v", err)
	}
	if c.ConsumerExpiry != 0 && (c.ConsumerExpiry.D() < time.Minute || c.ConsumerExpiry.D() <= c.ReclaimIdle.D()) {
		return bad("CONSUMER_EXPIRY", "0 (keep) or at least 1m and longer than RECLAIM_IDLE (%s)", c.ReclaimIdle)
	}
	for i, s := range c.WebhookSecret {
		if len(s) < 16 {
			return bad("WEBHOOK_SECRET", "secret %d is shorter than 16 characters; use a long random value", i+1)
		}
	}
	if err := c.validateForumChat(); err != nil {
		return err
	}
	if err := c.validateSlack(bad); err != nil {
		return err
	}
	if err := c.validateEmail(bad); err != nil {
		return err
	}
	checks := []struct {
		key string
		ok  bool
		why string
	}{
		{"NAMESPACE", namespaceOK(c.Namespace), "use 1-32 letters, digits, '-' or '_'"},
		{"REOPEN_WINDOW", c.ReopenWindow >= 0, "must not be negative"},
		{"DEDUP_RETENTION", c.DedupRetention == 0 || c.DedupRetention.D() >= time.Hour, "0 (forever) or at least 1h, or retried deliveries would be taken as new"},
		{"ONCE_RETENTION", c.OnceRetention == 0 || c.OnceRetention.D() >= 63*24*time.Hour, "at least 63d: redeliveries and the 8-week complaint-rate look-back need it"},
		{"MAX_MESSAGE_BYTES", c.MaxMessageBytes >= 1024, "must be at least 1024"},
		{"ROUTER_WORKERS", c.RouterWorkers >= 1 && c.RouterWorkers <= 256, "must be 1-256"},
		{"DELIVERY_WORKERS", c.DeliveryWorkers >= 1 && c.DeliveryWorkers <= 256, "must be 1-256"},
		{"MAX_ATTEMPTS", c.MaxAttempts >= 1, "must be at least 1"},
		{"RECLAIM_IDLE", c.ReclaimIdle.D() >= time.Second, "must be at least 1s"},
		{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout.D() >= time.Second, "must be at least 1s"},
		{"RETENTION", c.Retention == 0 || c.Retention.D() >= 24*time.Hour, "0 (off) or at least 1d"},
		{"TIMER_POLL", c.TimerPoll == 0 || c.TimerPoll.D() >= 100*time.Millisecond, "must be at least 100ms"},
		{"LOG_LEVEL", oneOf(c.LogLevel, "debug", "info", "warn", "error"), "must be debug, info, warn or error"},
		{"LOG_FORMAT", oneOf(c.LogFormat, "text", "json"), "must be text or json"},
	}
	for _, ch := range checks {
		if !ch.ok {
			return bad(ch.key, "%s", ch.why)
		}
	}
	return nil
}

func (c Config) validateSlack(bad func(key, format string, args ...any) error) error {
	if c.SlackBotToken == "" {
		return nil
	}
	switch {
	case !strings.HasPrefix(c.SlackBotToken, "xoxb-"):
		return bad("SLACK_BOT_TOKEN", "want the bot token (xoxb-…), from the app's OAuth & Permissions page")
	case c.SlackMode != "socket" && c.SlackMode != "http":
		return bad("SLACK_MODE", "must be socket or http, not %q", c.SlackMode)
	case c.SlackMode == "socket" && !strings.HasPrefix(c.SlackAppToken, "xapp-"):
		return bad("SLACK_APP_TOKEN", "socket mode needs the app-level token (xapp-…, Basic Information → App-Level Tokens, scope connections:write)")
	case c.SlackMode == "http" && len(c.SlackSigningSecret) < 16:
		return bad("SLACK_SIGNING_SECRET", "http mode needs the signing secret (Basic Information → App Credentials)")
	case c.SlackLeadChannel != "" && !slackChannelID(c.SlackLeadChannel):
		return bad("SLACK_LEAD_CHANNEL", "want a channel id like C0123ABCD (channel details → bottom), not %q", c.SlackLeadChannel)
	}
	if c.SlackAPIURL != "" {
		if u, err := url.Parse(c.SlackAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return bad("SLACK_API_URL", "want an http:// or https:// URL, got %q", c.SlackAPIURL)
		}
	}
	return nil
}

// validateEmail checks the e-mail channel's variables.
func (c Config) validateEmail(bad func(key, format string, args ...any) error) error {
	if c.SMTPHost == "" {
		return nil
	}
	switch {
	case c.SMTPFrom == "":
		return bad("SMTP_FROM", "is required with SMTP_HOST: the address customers see and answer to")
	case c.SMTPPort < 1 || c.SMTPPort > 65535:
		return bad("SMTP_PORT", "%d is not a port", c.SMTPPort)
	case !oneOf(c.SMTPTLS, "starttls", "implicit", "none"):
		return bad("SMTP_TLS", "use starttls, implicit or none, not %q", c.SMTPTLS)
	case c.SMTPPassword != "" && c.SMTPPasswordFile != "":
		return bad("SMTP_PASSWORD_FILE", "set either SMTP_PASSWORD or SMTP_PASSWORD_FILE, not both")
	case !oneOf(c.SMTPAuth, "", "password", "oauth2"): // "": a Config built in code
		return bad("SMTP_AUTH", "use password or oauth2, not %q", c.SMTPAuth)
	case c.SMTPAuth == "oauth2" && c.SMTPOAuth2Mailbox == "":
		return bad("SMTP_OAUTH2_MAILBOX", "is required with SMTP_AUTH=oauth2: the mailbox in MAILBOXES_FILE whose token signs in to SMTP")
	case c.SMTPAuth == "oauth2" && c.MailboxesFile == "":
		return bad("MAILBOXES_FILE", "is required with SMTP_AUTH=oauth2: the OAuth settings live with the mailbox %s", c.SMTPOAuth2Mailbox)
	case c.SMTPAuth == "oauth2" && (c.SMTPPassword != "" || c.SMTPPasswordFile != ""):
		return bad("SMTP_PASSWORD", "is not used with SMTP_AUTH=oauth2; unset it")
	}
	if a, err := mail.ParseAddress(c.SMTPFrom); err != nil || !strings.Contains(a.Address, "@") {
		return bad("SMTP_FROM", "%q is not an e-mail address", c.SMTPFrom)
	}
	return nil
}

func slackChannelID(s string) bool {
	if len(s) < 3 || (s[0] != 'C' && s[0] != 'G') {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func namespaceOK(ns string) bool {
	if len(ns) == 0 || len(ns) > 32 {
		return false
	}
	for _, r := range ns {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func oneOf(v string, options ...string) bool {
	for _, o := range options {
		if v == o {
			return true
		}
	}
	return false
}

// DaemonURL is where the CLI finds the daemon.
func (c Config) DaemonURL() string {
	if c.APIURL != "" {
		return strings.TrimRight(c.APIURL, "/")
	}
	_, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil || port == "" {
		port = "8080"
	}
	return "http://127.0.0.1:" + port
}

// PrintUsage writes every variable with its default and description, straight
// from the Config struct's tags, whatever the environment holds.
func PrintUsage(w io.Writer) error {
	return WriteSettings(w, Settings(func(string) (string, bool) { return "", false }))
}

// Duration is a time.Duration that also accepts days ("14d").
type Duration time.Duration

// Decode implements envconfig.Decoder.
func (d *Duration) Decode(v string) error {
	v = strings.TrimSpace(v)
	if years, ok := strings.CutSuffix(v, "y"); ok {
		// A year is 365 days: retention periods are said in years.
		n, err := strconv.ParseFloat(years, 64)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 2y, 14d, 36h or 90s", v)
		}
		*d = Duration(n * float64(365*24*time.Hour))
		return nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 14d, 36h or 90s", v)
		}
		*d = Duration(n * float64(24*time.Hour))
		return nil
	}
	if v == "0" {
		*d = 0
		return nil
	}
	p, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a duration like 14d, 36h or 90s", v)
	}
	*d = Duration(p)
	return nil
}

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// Secrets is a comma-separated list of secrets (several during rotation).
type Secrets []string

// Decode implements envconfig.Decoder.
func (s *Secrets) Decode(v string) error {
	*s = nil
	for _, part := range strings.Split(v, ",") {
		if p := strings.TrimSpace(part); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

// ConsumerNameOrDefault is CONSUMER_NAME, or else a name that stays the
// same when this replica restarts: the host name (a container's or pod's
// name) and the HTTP port, which no two processes on one host share. Only
// when the port is chosen at random (":0") is the process id used instead.
// A stable name lets a restarted replica resume its own pending entries at
// once rather than after RECLAIM_IDLE; replicas that are gone are removed
// from the consumer groups after CONSUMER_EXPIRY.
func (c Config) ConsumerNameOrDefault() string {
	if c.ConsumerName != "" {
		return c.ConsumerName
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "forgetmenot"
	}
	_, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil || port == "" || port == "0" {
		return h + "-pid" + strconv.Itoa(os.Getpid())
	}
	return h + "-" + port
}

// CloseCategories are the root causes a close must choose from:
// CATEGORIES, or else SLACK_CATEGORIES (the older name, which has a
// default list).
func (c Config) CloseCategories() []string {
	src := c.Categories
	if len(src) == 0 {
		src = c.SlackCategories
	}
	var out []string
	for _, s := range src {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// DigestSchedule reads DIGEST ("monday 09:00", "mon 8:30", "off"); on is
// false when the digest is off (or unset, in a Config built by hand).
func (c Config) DigestSchedule() (day time.Weekday, at time.Duration, on bool, err error) {
	v := strings.ToLower(strings.TrimSpace(c.Digest))
	if v == "" || v == "off" {
		return 0, 0, false, nil
	}
	dayName, clock, ok := strings.Cut(v, " ")
	if !ok {
		return 0, 0, false, fmt.Errorf("want a weekday and a time like \"monday 09:00\", or off; got %q", c.Digest)
	}
	found := false
	for d := time.Sunday; d <= time.Saturday; d++ {
		name := strings.ToLower(d.String())
		if dayName == name || (len(dayName) >= 3 && strings.HasPrefix(name, dayName)) {
			day, found = d, true
		}
	}
	t, terr := time.Parse("15:04", strings.TrimSpace(clock))
	if !found || terr != nil {
		return 0, 0, false, fmt.Errorf("want a weekday and a time like \"monday 09:00\", or off; got %q", c.Digest)
	}
	return day, time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, true, nil
}

// ReplicaReadOption names the option of a Redis Cluster URL's query that
// would send reads to replicas (read_only, route_by_latency,
// route_randomly), or "" when none is on.
func ReplicaReadOption(q url.Values) string {
	for _, o := range []string{"read_only", "route_by_latency", "route_randomly"} {
		if v := strings.ToLower(q.Get(o)); q.Has(o) && v != "false" && v != "0" {
			return o
		}
	}
	return ""
}
