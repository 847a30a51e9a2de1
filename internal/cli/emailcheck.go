package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/email"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/daemon"
)

// EmailCheck is the answer of `forgetmenot email check --json`.
type EmailCheck struct {
	Mailboxes []email.MailboxReport `json:"mailboxes"`
	SMTP      *email.SMTPReport     `json:"smtp,omitempty"`
	OK        bool                  `json:"ok"`
}

// emailCheck signs in to every configured mailbox and the SMTP server with
// the daemon's own configuration (environment and mailboxes file), for the
// first set-up. It runs here, not in the daemon: exit 0 when everything
// works, 1 when something does not.
func emailCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const usage = `forgetmenot email check [--timeout 30s] [--json]

Connects to every mailbox of FORGETMENOT_MAILBOXES_FILE and to the SMTP server
(FORGETMENOT_SMTP_HOST) as the daemon would: fetches OAuth tokens, signs in,
lists the folders and opens the folder read-only. Nothing is read, moved or
sent. Exit code 0 when everything works, 1 when something does not.`
	fs := newFlagSet("email check", usage, stdout)
	timeout := fs.Duration("timeout", 30*time.Second, "give up on a server after this long")
	asJSON := fs.Bool("json", false, "machine-readable output")
	if code, done := parseAll(fs, usage, args, stderr); done {
		return code
	}
	cfg, err := configs.FromEnv()
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	if cfg.MailboxesFile == "" && cfg.SMTPHost == "" {
		fmt.Fprintf(stderr, "error: e-mail is not configured: set %s and/or %s\n", configs.Var("MAILBOXES_FILE"), configs.Var("SMTP_HOST"))
		return 1
	}
	var boxes []configs.Mailbox
	var mailboxes []email.Mailbox
	if cfg.MailboxesFile != "" {
		roster, err := configs.LoadRoster(cfg.OwnersFile)
		if err != nil {
			fmt.Fprintf(stderr, "error: %s: %v\n", configs.Var("OWNERS_FILE"), err)
			return 1
		}
		boxes, err = configs.LoadMailboxes(cfg.MailboxesFile, roster)
		if err != nil {
			fmt.Fprintf(stderr, "error: %s: %v\n", configs.Var("MAILBOXES_FILE"), err)
			return 1
		}
		for _, b := range boxes {
			mb, err := daemon.EmailMailbox(b)
			if err != nil {
				fmt.Fprintf(stderr, "error: %s: %v\n", configs.Var("MAILBOXES_FILE"), err)
				return 1
			}
			mailboxes = append(mailboxes, mb)
		}
	}
	res := EmailCheck{Mailboxes: make([]email.MailboxReport, len(mailboxes)), OK: true}
	var wg sync.WaitGroup
	for i, mb := range mailboxes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, *timeout)
			defer cancel()
			res.Mailboxes[i] = email.CheckMailbox(ctx, mb)
		})
	}
	if cfg.SMTPHost != "" {
		sc, err := daemon.EmailSMTP(cfg, boxes, mailboxes)
		if err != nil {
			res.SMTP = &email.SMTPReport{Server: fmt.Sprintf("%s:%d", cfg.SMTPHost, cfg.SMTPPort), Error: err.Error()}
		} else {
			sc.Timeout = *timeout
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(ctx, *timeout)
				defer cancel()
				r := email.CheckSMTP(ctx, sc)
				res.SMTP = &r
			})
		}
	}
	wg.Wait()
	for _, r := range res.Mailboxes {
		res.OK = res.OK && r.Error == ""
	}
	if res.SMTP != nil {
		res.OK = res.OK && res.SMTP.Error == ""
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		printEmailCheck(stdout, res)
	}
	if !res.OK {
		return 1
	}
	return 0
}

func printEmailCheck(w io.Writer, res EmailCheck) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tSERVER\tSIGN-IN\tRESULT")
	for _, r := range res.Mailboxes {
		result := fmt.Sprintf("OK: %s has %d mails (UIDVALIDITY %d), %d folders, IDLE %s", r.Folder, r.Messages, r.UIDValidity, r.Folders, yesNo(r.Idle))
		if r.Error != "" {
			result = "FAILED: " + r.Error
		}
		fmt.Fprintf(tw, "mailbox %s\t%s (%s)\t%s as %s\t%s\n", r.Mailbox, r.Server, r.TLS, r.Auth, r.Username, oneLine(result))
	}
	if r := res.SMTP; r != nil {
		result := "OK: signed in, nothing sent"
		if r.Auth == "none" {
			result = "OK: connected (no sign-in configured), nothing sent"
		}
		if r.Error != "" {
			result = "FAILED: " + r.Error
		}
		who := r.Auth
		if r.Username != "" {
			who += " as " + r.Username
		}
		fmt.Fprintf(tw, "smtp\t%s (%s)\t%s\t%s\n", r.Server, r.TLS, who, oneLine(result))
	}
	tw.Flush()
	if res.OK {
		fmt.Fprintln(w, "\nEverything works.")
	} else {
		fmt.Fprintln(w, "\nSomething does not work: see FAILED above. /readyz shows the same errors while the daemon runs.")
	}
}

// oneLine keeps a value that is printed on one line there (a server's
// answer, a reason, a name, a subject): a line break in it would start a
// line of its own, which could pass for one the CLI wrote.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
