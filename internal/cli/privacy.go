package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/internal/privacy"
)

// The customers commands: export and erase one customer's data (issue 16).
func init() {
	commands["customers"] = map[string]command{
		"export": {
			usage: "forgetmenot customers export EMAIL|KEY [--format json|text]\n\nEverything forgetmenot stores about one customer (GDPR art. 15): complaints with\nevery timeline entry, deliveries, satisfaction answers, chat sessions, forum\nuser, webhook ids, and messages not yet routed, found through every identity the\ncustomer used. KEY is chat:<session>, webhook:<id> or forum:<user id>.", positional: "EMAIL|KEY",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				format := fs.String("format", "json", "json (the whole document) or text (readable)")
				return func(ctx context.Context, c *client, key string, out *output) error {
					if *format != "json" && *format != "text" {
						return usageError{fmt.Errorf("--format must be json or text, not %q", *format)}
					}
					var ex privacy.Export
					if err := c.do(ctx, "GET", "/v1/customers/"+url.PathEscape(key)+"/export", nil, nil, &ex); err != nil {
						return err
					}
					if *format == "text" && !out.json {
						safe := &terminalSafe{w: out.w}
						if err := ex.WriteText(safe); err != nil {
							return err
						}
						return safe.Flush()
					}
					return (&output{w: out.w, json: true}).print(ex, nil)
				}
			},
		},
		"erase": {
			usage: "forgetmenot customers erase EMAIL|KEY --reason TEXT [--as ACTOR] [--force [--category C]] [--json]\n\nErases one customer's personal data everywhere forgetmenot wrote it (GDPR art. 17)\nand keeps their complaints under a pseudonym, so reports stay correct. Open\ncomplaints are refused unless --force, which closes them \"erased on request\".\nAn interrupted erasure is finished by running the same command again (or by the\ndaemon in the background). E-mails already sent cannot be recalled.", positional: "EMAIL|KEY",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				reason := fs.String("reason", "", "why (required; recorded without personal data)")
				as := fs.String("as", "", "who erases (recorded; default cli:$USER)")
				force := fs.Bool("force", false, "close open complaints \"erased on request\" instead of refusing")
				category := fs.String("category", "", "with --force: the root cause recorded on the complaints it closes (optional; one of FORGETMENOT_CATEGORIES)")
				return func(ctx context.Context, c *client, key string, out *output) error {
					var res privacy.EraseResult
					req := api.EraseRequest{Reason: *reason, Actor: actorOr(*as), Force: *force, Category: *category}
					if err := c.do(ctx, "POST", "/v1/customers/"+url.PathEscape(key)+"/erase", nil, req, &res); err != nil {
						return err
					}
					return out.print(res, func(w io.Writer) { printErasure(w, res) })
				}
			},
		},
		"erasures": {
			usage: "forgetmenot customers erasures [--json]\n\nThe audit of erasures, newest first (no personal data).",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				return func(ctx context.Context, c *client, _ string, out *output) error {
					var res api.ErasureLog
					if err := c.do(ctx, "GET", "/v1/erasures", nil, nil, &res); err != nil {
						return err
					}
					return out.print(res, func(w io.Writer) {
						if len(res.Erasures) == 0 {
							fmt.Fprintln(w, "No erasures.")
						}
						for _, e := range res.Erasures {
							fmt.Fprintf(w, "%s  %s by %s: %s complaint(s) %s as %s · %s\n", e["finished"], e["kind"], e["actor"], e["complaints"], e["ids"], e["pseudonym"], e["reason"])
						}
					})
				}
			},
		},
	}
}

func printErasure(w io.Writer, res privacy.EraseResult) {
	if len(res.Complaints) == 0 {
		fmt.Fprintln(w, "Nothing stored about this customer (already erased, or never seen).")
	} else {
		fmt.Fprintf(w, "Erased: %d complaint(s) (%s) now belong to %s.\n", len(res.Complaints), strings.Join(res.Complaints, ", "), res.Pseudonym)
		if len(res.Closed) > 0 {
			fmt.Fprintf(w, "Closed \"erased on request\": %s.\n", strings.Join(res.Closed, ", "))
		}
		fmt.Fprintf(w, "Queued work removed: %d; channel records removed or redacted: %d.\n", res.Entries, res.StateKeys)
		if res.Resumed {
			fmt.Fprintln(w, "(An earlier, interrupted erasure of this customer was finished.)")
		}
	}
	fmt.Fprintln(w, "Not erased (beyond forgetmenot's reach):")
	for _, n := range res.NotErased {
		fmt.Fprintf(w, "  - %s\n", n)
	}
}
