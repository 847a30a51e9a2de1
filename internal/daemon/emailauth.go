package daemon

import (
	"fmt"

	"github.com/forgetmenot/forgetmenot/channels/email"
	"github.com/forgetmenot/forgetmenot/configs"
)

// EmailMailbox turns a configured mailbox into the channel's, with its
// token source when it signs in by OAuth 2.0 (nothing is fetched yet).
func EmailMailbox(b configs.Mailbox) (email.Mailbox, error) {
	mb := email.Mailbox{
		Name: b.Name, Host: b.Host, Port: b.Port, TLS: email.TLSMode(b.TLS), Username: b.Username, Password: b.Password,
		Folder: b.Folder, DefaultTeam: b.DefaultTeam, PollInterval: b.PollInterval, MoveTo: b.MoveTo, Keyword: b.Keyword, MaxSize: b.MaxSize,
	}
	if b.OAuth2 != nil {
		o, err := email.NewOAuth2(*b.OAuth2)
		if err != nil {
			return email.Mailbox{}, fmt.Errorf("mailbox %q: oauth2: %w", b.Name, err)
		}
		mb.OAuth2 = o
	}
	return mb, nil
}

// EmailSMTP is the SMTP configuration from the environment; with
// SMTP_AUTH=oauth2 it signs in with the token source of the mailbox
// SMTP_OAUTH2_MAILBOX (boxes), shared with that mailbox's IMAP intake when
// mailboxes[i] is given (one token cache, one refresh).
func EmailSMTP(cfg configs.Config, boxes []configs.Mailbox, mailboxes []email.Mailbox) (email.SMTPConfig, error) {
	password := cfg.SMTPPassword
	if cfg.SMTPPasswordFile != "" {
		p, err := configs.ReadSecretFile(cfg.SMTPPasswordFile)
		if err != nil {
			return email.SMTPConfig{}, fmt.Errorf("%s: %w", configs.Var("SMTP_PASSWORD_FILE"), err)
		}
		password = p
	}
	sc := email.SMTPConfig{
		Host: cfg.SMTPHost, Port: cfg.SMTPPort, TLS: email.TLSMode(cfg.SMTPTLS), Username: cfg.SMTPUsername, Password: password,
		From: cfg.SMTPFrom, PlusAddressing: cfg.EmailPlusAddressing,
	}
	if cfg.SMTPAuth != configs.AuthOAuth2 {
		return sc, nil
	}
	for i, b := range boxes {
		if b.Name != cfg.SMTPOAuth2Mailbox {
			continue
		}
		if b.OAuth2 == nil {
			return email.SMTPConfig{}, fmt.Errorf("%s: mailbox %q signs in by password; give it auth: oauth2 or use SMTP_AUTH=password", configs.Var("SMTP_OAUTH2_MAILBOX"), b.Name)
		}
		if i < len(mailboxes) && mailboxes[i].OAuth2 != nil {
			sc.OAuth2 = mailboxes[i].OAuth2
		} else {
			o, err := email.NewOAuth2(*b.OAuth2)
			if err != nil {
				return email.SMTPConfig{}, fmt.Errorf("%s: mailbox %q: oauth2: %w", configs.Var("SMTP_OAUTH2_MAILBOX"), b.Name, err)
			}
			sc.OAuth2 = o
		}
		if sc.Username == "" {
			sc.Username = b.Username
		}
		sc.Password = ""
		return sc, nil
	}
	return email.SMTPConfig{}, fmt.Errorf("%s: no mailbox %q in %s", configs.Var("SMTP_OAUTH2_MAILBOX"), cfg.SMTPOAuth2Mailbox, cfg.MailboxesFile)
}
