package email

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
)

// MailboxReport is what a check of one mailbox found: it connects, signs
// in, lists the folders and opens the folder read-only. Nothing is changed.
type MailboxReport struct {
	Mailbox     string   `json:"mailbox"`
	Server      string   `json:"server"`
	TLS         TLSMode  `json:"tls"`
	Username    string   `json:"username"`
	Auth        string   `json:"auth"` // LOGIN, XOAUTH2 or OAUTHBEARER
	Folder      string   `json:"folder"`
	Messages    uint32   `json:"messages"`
	UIDValidity uint32   `json:"uidvalidity,omitempty"`
	Idle        bool     `json:"idle"`
	Folders     int      `json:"folders"`
	Missing     []string `json:"missing_folders,omitempty"` // move_to not on the server
	Error       string   `json:"error,omitempty"`
}

// CheckMailbox tries a mailbox the way the ingester uses it.
func CheckMailbox(ctx context.Context, mb Mailbox) MailboxReport {
	mb = mb.withDefaults()
	r := MailboxReport{Mailbox: mb.Name, Server: net.JoinHostPort(mb.Host, strconv.Itoa(mb.Port)), TLS: mb.TLS,
		Username: mb.Username, Auth: "LOGIN", Folder: mb.Folder}
	if mb.OAuth2 != nil {
		r.Auth = mb.OAuth2.Mechanism()
	}
	in := &Ingester{mb: mb, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	fail := func(err error) MailboxReport {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		r.Error = err.Error()
		return r
	}
	c, err := in.open(ctx, make(chan struct{}, 1))
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return fail(fmt.Errorf("listing folders: %w", err))
	}
	r.Folders = len(list)
	names := make([]string, 0, len(list))
	for _, l := range list {
		names = append(names, l.Mailbox)
	}
	if mb.MoveTo != "" && !slices.Contains(names, mb.MoveTo) {
		r.Missing = append(r.Missing, mb.MoveTo)
	}
	sel, err := c.Select(mb.Folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fail(fmt.Errorf("opening %s: %w", mb.Folder, err))
	}
	r.Messages, r.UIDValidity, r.Idle = sel.NumMessages, sel.UIDValidity, c.Caps().Has(imap.CapIdle)
	if len(r.Missing) > 0 {
		r.Error = fmt.Sprintf("move_to folder %q does not exist on the server yet: the first move creates it; is the name right?", mb.MoveTo)
	}
	_ = c.Logout().Wait()
	return r
}

// SMTPReport is what a check of the SMTP server found: it connects, greets,
// signs in and says goodbye without sending anything.
type SMTPReport struct {
	Server   string  `json:"server"`
	TLS      TLSMode `json:"tls"`
	Username string  `json:"username,omitempty"`
	Auth     string  `json:"auth"` // none, PLAIN, XOAUTH2 or OAUTHBEARER
	Error    string  `json:"error,omitempty"`
}

// CheckSMTP tries the SMTP server the way the sender uses it.
func CheckSMTP(ctx context.Context, cfg SMTPConfig) SMTPReport {
	r := SMTPReport{Server: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), Username: cfg.Username, Auth: "none"}
	switch {
	case cfg.OAuth2 != nil:
		r.Auth = cfg.OAuth2.Mechanism()
	case cfg.Username != "":
		r.Auth = "PLAIN"
	}
	s, err := newTransport(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.TLS = s.cfg.TLS
	c, err := s.open(ctx, time.Now().Add(s.cfg.Timeout))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer c.Close()
	if err := c.Quit(); err != nil && !errors.Is(err, net.ErrClosed) {
		r.Error = fmt.Sprintf("saying goodbye: %v", err)
	}
	return r
}
