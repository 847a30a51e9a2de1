// Package cli is the forgetmenot command line: `serve` runs the daemon, the
// other commands are clients of a running daemon's API.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/daemon"
	"github.com/forgetmenot/forgetmenot/internal/logx"
	"github.com/forgetmenot/forgetmenot/internal/version"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

const usage = `forgetmenot routes customer complaints to one named owner each, and keeps them owned.

Usage:
  forgetmenot serve                                   run the daemon
  forgetmenot complaints list [--status S] [--owner ID] [--customer C] [--limit N]
  forgetmenot complaints show ID
  forgetmenot complaints close ID --resolution TEXT --category C [--prevention TEXT] [--as OWNER]
  forgetmenot complaints reassign ID --to OWNER --reason TEXT
  forgetmenot complaints merge ID --into ID --reason TEXT   the same customer's: one complaint, one owner
  forgetmenot complaints reply ID --body TEXT         answer the customer through their channel
  forgetmenot complaints ack ID                       acknowledge: you have it in hand
  forgetmenot complaints note ID --text TEXT          internal note, never sent to the customer
  forgetmenot complaints promise ID (--by TIME | --in DURATION) --note TEXT [--tell-customer]
  forgetmenot owners list                             owners with their open load (and who is away)
  forgetmenot owners away ID --until DATE [--cover OWNER]   no new complaints; the cover gets their reminders
  forgetmenot owners back ID                          end an absence; nothing needs handing back
  forgetmenot report [--since DATE] [--until DATE] [--format text|json|csv|html]
  forgetmenot deadletters list                        work that failed too often
  forgetmenot deadletters retry ID                    put a dead letter back in its queue
  forgetmenot customers export EMAIL|KEY [--format json|text]   all data about one customer
  forgetmenot customers erase EMAIL|KEY --reason TEXT [--force [--category C]]  erase it, keep a pseudonym
  forgetmenot customers erasures                      the audit of erasures (no personal data)
  forgetmenot email quarantine                        mail that could not be read (it stays in its mailbox)
  forgetmenot email check                             sign in to every mailbox and SMTP as configured, and say what works
  forgetmenot config [--json]                         every environment variable: value, default, meaning
  forgetmenot health [--ready]                        exit 0 when the local daemon is alive (ready), else 1
  forgetmenot version                                 the build: module version, commit and its time

Every command takes --help. Exit codes: 0 done, 1 failed, 2 usage error (unknown
command or flag, missing or extra argument). Client commands reach the daemon at
FORGETMENOT_API_URL (default http://127.0.0.1:<port of FORGETMENOT_HTTP_ADDR>) with FORGETMENOT_API_TOKEN,
and take --json for machine-readable output.
`

// Run executes the command line args (without the program name) and returns
// the exit code: 0 success, 1 failure, 2 usage error.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "config":
		return configCmd(args[1:], stdout, stderr)
	case "report":
		return reportCmd(ctx, args[1:], stdout, stderr)
	case "health":
		return healthCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "error: unexpected arguments: %s\nusage: forgetmenot version\n", strings.Join(args[1:], " "))
			return 2
		}
		fmt.Fprintln(stdout, "forgetmenot", version.String())
		return 0
	case "email":
		if len(args) > 1 && args[1] == "check" {
			return emailCheck(ctx, args[2:], stdout, stderr)
		}
		return clientCmd(ctx, args[0], args[1:], stdout, stderr)
	case "complaints", "owners", "deadletters", "customers":
		return clientCmd(ctx, args[0], args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "error: unknown command %q\nrun `forgetmenot --help` for the commands\n", args[0])
	return 2
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const serveUsage = "forgetmenot serve\n\nRuns the daemon: webhook intake, routing, notifications, the API. Configured by\nenvironment variables (see `forgetmenot config`); with none set it runs on an\nembedded in-memory Redis with the example roster from configs/."
	fs := newFlagSet("serve", serveUsage, stdout)
	if code, done := parseAll(fs, serveUsage, args, stderr); done {
		return code
	}
	cfg, err := configs.FromEnv()
	if err != nil {
		startFailed(stderr, strings.EqualFold(os.Getenv("FORGETMENOT_LOG_FORMAT"), "json"), "error:", err)
		return 1
	}
	log := NewLogger(cfg, stderr)
	// Libraries log through the same logger (JSON stays JSON), their
	// repeated lines once per interval with a count.
	libs := logx.NewLimiter(log, cfg.LogRepeatInterval.D())
	defer libs.Close()
	slog.SetDefault(log)
	logx.StdLog(libs) // after SetDefault, which takes over the log package too
	queue.SetLogger(logx.Redis{L: libs})
	tuneGC()
	d, err := daemon.New(cfg, log)
	if err != nil {
		startFailed(stderr, cfg.LogFormat == "json", "error: cannot start:", err)
		return 1
	}
	if err := d.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	return 0
}

// startFailed says why serve cannot start: one JSON line when the logs are
// JSON (a log collector reads every line of the daemon), else plain text.
func startFailed(w io.Writer, asJSON bool, prefix string, err error) {
	if asJSON {
		slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: durationsAsText})).Error("cannot start", "err", err)
		return
	}
	fmt.Fprintln(w, prefix, err)
}

// durationsAsText writes a duration as "20s" in JSON logs too (slog's JSON
// handler writes nanoseconds, 20000000000, beside durations given as text).
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// NewLogger builds the structured logger the configuration asks for.
func NewLogger(cfg configs.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durationsAsText})
	}
	// A warning repeated word for word (a consumer's failed read during a
	// Redis outage) is written once per interval, then counted.
	return slog.New(logx.Repeats(h, cfg.LogRepeatInterval.D()))
}

const configUsage = `forgetmenot config [--json]

Prints every environment variable: its value as this process sees it (so run
it where the daemon runs, e.g. with docker exec), where that value comes from
(the environment, the default, or not set), the default and what it means.
Secrets (variables ending in _SECRET, _TOKEN, _PASSWORD or _KEY) show as
[redacted] when set, URLs without their credentials. With --json: an object
whose "settings" array has name, value, default, source (environment, default
or unset), secret and description of each variable.`

func configCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("config", configUsage, stdout)
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	if code, done := parseAll(fs, configUsage, args, stderr); done {
		return code
	}
	settings := configs.Settings(os.LookupEnv)
	var err error
	if *asJSON {
		err = (&output{w: stdout, json: true}).print(configList{Settings: settings}, nil)
	} else {
		err = configs.WriteSettings(stdout, settings)
	}
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}

// configList is `forgetmenot config --json`: an object, so that more than
// the settings can be said later without breaking its readers.
type configList struct {
	Settings []configs.Setting `json:"settings"`
}

// command is one client subcommand.
type command struct {
	usage string
	// positional names the required positional argument ("" for none).
	positional string
	flags      func(fs *flag.FlagSet) func(ctx context.Context, c *client, arg string, out *output) error
}

var commands = map[string]map[string]command{
	"complaints": {
		"list": {
			usage: "forgetmenot complaints list [--status open|closed] [--owner ID] [--customer EMAIL|KEY] [--limit N] [--json]\n\nLists complaints, newest first.",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				status := fs.String("status", "", "only complaints with this status (open, closed)")
				owner := fs.String("owner", "", "only complaints owned by this owner id")
				customer := fs.String("customer", "", "only this customer's complaints (e-mail or customer key)")
				limit := fs.Int("limit", 50, "at most this many")
				return func(ctx context.Context, c *client, _ string, out *output) error {
					q := url.Values{}
					for k, v := range map[string]string{"status": *status, "owner": *owner, "customer": *customer} {
						if v != "" {
							q.Set(k, v)
						}
					}
					q.Set("limit", strconv.Itoa(*limit))
					var res api.ComplaintList
					if err := c.do(ctx, "GET", "/v1/complaints", q, nil, &res); err != nil {
						return err
					}
					return out.print(res, func(w io.Writer) { printComplaints(w, res.Complaints) })
				}
			},
		},
		"show": {
			usage: "forgetmenot complaints show ID [--json]\n\nShows a complaint with its whole timeline: every message and every event.", positional: "ID",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				return func(ctx context.Context, c *client, id string, out *output) error {
					var res api.ComplaintDetail
					if err := c.do(ctx, "GET", "/v1/complaints/"+url.PathEscape(id), nil, nil, &res); err != nil {
						return err
					}
					return out.print(res, func(w io.Writer) { printComplaint(w, res) })
				}
			},
		},
		"close": {
			usage: "forgetmenot complaints close ID --resolution TEXT --category C [--prevention TEXT] [--as OWNER] [--json]\n\nCloses an open complaint. The resolution says what was done for the customer; the category is its root cause, one of the daemon's configured categories (FORGETMENOT_CATEGORIES; a wrong one is refused with the list).", positional: "ID",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				resolution := fs.String("resolution", "", "how the complaint was resolved (required)")
				category := fs.String("category", "", "root-cause category, one of FORGETMENOT_CATEGORIES (default list: product defect, delivery, billing, …), e.g. delivery")
				prevention := fs.String("prevention", "", "what would prevent the next complaint like this (shown in the report)")
				as := fs.String("as", "", "the owner id closing it (recorded on the timeline)")
				return func(ctx context.Context, c *client, id string, out *output) error {
					var res router.Complaint
					req := api.CloseRequest{Resolution: *resolution, Category: *category, Prevention: *prevention, Actor: actorOr(*as)}
					if err := c.do(ctx, "POST", "/v1/complaints/"+url.PathEscape(id)+"/close", nil, req, &res); err != nil {
						return err
					}
					return out.print(res, func(w io.Writer) { fmt.Fprintf(w, "%s closed (owner %s).\n", res.ID, res.Owner) })
				}
			},
		},
		"reassign": {
			usage: "forgetmenot complaints reassign ID --to OWNER --reason TEXT [--as OWNER] [--json]\n\nGives an open complaint to another owner. Rare and audited: the reason is required.", positional: "ID",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				to := fs.String("to", "", "the new owner's id (required)")
				reason := fs.String("reason", "", "why the owner changes (required)")
				as := fs.String("as", "", "the owner id (a lead) reassigning it (recorded on the timeline)")
				return func(ctx context.Context, c *client, id string, out *output) error {
					var res router.Complaint
					req := api.ReassignRequest{Owner: *to, Reason: *reason, Actor: actorOr(*as)}
					if err := c.do(ctx, "POST", "/v1/complaints/"+url.PathEscape(id)+"/reassign", nil, req, &res); err != nil {
						return err
					}
					return out.print(res, func(w io.Writer) { fmt.Fprintf(w, "%s is now owned by %s.\n", res.ID, res.Owner) })
				}
			},
		},
		"merge": {
			usage: "forgetmenot complaints merge ID --into ID --reason TEXT [--as OWNER] [--json]\n\nMerges complaint ID into the --into complaint once you know both are the same\ncustomer's (a message that named a complaint without being from its customer opens\none of its own and says so). The messages and the customer's addresses join the\n--into complaint, whose owner stays; ID is closed as merged. Audited: the reason is\nrequired.", positional: "ID",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				into := fs.String("into", "", "the complaint that carries on (required)")
				reason := fs.String("reason", "", "how you know both are the same customer's (required)")
				as := fs.String("as", "", "the owner id merging (recorded on both timelines)")
				return func(ctx context.Context, c *client, id string, out *output) error {
					var res router.Complaint
					req := api.MergeRequest{Into: *into, Reason: *reason, Actor: actorOr(*as)}
					if err := c.do(ctx, "POST", "/v1/complaints/"+url.PathEscape(id)+"/merge", nil, req, &res); err != nil {
						return err
					}
					return out.print(res, func(w io.Writer) {
						fmt.Fprintf(w, "%s merged into %s (owner %s, %d messages).\n", api.ComplaintID(id), res.ID, res.Owner, res.Messages)
					})
				}
			},
		},
		"reply": {
			usage: "forgetmenot complaints reply ID --body TEXT [--as OWNER] [--json]\n\nSends the text to the customer through the complaint's own channel (e-mail, forum,\nchat), threaded into their conversation, and records it on the timeline. Use\n--body - to read the text from standard input.", positional: "ID",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				body := fs.String("body", "", "the answer for the customer (required; - reads standard input)")
				as := fs.String("as", "", "the owner id writing (a colleague covering signs as \"Bas for Anna\")")
				return func(ctx context.Context, c *client, id string, out *output) error {
					text, err := textArg(*body)
					if err != nil {
						return err
					}
					return lifecycle(ctx, c, id, "reply", api.ReplyRequest{Body: text, Actor: actorOr(*as)}, out, "%s: reply queued for the customer (owner %s).\n")
				}
			},
		},
		"ack": {
			usage: "forgetmenot complaints ack ID [--as OWNER] [--json]\n\nAcknowledges the complaint: its owner has it in hand.", positional: "ID",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				as := fs.String("as", "", "the owner id acknowledging")
				return func(ctx context.Context, c *client, id string, out *output) error {
					return lifecycle(ctx, c, id, "acknowledge", api.ActorRequest{Actor: actorOr(*as)}, out, "%s acknowledged (owner %s).\n")
				}
			},
		},
		"note": {
			usage: "forgetmenot complaints note ID --text TEXT [--as OWNER] [--json]\n\nRecords an internal note on the timeline. The customer never sees it.", positional: "ID",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				text := fs.String("text", "", "the note (required; - reads standard input)")
				as := fs.String("as", "", "the owner id writing")
				return func(ctx context.Context, c *client, id string, out *output) error {
					t, err := textArg(*text)
					if err != nil {
						return err
					}
					return lifecycle(ctx, c, id, "notes", api.NoteRequest{Text: t, Actor: actorOr(*as)}, out, "%s: note recorded (owner %s).\n")
				}
			},
		},
		"promise": {
			usage: "forgetmenot complaints promise ID (--by TIME | --in DURATION) --note TEXT [--tell-customer] [--as OWNER] [--json]\n\nRecords a promised follow-up. TIME is RFC 3339 (2026-11-26T14:00:00+01:00), a local\n\"2026-11-26 14:00\", or relative to today: \"+2d 14:00\" (in two days at 14:00),\n\"tomorrow 09:30\", \"+3h\". DURATION counts from now: 48h, 90m, 2d. With\n--tell-customer the note is sent to the customer.", positional: "ID",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				by := fs.String("by", "", "when the customer will hear back (this or --in is required)")
				in := fs.String("in", "", "how long from now the customer will hear back (48h, 2d)")
				note := fs.String("note", "", "what is promised")
				tell := fs.Bool("tell-customer", false, "send the note to the customer through their channel")
				as := fs.String("as", "", "the owner id promising")
				return func(ctx context.Context, c *client, id string, out *output) error {
					t, err := promiseTime(*by, *in, time.Now())
					if err != nil {
						return err
					}
					req := api.PromiseRequest{By: t.Format(time.RFC3339), Note: *note, TellCustomer: *tell, Actor: actorOr(*as)}
					return lifecycle(ctx, c, id, "promise", req, out, "%s: follow-up promise recorded (owner %s).\n")
				}
			},
		},
	},
	"owners": {
		"list": {
			usage: "forgetmenot owners list [--json]\n\nLists every owner with their open complaints against their capacity.",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				return func(ctx context.Context, c *client, _ string, out *output) error {
					var res api.OwnerList
					if err := c.do(ctx, "GET", "/v1/owners", nil, nil, &res); err != nil {
						return err
					}
					return out.print(res, func(w io.Writer) { printOwners(w, res.Owners) })
				}
			},
		},
	},
	"deadletters": {
		"list": {
			usage: "forgetmenot deadletters list [--limit N] [--json]\n\nLists work that failed too often, newest first, with its last error.",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				limit := fs.Int("limit", 50, "at most this many")
				return func(ctx context.Context, c *client, _ string, out *output) error {
					var res api.DeadLetterList
					if err := c.do(ctx, "GET", "/v1/deadletters", url.Values{"limit": {strconv.Itoa(*limit)}}, nil, &res); err != nil {
						return err
					}
					return out.print(res, func(w io.Writer) { printDeadLetters(w, res) })
				}
			},
		},
		"retry": {
			usage: "forgetmenot deadletters retry ID\n\nPuts a dead letter back in its queue for a fresh round of attempts.", positional: "ID",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				return func(ctx context.Context, c *client, id string, out *output) error {
					if err := c.do(ctx, "POST", "/v1/deadletters/"+url.PathEscape(id)+"/retry", nil, nil, nil); err != nil {
						return err
					}
					return out.print(map[string]string{"retried": id}, func(w io.Writer) { fmt.Fprintf(w, "%s is queued again.\n", id) })
				}
			},
		},
	},
}

func clientCmd(ctx context.Context, group string, args []string, stdout, stderr io.Writer) int {
	subs := commands[group]
	var names []string
	for n := range subs {
		names = append(names, n)
	}
	sort.Strings(names)
	groupUsage := fmt.Sprintf("forgetmenot %s <%s> [--help]\n", group, strings.Join(names, "|"))
	if len(args) == 0 {
		fmt.Fprintf(stderr, "error: missing command\nusage: %s", groupUsage)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, groupUsage)
		return 0
	}
	cmd, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "error: unknown command %q\nusage: %s", group+" "+args[0], groupUsage)
		return 2
	}
	fs := newFlagSet(group+" "+args[0], cmd.usage, stdout)
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	run := cmd.flags(fs)
	// Flags may come before or after the positional argument.
	if code, done := parse(fs, cmd.usage, args[1:], stderr); done {
		return code
	}
	rest := fs.Args()
	var arg string
	if cmd.positional != "" {
		if len(rest) == 0 {
			fmt.Fprintf(stderr, "error: missing %s\nusage: %s\n", cmd.positional, firstLine(cmd.usage))
			return 2
		}
		arg, rest = rest[0], rest[1:]
		if code, done := parse(fs, cmd.usage, rest, stderr); done {
			return code
		}
		rest = fs.Args()
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "error: unexpected arguments: %s\nusage: %s\n", strings.Join(rest, " "), firstLine(cmd.usage))
		return 2
	}
	if missing := missingRequired(fs); len(missing) > 0 {
		fmt.Fprintf(stderr, "error: missing --%s\nusage: %s\n", strings.Join(missing, ", --"), firstLine(cmd.usage))
		return 2
	}
	cfg, err := configs.FromEnv()
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	c := newClient(cfg.DaemonURL(), cfg.APIToken)
	if err := run(ctx, c, arg, &output{w: stdout, json: *asJSON}); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "usage: %s\n", firstLine(cmd.usage))
			return 2
		}
		return 1
	}
	return 0
}

func newFlagSet(name, usage string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintln(stdout, usage)
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(stdout, "\nFlags:")
			// All of the help on one stream, so `--help | less` shows it whole.
			out := fs.Output()
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			fs.SetOutput(out)
		}
	}
	return fs
}

// missingRequired names the flags whose help says "(required)" and that
// were left empty: a usage error, caught before anything reaches the daemon.
func missingRequired(fs *flag.FlagSet) []string {
	var missing []string
	fs.VisitAll(func(f *flag.Flag) {
		if strings.Contains(f.Usage, "(required") && strings.TrimSpace(f.Value.String()) == "" {
			missing = append(missing, f.Name)
		}
	})
	return missing
}

// parse parses flags; done reports that the command should end with code:
// 0 after --help (the whole usage on stdout), 2 on a usage error. A usage
// error gets a short hint on stderr: what is wrong, the command's synopsis
// and where the rest is, never the whole help.
func parse(fs *flag.FlagSet, usage string, args []string, stderr io.Writer) (code int, done bool) {
	help := fs.Usage
	fs.Usage = func() {} // the flag package would print the whole help on any error
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = help
	switch {
	case errors.Is(err, flag.ErrHelp):
		help()
		return 0, true
	case err != nil:
		fmt.Fprintf(stderr, "error: %v\nusage: %s\nrun `forgetmenot %s --help` for every flag\n", err, firstLine(usage), fs.Name())
		return 2, true
	}
	return 0, false
}

// parseAll is parse for commands that take no arguments besides flags.
func parseAll(fs *flag.FlagSet, usage string, args []string, stderr io.Writer) (code int, done bool) {
	if code, done := parse(fs, usage, args, stderr); done {
		return code, done
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "error: unexpected arguments: %s\nusage: %s\n", strings.Join(fs.Args(), " "), firstLine(usage))
		return 2, true
	}
	return 0, false
}

// lifecycle posts a lifecycle step and prints the resulting complaint.
func lifecycle(ctx context.Context, c *client, id, step string, req any, out *output, format string) error {
	var res router.Complaint
	if err := c.do(ctx, "POST", "/v1/complaints/"+url.PathEscape(id)+"/"+step, nil, req, &res); err != nil {
		return err
	}
	return out.print(res, func(w io.Writer) { fmt.Fprintf(w, format, res.ID, res.Owner) })
}

// textArg returns a flag's text, reading standard input for "-".
func textArg(v string) (string, error) {
	if v != "-" {
		return v, nil
	}
	b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	if err != nil {
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	return string(b), nil
}

// stamp and stampSeconds show a time in this machine's zone, with the zone,
// so a reader never has to guess whether a line is UTC or local.
func stamp(t time.Time) string        { return t.Local().Format("2006-01-02 15:04 MST") }
func stampSeconds(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }

// stampRFC3339 shows an RFC 3339 time (as events carry them) like stamp.
func stampRFC3339(v string) string {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return v
	}
	return stamp(t)
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// actorOr is the owner id given with --as, or the CLI user.
func actorOr(as string) string {
	if as != "" {
		return as
	}
	return actor()
}

func actor() string {
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

// output prints either JSON or text.
type output struct {
	w    io.Writer
	json bool
}

func (o *output) print(v any, text func(io.Writer)) error {
	if o.json {
		enc := json.NewEncoder(o.w)
		enc.SetIndent("", "  ")
		// Read by people and scripts, never pasted into HTML: <lang>.tmpl
		// and "Jan & Piet" stay as written rather than \u003c….
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
	safe := &terminalSafe{w: o.w}
	text(safe)
	return safe.Flush()
}

func printComplaints(w io.Writer, cs []router.Complaint) {
	if len(cs) == 0 {
		fmt.Fprintln(w, "No complaints.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tOWNER\tTEAM\tCHANNEL\tCUSTOMER\tOPENED\tSUBJECT")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Status, c.Owner, c.Team, c.Channel,
			clip(c.Customer.Label(), 40), stamp(c.CreatedAt), clip(c.Subject, 50))
	}
	tw.Flush()
}

func printComplaint(w io.Writer, d api.ComplaintDetail) {
	c := d.Complaint
	fmt.Fprintf(w, "%s  %s  owner %s (team %s)\n", c.ID, strings.ToUpper(string(c.Status)), c.Owner, c.Team)
	fmt.Fprintf(w, "Customer:  %s\n", oneLine(c.Customer.Label()))
	fmt.Fprintf(w, "Channel:   %s\n", c.Channel)
	if c.Subject != "" {
		fmt.Fprintf(w, "Subject:   %s\n", oneLine(c.Subject))
	}
	fmt.Fprintf(w, "Opened:    %s\n", stampSeconds(c.CreatedAt))
	fmt.Fprintf(w, "Routing:   %s\n", oneLine(c.RoutingReason))
	if c.FollowUpOf != "" {
		fmt.Fprintf(w, "Follows:   %s\n", c.FollowUpOf)
	}
	if c.MergedInto != "" {
		fmt.Fprintf(w, "Merged into: %s\n", c.MergedInto)
	}
	if c.Priority != "" {
		fmt.Fprintf(w, "Priority:  %s\n", c.Priority)
	}
	if c.Status == router.StatusOpen {
		// A running answer deadline first: after the customer wrote again,
		// the first answer long ago is not what is due now.
		if !c.RespondBy.IsZero() {
			fmt.Fprintf(w, "Respond by: %s\n", stamp(c.RespondBy))
		}
		if !c.FirstResponseAt.IsZero() {
			fmt.Fprintf(w, "Answered:  %s (first answer)\n", stamp(c.FirstResponseAt))
		}
		if !c.ResolveBy.IsZero() {
			fmt.Fprintf(w, "Resolve by: %s\n", stamp(c.ResolveBy))
		}
		if !c.PromisedBy.IsZero() {
			fmt.Fprintf(w, "Promised:  by %s — %s\n", stamp(c.PromisedBy), oneLine(c.PromiseNote))
		}
		if !c.WaitingSince.IsZero() {
			fmt.Fprintf(w, "Waiting on the customer since %s\n", stamp(c.WaitingSince))
		}
	}
	if c.Status == router.StatusClosed {
		fmt.Fprintf(w, "Closed:    %s — %s", stampSeconds(c.ClosedAt), oneLine(c.Resolution))
		if c.Category != "" {
			fmt.Fprintf(w, " [%s]", oneLine(c.Category))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\nTimeline:")
	for _, e := range d.Timeline {
		at := stampSeconds(e.At)
		switch {
		case e.Message != nil:
			m := e.Message
			fmt.Fprintf(w, "  %s  message from %s via %s\n", at, oneLine(m.Customer.Label()), m.Channel)
			if m.Subject != "" {
				fmt.Fprintf(w, "      Subject: %s\n", oneLine(m.Subject))
			}
			for _, line := range strings.Split(strings.TrimSpace(m.Body), "\n") {
				fmt.Fprintf(w, "      %s\n", line)
			}
		case e.Event != nil:
			fmt.Fprintf(w, "  %s  %s\n", at, oneLine(eventLine(e.Event)))
			ev := e.Event
			for _, l := range strings.Split(ev.Text, "\n") {
				if ev.Text != "" {
					fmt.Fprintf(w, "      %s\n", l)
				}
			}
		}
	}
}

// eventLine says in words what an event on the timeline was.
func eventLine(ev *router.Event) string {
	d := ev.Details
	switch ev.Type {
	case router.EventSent:
		if d["via"] == "" { // held back before it was queued
			return fmt.Sprintf("%s not sent — %s", d["kind"], strings.TrimPrefix(ev.Reason, d["kind"]+" "))
		}
		if ev.Reason != "" {
			return fmt.Sprintf("%s not sent via %s — %s", d["kind"], d["via"], strings.TrimPrefix(ev.Reason, "not sent: "))
		}
		line := fmt.Sprintf("%s sent to the customer via %s", d["kind"], d["via"])
		if d["ref"] != "" {
			line += " (" + d["ref"] + ")"
		}
		return line
	case router.EventDeliveryFailed:
		return "NOT DELIVERED — " + ev.Reason
	case router.EventPromised:
		line := fmt.Sprintf("promised by %s: follow-up by %s", ev.Actor, stampRFC3339(d["by"]))
		if d["via"] != "" {
			line += ", told to the customer via " + d["via"]
		}
		return line
	case router.EventReplied:
		return fmt.Sprintf("replied by %s via %s", ev.Actor, d["via"])
	case router.EventMentioned:
		return "mentioned by " + d["complaint"] + " — " + ev.Reason
	case router.EventMerged:
		if d["into"] != "" {
			return fmt.Sprintf("merged into %s by %s — %s", d["into"], ev.Actor, ev.Reason)
		}
		return fmt.Sprintf("merged %s into this complaint by %s (%s messages) — %s", d["from"], ev.Actor, d["messages"], ev.Reason)
	case router.EventClosed:
		line := fmt.Sprintf("closed by %s — %s", ev.Actor, ev.Reason)
		if d["category"] != "" {
			line += " [" + d["category"] + "]"
		}
		return line
	}
	line := fmt.Sprintf("%s by %s", ev.Type, ev.Actor)
	if ev.PreviousOwner != "" {
		line += fmt.Sprintf(": %s → %s", ev.PreviousOwner, ev.Owner)
	} else if ev.Owner != "" {
		line += " → " + ev.Owner
	}
	if ev.Reason != "" {
		line += " — " + ev.Reason
	}
	return line
}

func printOwners(w io.Writer, owners []router.OwnerStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTEAMS\tLANGUAGES\tOPEN\tCAPACITY\tACTIVE\tLAST ASSIGNED\tAWAY")
	for _, o := range owners {
		last := "-"
		if !o.LastAssigned.IsZero() {
			last = stamp(o.LastAssigned)
		}
		var away []string
		if a := o.Away; a != nil {
			now := "until " + stamp(a.Until)
			if a.Cover != "" {
				now += ", cover " + a.Cover
				if o.CoveredBy != "" && o.CoveredBy != a.Cover && !o.NobodyCovers {
					now += "; " + o.CoveredBy + " stands in"
				}
			}
			if o.NobodyCovers {
				now += "; NOBODY AT WORK COVERS"
			}
			away = append(away, now)
		}
		for _, p := range o.Planned {
			later := "from " + stamp(p.From) + " until " + stamp(p.Until)
			if p.Cover != "" {
				later += ", cover " + p.Cover
			}
			away = append(away, later)
		}
		if len(away) == 0 {
			away = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", o.ID, o.Name, strings.Join(o.Teams, ","),
			strings.Join(o.Languages, ","), o.Open, o.Capacity, yesNo(o.Active), last, strings.Join(away, " · "))
	}
	tw.Flush()
}

func printDeadLetters(w io.Writer, res api.DeadLetterList) {
	if len(res.DeadLetters) == 0 {
		fmt.Fprintln(w, "No dead letters.")
		return
	}
	for _, d := range res.DeadLetters {
		fmt.Fprintf(w, "%s  %s  from %s (entry %s) after %d attempts\n    error: %s\n    data:  %s\n",
			d.ID, stampSeconds(d.FailedAt), d.Stream, d.Entry, d.Attempts, d.Error, clip(d.Data, 300))
	}
	fmt.Fprintln(w, "\nRetry one with: forgetmenot deadletters retry ID")
}

func clip(s string, n int) string {
	r := []rune(oneLine(s))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Garbage-collector defaults of the daemon, unless GOGC or GOMEMLIMIT say
// otherwise. The daemon keeps no complaint state in memory: its live heap
// is small and nearly all it allocates is short-lived per message, so
// collecting at 5× the live heap rather than 2× collects the same
// short-lived garbage less often, for less CPU per complaint at load; the
// soft limit makes the collector work harder before the heap could grow
// past it.
const (
	daemonGCPercent   = 400
	daemonMemoryLimit = 32 << 20
)

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(daemonMemoryLimit)
	}
}
