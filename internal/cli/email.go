package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/forgetmenot/forgetmenot/internal/daemon"
)

func init() {
	commands["email"] = map[string]command{
		"quarantine": {
			usage: "forgetmenot email quarantine [--limit N] [--json]\n\nLists mail that could not be read, newest first. The mail itself stays in its\nmailbox (by mailbox, folder and UID); forgetmenot went on with the next mail.",
			flags: func(fs *flag.FlagSet) func(context.Context, *client, string, *output) error {
				limit := fs.Int("limit", 50, "at most this many")
				return func(ctx context.Context, c *client, _ string, out *output) error {
					var res daemon.QuarantineList
					err := c.do(ctx, "GET", "/v1/email/quarantine", url.Values{"limit": {strconv.Itoa(*limit)}}, nil, &res)
					var ae *apiError
					if errors.As(err, &ae) && ae.status == http.StatusNotFound {
						return fmt.Errorf("e-mail intake is not configured on this daemon (set FORGETMENOT_MAILBOXES_FILE), so nothing is quarantined")
					}
					if err != nil {
						return err
					}
					return out.print(res, func(w io.Writer) { printQuarantine(w, res) })
				}
			},
		},
	}
}

func printQuarantine(w io.Writer, res daemon.QuarantineList) {
	if len(res.Quarantine) == 0 {
		fmt.Fprintln(w, "No quarantined mail.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN\tMAILBOX\tFOLDER\tUID\tFROM\tSUBJECT\tERROR")
	for _, q := range res.Quarantine {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", stampSeconds(q.At), q.Mailbox, q.Folder, q.UID,
			clip(q.From, 40), clip(q.Subject, 40), clip(q.Error, 80))
	}
	tw.Flush()
}
