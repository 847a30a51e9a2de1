// Package configs loads and validates forgetmenot's configuration: environment
// variables (prefix FORGETMENOT_) and the owners roster and routing rules from
// YAML. Every error names the variable, or the file and line, to fix.
//
// The directory also holds example files that work as shipped.
package configs

import (
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Prefix of every environment variable.
const Prefix = "FORGETMENOT"

// Config is everything set through the environment. The tags are the single
// source of the `forgetmenot config` listing.
type Config struct {
	RedisURL        string   `envconfig:"REDIS_URL" desc:"Redis URL: redis://[:password@]host:port/db or rediss:// for TLS. Empty: an embedded in-memory Redis whose data is lost on exit (for trying forgetmenot out)."`
	Namespace       string   `envconfig:"NAMESPACE" default:"fmn" desc:"Key namespace in Redis (also the Redis Cluster hash tag). Deployments sharing one Redis need different ones."`
	HTTPAddr        string   `envconfig:"HTTP_ADDR" default:":8080" desc:"Listen address of the HTTP server (webhook, API, health, metrics)."`
	OwnersFile      string   `envconfig:"OWNERS_FILE" default:"configs/owners.yaml" desc:"The owners roster: teams and the people who own complaints."`
	RoutingFile     string   `envconfig:"ROUTING_FILE" default:"configs/routing.yaml" desc:"Ordered routing rules and the default team."`
	WebhookSecret   Secrets  `envconfig:"WEBHOOK_SECRET" desc:"HMAC-SHA256 secret for X-Forgetmenot-Signature on POST /v1/messages; several comma-separated while rotating. Empty: only loopback callers are accepted."`
	APIToken        string   `envconfig:"API_TOKEN" desc:"Bearer token for the /v1 management API and the CLI. Empty: the API answers loopback callers only."`
	APIURL          string   `envconfig:"API_URL" desc:"CLI only: the daemon's base URL. Default: http://127.0.0.1 with the port of HTTP_ADDR."`
	ReopenWindow    Duration `envconfig:"REOPEN_WINDOW" default:"14d" desc:"A customer message on a complaint closed less than this long ago reopens it with the same owner; later ones open a follow-up."`
	DedupRetention  Duration `envconfig:"DEDUP_RETENTION" default:"0" desc:"How long ingest idempotency keys (channel + source id) are kept. 0 keeps them forever."`
	MaxMessageBytes int64    `envconfig:"MAX_MESSAGE_BYTES" default:"1048576" desc:"Largest webhook request body accepted; larger ones get 413."`
	RouterWorkers   int      `envconfig:"ROUTER_WORKERS" default:"4" desc:"Concurrent routing workers in this process (replicas add their own)."`
	DeliveryWorkers int      `envconfig:"DELIVERY_WORKERS" default:"2" desc:"Concurrent outbox delivery workers (notifications, replies)."`
	MaxAttempts     int      `envconfig:"MAX_ATTEMPTS" default:"5" desc:"Attempts before a queue entry goes to the dead letters."`
	ReclaimIdle     Duration `envconfig:"RECLAIM_IDLE" default:"30s" desc:"An entry unacknowledged this long (its consumer died or hangs) is taken over by another consumer."`
	ConsumerName    string   `envconfig:"CONSUMER_NAME" desc:"This replica's name in the consumer groups. Default: hostname-pid. A stable name lets a restarted replica resume its own pending work at once."`
	ShutdownTimeout Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"20s" desc:"On SIGTERM: how long in-flight requests and deliveries may take to finish."`
	LogLevel        string   `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error."`
	LogFormat       string   `envconfig:"LOG_FORMAT" default:"text" desc:"text (readable) or json (for log collectors)."`

	// E-mail channel: IMAP intake from the mailboxes file, SMTP for
	// acknowledgements and replies. Both off when unset.
	MailboxesFile       string `envconfig:"MAILBOXES_FILE" desc:"IMAP mailboxes to read customer mail from (see configs/mailboxes.yaml). Empty: no e-mail intake."`
	SMTPHost            string `envconfig:"SMTP_HOST" desc:"SMTP server for mail to customers (acknowledgements, replies). Empty: no outbound e-mail."`
	SMTPPort            int    `envconfig:"SMTP_PORT" default:"587" desc:"SMTP port: 587 for STARTTLS, 465 for implicit TLS."`
	SMTPTLS             string `envconfig:"SMTP_TLS" default:"starttls" desc:"starttls, implicit or none (local servers only)."`
	SMTPUsername        string `envconfig:"SMTP_USERNAME" desc:"SMTP login (AUTH PLAIN); empty: no login."`
	SMTPPassword        string `envconfig:"SMTP_PASSWORD" desc:"SMTP password (or use SMTP_PASSWORD_FILE)."`
	SMTPPasswordFile    string `envconfig:"SMTP_PASSWORD_FILE" desc:"File holding the SMTP password (a Docker or Kubernetes secret)."`
	SMTPFrom            string `envconfig:"SMTP_FROM" desc:"From address of mail to customers, e.g. 'Klantenservice <support@example.nl>'. Required with SMTP_HOST."`
	EmailPlusAddressing bool   `envconfig:"EMAIL_PLUS_ADDRESSING" default:"false" desc:"Reply-To support+c-1042@… on mail to customers, so answers find their complaint even without threading headers (the mail server must deliver plus-addresses to the mailbox)."`
	EmailTemplates      string `envconfig:"EMAIL_TEMPLATES" default:"configs/email-templates" desc:"Directory of the editable acknowledgement, reply and promise templates (<kind>.<lang>.tmpl; en is the fallback)."`
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
		if u.Scheme != "redis" && u.Scheme != "rediss" {
			return bad("REDIS_URL", "scheme must be redis:// or rediss://, not %q", u.Scheme)
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
	for i, s := range c.WebhookSecret {
		if len(s) < 16 {
			return bad("WEBHOOK_SECRET", "secret %d is shorter than 16 characters; use a long random value", i+1)
		}
	}
	checks := []struct {
		key string
		ok  bool
		why string
	}{
		{"NAMESPACE", namespaceOK(c.Namespace), "use 1-32 letters, digits, '-' or '_'"},
		{"REOPEN_WINDOW", c.ReopenWindow >= 0, "must not be negative"},
		{"DEDUP_RETENTION", c.DedupRetention == 0 || c.DedupRetention.D() >= time.Hour, "0 (forever) or at least 1h, or retried deliveries would be taken as new"},
		{"MAX_MESSAGE_BYTES", c.MaxMessageBytes >= 1024, "must be at least 1024"},
		{"ROUTER_WORKERS", c.RouterWorkers >= 1 && c.RouterWorkers <= 256, "must be 1-256"},
		{"DELIVERY_WORKERS", c.DeliveryWorkers >= 1 && c.DeliveryWorkers <= 256, "must be 1-256"},
		{"MAX_ATTEMPTS", c.MaxAttempts >= 1, "must be at least 1"},
		{"RECLAIM_IDLE", c.ReclaimIdle.D() >= time.Second, "must be at least 1s"},
		{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout.D() >= time.Second, "must be at least 1s"},
		{"LOG_LEVEL", oneOf(c.LogLevel, "debug", "info", "warn", "error"), "must be debug, info, warn or error"},
		{"LOG_FORMAT", oneOf(c.LogFormat, "text", "json"), "must be text or json"},
	}
	if err := c.validateEmail(bad); err != nil {
		return err
	}
	for _, ch := range checks {
		if !ch.ok {
			return bad(ch.key, "%s", ch.why)
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
	}
	if a, err := mail.ParseAddress(c.SMTPFrom); err != nil || !strings.Contains(a.Address, "@") {
		return bad("SMTP_FROM", "%q is not an e-mail address", c.SMTPFrom)
	}
	return nil
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
// from the Config struct's tags.
func PrintUsage(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	const format = "VARIABLE\tDEFAULT\tDESCRIPTION\n{{range .}}{{usage_key .}}\t{{usage_default .}}\t{{usage_description .}}\n{{end}}"
	if err := envconfig.Usagef(Prefix, &Config{}, tw, format); err != nil {
		return err
	}
	return tw.Flush()
}

// Duration is a time.Duration that also accepts days ("14d").
type Duration time.Duration

// Decode implements envconfig.Decoder.
func (d *Duration) Decode(v string) error {
	v = strings.TrimSpace(v)
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

// ConsumerNameOrDefault is CONSUMER_NAME, or hostname-pid when unset.
func (c Config) ConsumerNameOrDefault() string {
	if c.ConsumerName != "" {
		return c.ConsumerName
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "forgetmenot"
	}
	return h + "-" + strconv.Itoa(os.Getpid())
}
