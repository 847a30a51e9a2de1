package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/router"
)

// Away and back join the owners commands.
func init() {
	commands["owners"]["away"] = command{
		usage: "forgetmenot owners away ID --until TIME [--cover OWNER] [--from TIME] [--note TEXT] [--json]\n\nMarks an owner away until TIME (a date such as 2026-12-29, the day they are back, from the start of\nthat day in the owner's calendar zone; or RFC 3339). While away they get no new complaints, keep their open ones, and the\ncover gets their reminders and notifications too and may act on them.", positional: "ID",
		flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
			until := fs.String("until", "", "when they are back (required)")
			from := fs.String("from", "", "when the absence starts (default now)")
			cover := fs.String("cover", "", "the owner who covers")
			note := fs.String("note", "", "why, for colleagues")
			return func(ctx context.Context, c *client, id string, out *output) error {
				req := api.AwayRequest{From: *from, Until: *until, Cover: *cover, Note: *note, Actor: actor()}
				var res router.Absence
				if err := c.do(ctx, "POST", "/v1/owners/"+url.PathEscape(id)+"/away", nil, req, &res); err != nil {
					return err
				}
				return out.print(res, func(w io.Writer) {
					fmt.Fprintf(w, "%s is away until %s", res.Owner, stamp(res.Until))
					if res.Cover != "" {
						fmt.Fprintf(w, "; %s covers", res.Cover)
					}
					fmt.Fprintln(w, ".")
				})
			}
		},
	}
	commands["owners"]["back"] = command{
		usage: "forgetmenot owners back ID [--json]\n\nEnds an owner's absence now (also a planned one from owners.yaml). Nothing is\nhanded back: their complaints stayed theirs.", positional: "ID",
		flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
			return func(ctx context.Context, c *client, id string, out *output) error {
				if err := c.do(ctx, "POST", "/v1/owners/"+url.PathEscape(id)+"/back", nil, api.ActorRequest{Actor: actor()}, nil); err != nil {
					return err
				}
				return out.print(map[string]string{"back": id}, func(w io.Writer) { fmt.Fprintf(w, "%s is back.\n", id) })
			}
		},
	}
}

const reportUsage = `forgetmenot report [--since DATE] [--until DATE] [--format text|json|csv|html] [--json]

The accountability report over complaints opened from --since (default: 28 days
before --until) to --until (default: now): complaints per channel, category and
ISO week; median and 90th percentile time to first response and to resolution;
promises made and kept; reopen rate; breaches (the deadlines missed from
--since to --until, whenever their complaints were opened); top root causes;
satisfaction;
the complaint rate; each owner's open load against capacity and overdue count
now; and the notes on what would prevent the next complaint, per category.
Durations count business time of the working calendars, as the deadlines do.
--format html writes one self-contained page with charts (forgetmenot report
--format html > report.html), which prints on A4.
DATE is 2026-11-01 or an RFC 3339 time.`

func reportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("report", reportUsage, stdout)
	since := fs.String("since", "", "first day (inclusive)")
	until := fs.String("until", "", "end (exclusive)")
	format := fs.String("format", "text", "text, json, csv or html (where nothing is settled yet: \"–\" in text, an empty value in CSV, null in JSON)")
	asJSON := fs.Bool("json", false, "the same as --format json, as the other client commands take it")
	if code, done := parseAll(fs, reportUsage, args, stderr); done {
		return code
	}
	if *asJSON {
		*format = "json"
	}
	switch *format {
	case "text", "json", "csv", "html":
	default:
		fmt.Fprintf(stderr, "error: --format %q: want text, json, csv or html\nusage: %s\n", *format, firstLine(reportUsage))
		return 2
	}
	q := url.Values{"format": {*format}}
	for k, v := range map[string]string{"since": *since, "until": *until} {
		if v == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			if _, err := time.Parse(time.RFC3339, v); err != nil {
				fmt.Fprintf(stderr, "error: --%s %q: want a date such as 2026-11-01 or an RFC 3339 time\nusage: %s\n", k, v, firstLine(reportUsage))
				return 2
			}
		}
		q.Set(k, v)
	}
	cfg, err := configs.FromEnv()
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	body, err := newClient(cfg.DaemonURL(), cfg.APIToken).raw(ctx, "/v1/reports", q)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	_, _ = stdout.Write(body)
	return 0
}

// raw GETs a path and returns the body as the daemon wrote it (text, CSV).
func (c *client) raw(ctx context.Context, path string, q url.Values) ([]byte, error) {
	var body []byte
	err := c.do(ctx, http.MethodGet, path, q, nil, rawBody{&body})
	return body, err
}

// rawBody asks client.do for the answer's bytes as they are.
type rawBody struct{ b *[]byte }
