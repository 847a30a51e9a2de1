package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/forgetmenot/forgetmenot/internal/texts"
	"github.com/forgetmenot/forgetmenot/router"
	"golang.org/x/net/idna"
)

// SMTPConfig is how customer mail leaves.
type SMTPConfig struct {
	Host     string
	Port     int
	TLS      TLSMode
	Username string
	Password string
	// OAuth2, when set, signs in with an access token for Username
	// (XOAUTH2 or OAUTHBEARER) instead of the password.
	OAuth2 *OAuth2
	// Metrics counts sign-ins (optional).
	Metrics *Metrics
	// From is the support address customers see and answer to; a display
	// name is allowed ("Klantenservice <support@winkel.example>").
	From string
	// PlusAddressing sets Reply-To to support+c-1042@… so an answer carries
	// its complaint even when the mail program drops the threading headers.
	PlusAddressing bool
	// HelloName is the EHLO name (default: the From domain).
	HelloName string
	Timeout   time.Duration
	TLSConfig *tls.Config
}

// AckLimiter remembers acknowledgements, to send at most one per sender per
// hour (loop guard against autoresponders that do not say they are one).
type AckLimiter interface {
	Claim(ctx context.Context, k, value string, ttl time.Duration) (bool, error)
	Get(ctx context.Context, k string) (string, bool, error)
}

// AckInterval is how often one sender may get an acknowledgement.
const AckInterval = time.Hour

// Sender writes to customers by e-mail.
type Sender struct {
	cfg       SMTPConfig
	from      *gomail.Address
	templates *Templates
	limiter   AckLimiter
	ids       *MessageIDs
	log       *slog.Logger
	auth      authStatus
	metrics   *Metrics
}

// NewSender checks the configuration and builds a Sender.
func NewSender(cfg SMTPConfig, templates *Templates, limiter AckLimiter, log *slog.Logger) (*Sender, error) {
	if templates == nil || limiter == nil {
		return nil, errors.New("email: sender needs templates and a limiter")
	}
	s, err := newTransport(cfg, log)
	if err != nil {
		return nil, err
	}
	s.templates, s.limiter, s.ids = templates, limiter, NewMessageIDs(limiter)
	return s, nil
}

// newTransport is a Sender that can connect and sign in (no templates).
func newTransport(cfg SMTPConfig, log *slog.Logger) (*Sender, error) {
	from, err := gomail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("email: From address %q: %w", cfg.From, err)
	}
	if cfg.Host == "" || cfg.Port <= 0 {
		return nil, errors.New("email: SMTP host and port are required")
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.HelloName == "" {
		cfg.HelloName = domainOf(from.Address)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Sender{cfg: cfg, from: from, log: log, metrics: cfg.Metrics}, nil
}

// Address is the sender's own address (for the loop guard on intake).
func (s *Sender) Address() string { return strings.ToLower(s.from.Address) }

// MessageID is the Message-ID of a customer message: derived from its stable
// id, so a retried send carries the same id and the customer's mail program
// (and our own threading) recognise it as one mail; see MessageIDs.
func (s *Sender) MessageID(ctx context.Context, m router.CustomerMessage) (string, error) {
	return s.ids.For(ctx, m.ID, domainOf(s.from.Address))
}

// Send delivers one customer message. A 5xx answer is permanent; anything
// else is retried by the outbox.
func (s *Sender) Send(ctx context.Context, m router.CustomerMessage) (router.Sent, error) {
	to := asciiDomain(recipient(m))
	if to == "" {
		return router.Sent{}, router.Permanent(fmt.Errorf("complaint %s has no e-mail address to write to", m.Complaint.ID))
	}
	if !Deliverable(to) {
		return router.Sent{}, router.Permanent(fmt.Errorf("complaint %s: %q cannot receive mail", m.Complaint.ID, to))
	}
	if m.Kind == router.ToCustomerAcknowledgement {
		if m.InReplyTo != nil && m.InReplyTo.NoAutoReply != "" {
			return router.Sent{Via: string(router.ChannelEmail), Skipped: m.InReplyTo.NoAutoReply}, nil
		}
		if strings.EqualFold(to, s.from.Address) {
			return router.Sent{Via: string(router.ChannelEmail), Skipped: "the customer address is our own"}, nil
		}
		why, err := s.claimAck(ctx, to, m.ID)
		if err != nil {
			return router.Sent{}, err
		}
		if why != "" {
			return router.Sent{Via: string(router.ChannelEmail), Skipped: why}, nil
		}
	}
	id, err := s.MessageID(ctx, m)
	if err != nil {
		return router.Sent{}, err
	}
	raw, err := s.compose(m, to, id)
	if err != nil {
		return router.Sent{}, router.Permanent(err)
	}
	if err := s.deliver(ctx, to, raw); err != nil {
		return router.Sent{}, err
	}
	s.log.Info("e-mail sent", "complaint", m.Complaint.ID, "kind", m.Kind, "to", to, "message_id", id)
	return router.Sent{Via: string(router.ChannelEmail), Ref: "<" + id + ">", ThreadKeys: []string{ThreadKey(id)}, Address: to}, nil
}

// MailStaff sends a plain notice to a member of staff (to, an address from
// the roster): the last route of a notification Slack refused. It is marked
// automatic so out-of-office replies do not come back. A 5xx answer is
// permanent.
func (s *Sender) MailStaff(ctx context.Context, to, subject, body string) error {
	var h gomail.Header
	h.SetDate(time.Now())
	h.SetAddressList("From", []*gomail.Address{s.from})
	h.SetAddressList("To", []*gomail.Address{{Address: to}})
	h.SetSubject(subject)
	if err := h.GenerateMessageIDWithHostname(domainOf(s.from.Address)); err != nil {
		return fmt.Errorf("composing a notice to %s: %w", to, err)
	}
	h.Set("Auto-Submitted", "auto-generated")
	h.Set("X-Auto-Response-Suppress", "All")
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	var buf bytes.Buffer
	w, err := gomail.CreateSingleInlineWriter(&buf, h)
	if err == nil {
		_, err = w.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n")))
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return router.Permanent(fmt.Errorf("composing a notice to %s: %w", to, err))
	}
	if err := s.deliver(ctx, to, buf.Bytes()); err != nil {
		return err
	}
	s.log.Info("notice e-mailed to staff", "to", to, "subject", subject)
	return nil
}

// claimAck allows one acknowledgement per sender per hour; a retry of the
// same message keeps its claim.
func (s *Sender) claimAck(ctx context.Context, to, msgID string) (skipped string, err error) {
	key := "ack:" + strings.ToLower(to)
	ok, err := s.limiter.Claim(ctx, key, msgID, AckInterval)
	if err != nil {
		return "", fmt.Errorf("checking the acknowledgement rate limit: %w", err)
	}
	if ok {
		return "", nil
	}
	holder, found, err := s.limiter.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("checking the acknowledgement rate limit: %w", err)
	}
	if found && holder == msgID {
		return "", nil
	}
	return fmt.Sprintf("%s already got an acknowledgement in the last hour (loop guard)", to), nil
}

// recipient: the Reply-To of the customer's latest mail, else their address.
func recipient(m router.CustomerMessage) string {
	if m.InReplyTo != nil && m.InReplyTo.Channel == router.ChannelEmail {
		// A Reply-To is where the customer wants answers: the one the
		// complaint opened with is taken as asked (the acknowledgement goes
		// there, which proves it), a later one only when it is proven the
		// customer's already. A mail that forges the customer's From (no
		// DMARC at their domain) could otherwise send the owner's replies,
		// and the case in them, to anyone it names.
		if rt := m.InReplyTo.Metadata[MetaReplyTo]; rt != "" && (m.Kind == router.ToCustomerAcknowledgement || m.Complaint.Proves(router.EmailIdentity(rt))) {
			return rt
		}
		if e := m.InReplyTo.Customer.Email; e != "" && (m.Kind == router.ToCustomerAcknowledgement || m.Complaint.Proves(router.EmailIdentity(e))) {
			return e
		}
	}
	return m.Complaint.Customer.Email
}

func (s *Sender) compose(m router.CustomerMessage, to, id string) ([]byte, error) {
	subject, body, lang, err := s.templates.Render(m)
	if err != nil {
		return nil, err
	}
	var h gomail.Header
	h.SetDate(m.At)
	if m.At.IsZero() {
		h.SetDate(time.Now())
	}
	h.SetAddressList("From", []*gomail.Address{s.from})
	name := m.Complaint.Customer.Name
	if !strings.EqualFold(to, m.Complaint.Customer.Email) {
		name = ""
	}
	h.SetAddressList("To", []*gomail.Address{{Name: name, Address: to}})
	if s.cfg.PlusAddressing {
		local, domain, _ := strings.Cut(s.from.Address, "@")
		h.SetAddressList("Reply-To", []*gomail.Address{{Name: s.from.Name, Address: local + "+" + strings.ToLower(m.Complaint.ID) + "@" + domain}})
	}
	if !subjectToken.MatchString(subject) {
		subject = strings.TrimSpace(subject + " " + SubjectToken(m.Complaint.ID))
	}
	h.SetSubject(subject)
	h.SetMessageID(id)
	var refs []string
	for _, k := range m.References {
		if rest, ok := strings.CutPrefix(k, "email:"); ok && !strings.Contains(rest, "|") {
			refs = append(refs, rest)
		}
	}
	// Only an e-mail's Message-ID is one: other channels' metadata is theirs
	// (a webhook's is free-form, and may hold anything, line breaks too).
	if m.InReplyTo != nil && m.InReplyTo.Channel == router.ChannelEmail {
		if irt := m.InReplyTo.Metadata[MetaMessageID]; irt != "" {
			h.SetMsgIDList("In-Reply-To", []string{irt})
			if len(refs) == 0 || refs[len(refs)-1] != irt {
				refs = append(refs, irt)
			}
		}
	}
	if len(refs) > maxReferences {
		refs = refs[len(refs)-maxReferences:]
	}
	if len(refs) > 0 {
		h.SetMsgIDList("References", refs)
	}
	if m.Kind == router.ToCustomerAcknowledgement {
		// RFC 3834: mark the acknowledgement as automatic, and ask Exchange
		// not to answer it with an out-of-office.
		h.Set("Auto-Submitted", "auto-replied")
		h.Set("X-Auto-Response-Suppress", "All")
	}
	if m.Kind == router.ToCustomerCSAT {
		// Automatic too, but not an answer to the customer's mail.
		h.Set("Auto-Submitted", "auto-generated")
		h.Set("X-Auto-Response-Suppress", "All")
	}
	h.Set("Content-Language", lang)
	h.Set("X-Forgetmenot-Complaint", m.Complaint.ID)
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	var buf bytes.Buffer
	w, err := gomail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("composing the mail: %w", err)
	}
	if _, err := w.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n"))); err != nil {
		return nil, fmt.Errorf("composing the mail: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("composing the mail: %w", err)
	}
	return buf.Bytes(), nil
}

// asciiDomain writes an address's internationalised domain in its ASCII
// form (jurgen@bücher.example is jurgen@xn--bcher-kva.example), which every
// mail server takes; only a local part outside ASCII needs the server's
// SMTPUTF8. An address whose domain does not convert is left as it is.
func asciiDomain(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || isASCII(addr[at+1:]) {
		return addr
	}
	domain, err := idna.Lookup.ToASCII(addr[at+1:])
	if err != nil {
		return addr
	}
	return addr[:at+1] + domain
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// serverRetryAfter spaces the outbox's attempts while our mail server is
// down, busy (4xx) or refuses our sign-in: a few seconds apart, the
// attempts would be spent before most outages end (and a refused sign-in
// fetched a token each time).
const serverRetryAfter = 30 * time.Second

// deliver hands the mail to the SMTP server.
func (s *Sender) deliver(ctx context.Context, to string, raw []byte) error {
	err := s.deliverOnce(ctx, to, raw)
	if err != nil && !router.IsPermanent(err) {
		return router.RetryAfter(err, serverRetryAfter)
	}
	return err
}

func (s *Sender) deliverOnce(ctx context.Context, to string, raw []byte) error {
	c, err := s.open(ctx, time.Now().Add(s.cfg.Timeout+time.Duration(len(raw)/(64<<10))*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(s.from.Address, []string{to}, bytes.NewReader(raw)); err != nil {
		if !isASCII(to) && strings.Contains(err.Error(), "SMTPUTF8") {
			// No retry changes what the server supports.
			return router.Permanent(fmt.Errorf("sending to %s: the address needs SMTPUTF8, which the mail server does not offer: %w", to, err))
		}
		return classify(fmt.Errorf("sending to %s: %w", to, err))
	}
	_ = c.Quit()
	return nil
}

// open connects, greets and signs in, with every step done by deadline; a
// refused token is replaced once, on a new connection.
func (s *Sender) open(ctx context.Context, deadline time.Time) (*smtp.Client, error) {
	c, err := retryRefusedToken(s.log, func(retry bool) (*smtp.Client, error) { return s.connect(ctx, deadline, retry) })
	if s.cfg.Username != "" || s.cfg.OAuth2 != nil {
		s.auth.record(err)
		if err == nil || IsAuthFailure(err) {
			s.metrics.signIn("smtp", err)
		}
	}
	return c, err
}

func (s *Sender) connect(ctx context.Context, deadline time.Time, retry bool) (*smtp.Client, error) {
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	dialer := &net.Dialer{Timeout: s.cfg.Timeout}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to SMTP server %s: %w", addr, err)
	}
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// go-smtp sets a deadline of its own (5 minutes) before each command
	// and clears it after: every one it sets is held to ours.
	conn = deadlineConn{Conn: conn, limit: deadline}
	_ = conn.SetDeadline(deadline)
	tlsConfig := s.cfg.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: s.cfg.Host}
	}
	var c *smtp.Client
	switch s.cfg.TLS {
	case TLSImplicit:
		c = smtp.NewClient(tls.Client(conn, tlsConfig))
	case TLSStartTLS:
		c, err = smtp.NewClientStartTLS(conn, tlsConfig)
		if err != nil {
			conn.Close()
			return nil, classify(fmt.Errorf("STARTTLS with %s: %w", addr, err))
		}
	default:
		c = smtp.NewClient(conn)
	}
	if err := c.Hello(s.cfg.HelloName); err != nil {
		c.Close()
		return nil, classify(fmt.Errorf("greeting %s: %w", addr, err))
	}
	if err := s.signIn(c, retry); err != nil {
		c.Close()
		// Never permanent: refused credentials are ours to fix, not the
		// customer's; the outbox retries with backoff meanwhile.
		return nil, fmt.Errorf("signing in to %s: %w", addr, err)
	}
	return c, nil
}

// deadlineConn keeps every deadline set on the connection within limit, so
// a server that accepts and then says nothing cannot hold a send (and the
// outbox worker doing it) past the time it was given.
type deadlineConn struct {
	net.Conn
	limit time.Time
}

func (c deadlineConn) SetDeadline(t time.Time) error     { return c.Conn.SetDeadline(c.within(t)) }
func (c deadlineConn) SetReadDeadline(t time.Time) error { return c.Conn.SetReadDeadline(c.within(t)) }
func (c deadlineConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.within(t))
}

func (c deadlineConn) within(t time.Time) time.Time {
	if t.IsZero() || t.After(c.limit) {
		return c.limit
	}
	return t
}

// classify marks 5xx answers permanent: the server refused for good.
func classify(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 && se.Code < 600 {
		return router.Permanent(err)
	}
	return err
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return "localhost"
}

// Templates word what is sent to customers, per kind and language. A file
// "<kind>.<lang>.tmpl" (acknowledgement, reply, promise; nl, en, …) starts
// with a "Subject: " line, then a blank line, then the body (text/template).
type Templates struct {
	byName   map[string]*template.Template
	fallback string
}

// TemplateData is what a template may use.
type TemplateData struct {
	Reference      string // "C-1042"
	Owner          string // "Anna de Vries"
	OwnerFirstName string // "Anna"
	Author         string // "Anna de Vries", or "Bas Jansen for Anna de Vries"
	CustomerName   string
	Subject        string // the complaint's subject
	Body           string // what staff wrote
	PromisedBy     time.Time
}

// templateFuncs: re "Subject" gives "Re: Subject" once, never "Re: Re:";
// date formats a moment for the customer.
var templateFuncs = template.FuncMap{
	"re": func(s string) string {
		if s == "" {
			return ""
		}
		l := strings.ToLower(s)
		for _, p := range []string{"re:", "aw:", "antw:", "sv:"} {
			if strings.HasPrefix(l, p) {
				return s
			}
		}
		return "Re: " + s
	},
	"date": func(t time.Time, layout string) string { return t.Format(layout) },
}

var templateKinds = []router.CustomerMessageKind{router.ToCustomerAcknowledgement, router.ToCustomerReply, router.ToCustomerPromise, router.ToCustomerCSAT}

// LoadTemplates reads every template in dir; fallback ("en") is the language
// used when the customer's has no templates, and must be complete.
func LoadTemplates(dir, fallback string) (*Templates, error) {
	t := &Templates{byName: map[string]*template.Template{}, fallback: fallback}
	files, err := filepath.Glob(filepath.Join(dir, "*.tmpl"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no *.tmpl templates found", dir)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(filepath.Base(f), ".tmpl")
		if !strings.HasPrefix(string(raw), "Subject: ") || !strings.Contains(string(raw), "\n\n") {
			return nil, fmt.Errorf("%s:1: a template starts with a \"Subject: \" line and a blank line before the body", f)
		}
		tpl, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).Parse(string(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if _, _, err := renderTemplate(tpl, TemplateData{Reference: "C-1", Owner: "Anna de Vries", OwnerFirstName: "Anna", Author: "Anna de Vries", Body: "x", PromisedBy: time.Now()}); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		t.byName[name] = tpl
	}
	for _, k := range templateKinds {
		if t.byName[string(k)+"."+fallback] == nil {
			return nil, fmt.Errorf("%s: %s.%s.tmpl is missing (the %s templates are the fallback and must be complete)", dir, k, fallback, fallback)
		}
	}
	return t, nil
}

// Render words a customer message in the complaint's language (or the
// fallback) and returns its subject, body and language.
func (t *Templates) Render(m router.CustomerMessage) (subject, body, lang string, err error) {
	lang = m.Complaint.Language
	tpl := t.byName[string(m.Kind)+"."+lang]
	if tpl == nil {
		lang = t.fallback
		tpl = t.byName[string(m.Kind)+"."+lang]
	}
	if tpl == nil {
		return "", "", "", fmt.Errorf("no template for %s messages", m.Kind)
	}
	owner := m.OwnerName
	if owner == "" {
		owner = m.Complaint.Owner
	}
	first, _, _ := strings.Cut(owner, " ")
	author := m.AuthorName
	if m.CoverName != "" {
		author = m.CoverName + " " + texts.OnBehalfOf(lang) + " " + owner
	}
	if author == "" {
		author = owner
	}
	subject, body, err = renderTemplate(tpl, TemplateData{
		Reference: m.Complaint.ID, Owner: owner, OwnerFirstName: first, Author: author,
		CustomerName: m.Complaint.Customer.Name, Subject: m.Complaint.Subject, Body: m.Body, PromisedBy: m.Complaint.PromisedBy,
	})
	return subject, body, lang, err
}

func renderTemplate(tpl *template.Template, d TemplateData) (subject, body string, err error) {
	var b strings.Builder
	if err := tpl.Execute(&b, d); err != nil {
		return "", "", err
	}
	head, rest, _ := strings.Cut(b.String(), "\n\n")
	subject = cleanLine(strings.TrimPrefix(head, "Subject: "))
	return subject, strings.TrimSpace(rest) + "\n", nil
}
