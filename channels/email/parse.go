// Package email is forgetmenot's e-mail channel: it reads customer mail from
// IMAP mailboxes into inbound messages (parse.go, imap.go) and writes
// acknowledgements and replies over SMTP (smtp.go).
//
// The package knows nothing of Redis or routing policy: it consumes the small
// interfaces declared where they are used (Enqueuer, State).
package email

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	gomail "github.com/emersion/go-message/mail"
	"github.com/forgetmenot/forgetmenot/internal/mailaddr"
	"github.com/forgetmenot/forgetmenot/router"
)

// Metadata keys this channel sets on inbound messages.
const (
	MetaMessageID   = "message_id"
	MetaFrom        = "from"
	MetaReplyTo     = "reply_to"
	MetaTo          = "to"
	MetaCc          = "cc"
	MetaDate        = "date"
	MetaInReplyTo   = "in_reply_to"
	MetaAttachments = "attachments"
	MetaQuoted      = "quoted"
	MetaNotes       = "notes"
	MetaForwarded   = "forwarded"
	MetaTooLarge    = "too_large"
	MetaMailbox     = "mailbox"
	MetaUID         = "imap_uid"
	MetaSize        = "size"
)

// Limits applied when options leave them zero.
const (
	DefaultMaxParts     = 100
	DefaultMaxDepth     = 8
	DefaultMaxTextBytes = 256 << 10
	// maxReferences bounds the thread keys taken from a long References chain
	// (the most recent ones matter).
	maxReferences = 20
)

// ParseOptions tune Parse.
type ParseOptions struct {
	// OwnAddresses are forgetmenot's own addresses (the support mailboxes and
	// the SMTP From): mail from them gets no automatic reply, and with
	// PlusAddressing a recipient like support+c-1042@… names a complaint.
	OwnAddresses   []string
	PlusAddressing bool
	// MaxParts and MaxDepth cap the MIME tree walked; MaxTextBytes caps the
	// text kept as the message body.
	MaxParts     int
	MaxDepth     int
	MaxTextBytes int
	// Now stamps ReceivedAt (tests); time.Now when nil.
	Now func() time.Time
}

func (o ParseOptions) withDefaults() ParseOptions {
	if o.MaxParts <= 0 {
		o.MaxParts = DefaultMaxParts
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxTextBytes <= 0 {
		o.MaxTextBytes = DefaultMaxTextBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func (o ParseOptions) own(addr string) bool {
	addr = withoutTag(strings.ToLower(strings.TrimSpace(addr)))
	for _, a := range o.OwnAddresses {
		if strings.EqualFold(withoutTag(a), addr) {
			return true
		}
	}
	return false
}

// withoutTag drops a plus-address tag ("support+c-1001@winkel.example" is
// "support@winkel.example"): our replies come from tagged addresses, and a
// mail from one is ours too.
func withoutTag(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr
	}
	if plus := strings.IndexByte(addr[:at], '+'); plus >= 0 {
		return addr[:plus] + addr[at:]
	}
	return addr
}

// ErrUnparseable marks mail that cannot be turned into a message at all; it
// goes to the quarantine instead of blocking the mailbox.
var ErrUnparseable = errors.New("unparseable mail")

// Attachment is what is recorded about an attached (or inline) file.
type Attachment struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int64  `json:"size"`
	Inline bool   `json:"inline,omitempty"`
}

// Parse turns one raw RFC 5322 mail into an inbound message. Lenient where
// real mail is sloppy (broken headers, unknown charsets, 8-bit text without a
// charset), it records what it had to guess in the "notes" metadata. An error
// wrapping ErrUnparseable means nothing usable could be read.
func Parse(raw []byte, opts ParseOptions) (router.Message, error) {
	opts = opts.withDefaults()
	p := &parser{opts: opts}
	header, body, err := p.readHeader(raw)
	if err != nil {
		return router.Message{}, err
	}
	msg := p.headerMessage(header)
	text := p.body(header, body)
	p.finish(&msg, header, text)
	return msg, nil
}

// ParseTooLarge builds the message for mail above the size limit from its
// header alone: the complaint is still opened, with a note where the mail is.
func ParseTooLarge(rawHeader []byte, size, limit int64, where string, opts ParseOptions) (router.Message, error) {
	opts = opts.withDefaults()
	p := &parser{opts: opts}
	header, _, err := p.readHeader(rawHeader)
	if err != nil {
		return router.Message{}, err
	}
	msg := p.headerMessage(header)
	msg.Metadata[MetaTooLarge] = "true"
	msg.Metadata[MetaSize] = strconv.FormatInt(size, 10)
	note := fmt.Sprintf("This e-mail is too large to import (%s, the limit is %s). It is still in the mailbox: %s. Only its headers were read.",
		humanSize(size), humanSize(limit), where)
	p.finish(&msg, header, extracted{text: note})
	return msg, nil
}

type parser struct {
	opts  ParseOptions
	notes []string
	parts int
}

func (p *parser) note(format string, args ...any) {
	if len(p.notes) < 20 {
		p.notes = append(p.notes, fmt.Sprintf(format, args...))
	}
}

// readHeader reads the top-level header. A header block with lines that are
// not header fields (seen from broken mailers) is read again without them.
func (p *parser) readHeader(raw []byte) (gomail.Header, *bufio.Reader, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return gomail.Header{}, nil, fmt.Errorf("%w: the mail is empty", ErrUnparseable)
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := readHeaderBlock(br)
	if err != nil {
		cleaned, dropped := sanitizeHeader(raw)
		if dropped == 0 {
			return gomail.Header{}, nil, fmt.Errorf("%w: header: %v", ErrUnparseable, err)
		}
		br = bufio.NewReader(bytes.NewReader(cleaned))
		if h, err = readHeaderBlock(br); err != nil {
			return gomail.Header{}, nil, fmt.Errorf("%w: header: %v", ErrUnparseable, err)
		}
		p.note("%d malformed header line(s) ignored", dropped)
	}
	if h.Len() == 0 {
		return gomail.Header{}, nil, fmt.Errorf("%w: no header fields", ErrUnparseable)
	}
	return gomail.Header{Header: message.Header{Header: h}}, br, nil
}

// sanitizeHeader drops header lines that are neither "Key: value" nor a
// continuation, and returns the mail rebuilt without them.
func sanitizeHeader(raw []byte) ([]byte, int) {
	end := len(raw)
	for _, sep := range [][]byte{[]byte("\r\n\r\n"), []byte("\n\n")} {
		if i := bytes.Index(raw, sep); i >= 0 && i < end {
			end = i
		}
	}
	var out bytes.Buffer
	dropped := 0
	lines := bytes.Split(raw[:end], []byte("\n"))
	for i, line := range lines {
		l := bytes.TrimRight(line, "\r")
		keep := false
		switch {
		case len(l) == 0:
		case l[0] == ' ' || l[0] == '\t':
			keep = i > 0 && out.Len() > 0
		default:
			if c := bytes.IndexByte(l, ':'); c > 0 && validKey(l[:c]) {
				keep = true
			}
		}
		if !keep {
			dropped++
			continue
		}
		out.Write(l)
		out.WriteString("\r\n")
	}
	out.WriteString("\r\n")
	rest := raw[end:]
	rest = bytes.TrimLeft(rest, "\r\n")
	out.Write(rest)
	return out.Bytes(), dropped
}

func validKey(k []byte) bool {
	k = bytes.TrimRight(k, " \t")
	if len(k) == 0 {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c >= 127 || c == ':' {
			return false
		}
	}
	return true
}

// headerMessage fills everything the header says.
func (p *parser) headerMessage(h gomail.Header) router.Message {
	msg := router.Message{Channel: router.ChannelEmail, Metadata: map[string]string{}, ReceivedAt: p.opts.Now().UTC()}

	from := p.addresses(h, "From")
	if len(from) == 0 {
		from = p.addresses(h, "Sender")
	}
	if len(from) > 0 {
		msg.Customer = router.Customer{Name: from[0].Name, Email: strings.ToLower(from[0].Address)}
		msg.Metadata[MetaFrom] = formatAddress(from[0])
	}
	// A Reply-To is where the customer wants answers, unless it is nowhere
	// (no real domain) or us (a web form that sets our own address there:
	// answering it would write to ourselves).
	if rt := p.addresses(h, "Reply-To"); len(rt) > 0 && !strings.EqualFold(rt[0].Address, msg.Customer.Email) && Deliverable(rt[0].Address) && !p.opts.own(rt[0].Address) {
		msg.Metadata[MetaReplyTo] = strings.ToLower(rt[0].Address)
		msg.ReplyTo = msg.Metadata[MetaReplyTo]
	}
	// Decided here, once: without an address we can write to, the router
	// neither acknowledges nor lets staff answer by e-mail, and tells the
	// owner so, instead of a delivery that can only fail.
	switch {
	case msg.Metadata[MetaReplyTo] != "" || Deliverable(msg.Customer.Email):
	case msg.Customer.Email == "":
		msg.Unreachable = "the mail has no readable sender address"
	default:
		msg.Unreachable = fmt.Sprintf("the sender address %q cannot receive mail (no domain we can deliver to)", msg.Customer.Email)
	}
	if msg.Unreachable != "" {
		p.note("%s: replies cannot reach this customer", msg.Unreachable)
	}
	for key, meta := range map[string]string{"To": MetaTo, "Cc": MetaCc} {
		if list := p.addresses(h, key); len(list) > 0 {
			s := make([]string, 0, len(list))
			for _, a := range list {
				s = append(s, formatAddress(a))
			}
			msg.Metadata[meta] = strings.Join(s, ", ")
		}
	}

	subject, err := h.Subject()
	if err != nil {
		subject = h.Get("Subject")
		p.note("subject could not be decoded (%v): shown as sent", err)
	}
	msg.Subject = cleanLine(decodeLoose(subject))
	if raw := h.Get("Date"); raw != "" {
		if d, err := h.Date(); err == nil {
			msg.Metadata[MetaDate] = d.UTC().Format(time.RFC3339)
		} else {
			msg.Metadata[MetaDate] = cleanLine(raw)
		}
	}
	if lang := contentLanguage(h.Get("Content-Language")); lang != "" {
		msg.Language = lang
	}

	id := messageID(h, "Message-Id")
	if id != "" {
		// The Message-ID alone is not trusted as the idempotency key: badly
		// written mailers reuse one id for different mails, which would then
		// be taken for duplicates and lost. The same mail read again (or
		// delivered to two mailboxes) has the same sender, date and subject.
		msg.SourceID = id + "#" + headerHash(h, "From", "Date", "Subject")[:12]
		msg.Metadata[MetaMessageID] = id
	} else {
		msg.SourceID = "sha256:" + headerHash(h, "From", "To", "Cc", "Date", "Subject", "Received")
		p.note("no Message-ID: identified by a hash of its headers")
	}
	msg.ThreadKeys = threadKeys(h, id)
	if irt := firstID(h, "In-Reply-To"); irt != "" {
		msg.Metadata[MetaInReplyTo] = irt
	}
	msg.ComplaintID = complaintReference(msg.Subject, h, p.opts)
	return msg
}

// finish adds the body and what depends on the whole mail.
func (p *parser) finish(msg *router.Message, h gomail.Header, text extracted) {
	fresh, quoted := splitQuoted(text.text)
	if text.forwarded {
		msg.Metadata[MetaForwarded] = "true"
	}
	if quoted != "" {
		msg.Metadata[MetaQuoted] = p.clip(quoted, "quoted history")
	}
	body := strings.TrimSpace(fresh)
	if body == "" && len(text.attachments) > 0 {
		names := make([]string, 0, len(text.attachments))
		for _, a := range text.attachments {
			names = append(names, a.Name)
		}
		body = "(no text; attached: " + strings.Join(names, ", ") + ")"
	}
	if body == "" && msg.Subject != "" {
		body = "(no text; the subject says: " + msg.Subject + ")"
	}
	if body == "" {
		body = "(the e-mail has no text)"
	}
	msg.Body = p.clip(body, "text")
	if len(text.attachments) > 0 {
		b, _ := json.Marshal(text.attachments)
		msg.Metadata[MetaAttachments] = string(b)
	}
	if r := text.report; r.failed() {
		// A bounce of a mail we may have sent: the router puts it on the
		// complaint that mail belongs to, as a failed delivery.
		what := strings.TrimSpace(r.status + " " + r.diagnose)
		if r.recipient != "" {
			what = r.recipient + ": " + what
		}
		msg.DeliveryReport = &router.DeliveryReport{For: ThreadKey(r.original), Status: p.clip(strings.TrimSpace(what), "delivery status")}
	}
	msg.NoAutoReply = autoReplyReason(h, msg.Customer.Email, p.opts)
	if len(p.notes) > 0 {
		msg.Metadata[MetaNotes] = strings.Join(p.notes, "; ")
	}
}

func (p *parser) clip(s, what string) string {
	if len(s) <= p.opts.MaxTextBytes {
		return s
	}
	cut := p.opts.MaxTextBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	was := "it was " + humanSize(int64(len(s)))
	if len(s) >= maxPartBytes {
		was = "it was over " + humanSize(maxPartBytes) // only that much was read
	}
	p.note("%s cut at %s (%s)", what, humanSize(int64(cut)), was)
	return s[:cut] + "\n[… cut]"
}

// addresses reads an address list, falling back to picking addresses out of
// a header that does not parse (unquoted commas, missing brackets).
func (p *parser) addresses(h gomail.Header, key string) []*gomail.Address {
	list, err := h.AddressList(key)
	if err == nil {
		for _, a := range list {
			// Encoded words inside a quoted display name break RFC 2047, so
			// the header library leaves them, but mail programs decode them:
			// "=?Windows-1252?B?…?=" <x@y> is a name, not line noise.
			a.Name = cleanLine(decodeLoose(a.Name))
		}
		return list
	}
	raw := decodeLoose(h.Get(key))
	var out []*gomail.Address
	for _, m := range looseAddress.FindAllStringIndex(raw, -1) {
		addr := raw[m[0]:m[1]]
		name := strings.Trim(strings.TrimSpace(raw[:m[0]]), `"<(, `)
		if len(out) > 0 || strings.ContainsAny(name, "@<>") {
			name = ""
		}
		out = append(out, &gomail.Address{Name: cleanLine(name), Address: addr})
	}
	if len(out) > 0 {
		p.note("%s header is malformed (%v): address picked out of %q", key, err, clipRunes(raw, 120))
	}
	return out
}

var looseAddress = regexp.MustCompile(`[A-Za-z0-9._%+'=-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)

// Deliverable reports whether mail can be sent to addr: a valid address
// whose domain is a real one (has a dot) or an address literal; "bob@extern"
// or "root@localhost" cannot be reached from outside.
func Deliverable(addr string) bool {
	if !mailaddr.Valid(addr) {
		return false
	}
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	if strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]") {
		return true
	}
	dot := strings.LastIndexByte(domain, '.')
	return dot > 0 && dot < len(domain)-1
}

func formatAddress(a *gomail.Address) string {
	if a.Name == "" || strings.EqualFold(a.Name, a.Address) {
		return a.Address
	}
	return a.Name + " <" + a.Address + ">"
}

// messageID reads one message id leniently: without angle brackets, and
// also when the id breaks the grammar (spaces, missing brackets).
func messageID(h gomail.Header, key string) string {
	v := strings.TrimSpace(h.Get(key))
	if v == "" {
		return ""
	}
	if ids, err := h.MsgIDList(key); err == nil && len(ids) > 0 {
		return ids[0]
	}
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			v = v[i+1 : i+j]
		}
	}
	v = strings.Trim(strings.TrimSpace(v), "<>")
	if v == "" || len(v) > 250 || strings.ContainsAny(v, " \t\r\n") {
		return ""
	}
	return v
}

func firstID(h gomail.Header, key string) string {
	ids := idList(h, key)
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// idList reads In-Reply-To / References, keeping what parses.
func idList(h gomail.Header, key string) []string {
	ids, _ := h.MsgIDList(key)
	if len(ids) == 0 && h.Get(key) != "" {
		for _, m := range looseMsgID.FindAllStringSubmatch(h.Get(key), -1) {
			ids = append(ids, m[1])
		}
	}
	return ids
}

var looseMsgID = regexp.MustCompile(`<([^<>\s]{1,250})>`)

// ThreadKey is the thread key of an e-mail Message-ID.
func ThreadKey(id string) string { return "email:" + id }

// threadKeys: what this mail answers first (In-Reply-To, then References
// newest first), then its own id, so that the router follows the most
// specific reference and later answers to this mail thread back.
func threadKeys(h gomail.Header, own string) []string {
	var ids []string
	ids = append(ids, idList(h, "In-Reply-To")...)
	refs := idList(h, "References")
	slices.Reverse(refs)
	if len(refs) > maxReferences {
		refs = refs[:maxReferences]
	}
	ids = append(ids, refs...)
	if own != "" {
		ids = append(ids, own)
	}
	var keys []string
	for _, id := range ids {
		k := ThreadKey(id)
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// headerHash identifies a mail without a Message-ID: the same delivery read
// again (after a restart or a UIDVALIDITY change) hashes the same.
func headerHash(h gomail.Header, keys ...string) string {
	s := sha256.New()
	for _, k := range keys {
		for _, v := range h.Values(k) {
			io.WriteString(s, k+":"+strings.Join(strings.Fields(v), " ")+"\n")
		}
	}
	return hex.EncodeToString(s.Sum(nil))
}

var (
	subjectToken = regexp.MustCompile(`(?i)\[#\s*(C-\d{1,12})\s*\]`)
	plusToken    = regexp.MustCompile(`(?i)^([^+@]+)\+(c-\d{1,12})@(.+)$`)
)

// SubjectToken is the complaint reference we put in subjects: "[#C-1042]".
func SubjectToken(complaintID string) string { return "[#" + complaintID + "]" }

// complaintReference finds an explicit complaint reference: the subject
// token, else a plus-address on one of our addresses.
func complaintReference(subject string, h gomail.Header, opts ParseOptions) string {
	if m := subjectToken.FindStringSubmatch(subject); m != nil {
		return strings.ToUpper(m[1])
	}
	if !opts.PlusAddressing {
		return ""
	}
	for _, key := range []string{"To", "Cc", "Delivered-To", "X-Original-To"} {
		list, _ := h.AddressList(key)
		for _, a := range list {
			if m := plusToken.FindStringSubmatch(a.Address); m != nil && opts.own(m[1]+"@"+m[3]) {
				return strings.ToUpper(m[2])
			}
		}
	}
	return ""
}

func contentLanguage(v string) string {
	v = strings.ToLower(strings.TrimSpace(strings.Split(v, ",")[0]))
	if len(v) >= 2 && v[0] >= 'a' && v[0] <= 'z' && v[1] >= 'a' && v[1] <= 'z' && (len(v) == 2 || v[2] == '-' || v[2] == '_') {
		return v[:2]
	}
	return ""
}

// decodeLoose decodes RFC 2047 words where the header library did not (in
// addresses picked out by hand) and repairs raw 8-bit text that is not UTF-8
// (old mailers send Windows-1252 headers unencoded).
func decodeLoose(s string) string {
	if strings.Contains(s, "=?") {
		dec := &mime.WordDecoder{CharsetReader: charset.Reader}
		if d, err := dec.DecodeHeader(s); err == nil {
			s = d
		}
	}
	return toUTF8(s, "windows-1252")
}

// toUTF8 returns s when it is valid UTF-8, else decodes it from fallback.
func toUTF8(s, fallback string) string {
	if utf8.ValidString(s) {
		return s
	}
	if r, err := charset.Reader(fallback, strings.NewReader(s)); err == nil {
		if b, err := io.ReadAll(r); err == nil && utf8.Valid(b) {
			return string(b)
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func cleanLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '\t' {
			return ' '
		}
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func clipRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
