package email

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// maxPartBytes bounds what is read of one text part (the mail as a whole is
// already bounded by the mailbox's size limit).
const maxPartBytes = 8 << 20

func readHeaderBlock(br *bufio.Reader) (textproto.Header, error) {
	return textproto.ReadHeader(br)
}

// extracted is what the MIME walk found.
type extracted struct {
	text        string
	forwarded   bool
	attachments []Attachment
	report      deliveryReport
}

type walk struct {
	plain, html []string
	attachments []Attachment
	forwarded   bool
	report      deliveryReport
}

// deliveryReport is what a bounce (RFC 3464 delivery status notification)
// says about a mail that could not be delivered.
type deliveryReport struct {
	seen                bool
	action, status      string
	recipient, diagnose string
	// original is the Message-ID of the mail that bounced.
	original string
}

// failed reports whether the report says the mail was not delivered (not a
// "delayed" warning or a "delivered" receipt).
func (d deliveryReport) failed() bool {
	return d.seen && d.original != "" && (strings.EqualFold(d.action, "failed") || (d.action == "" && strings.HasPrefix(d.status, "5")))
}

// readReportPart reads the parts of a delivery report that matter: the
// status fields, and the headers of the mail that bounced.
func (w *walk) readReportPart(mediaType string, body []byte) {
	switch mediaType {
	case "message/delivery-status":
		w.report.seen = true
		for _, line := range strings.Split(string(body), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "action":
				w.report.action = v
			case "status":
				w.report.status = v
			case "final-recipient", "original-recipient":
				if w.report.recipient == "" {
					_, addr, _ := strings.Cut(v, ";")
					w.report.recipient = strings.TrimSpace(addr)
				}
			case "diagnostic-code":
				_, diag, _ := strings.Cut(v, ";")
				w.report.diagnose = cleanLine(strings.TrimSpace(diag))
			}
		}
	case "text/rfc822-headers", "message/rfc822", "message/rfc822-headers":
		// The headers part often ends without the blank line that ends a
		// header block.
		h, err := readHeaderBlock(bufio.NewReader(bytes.NewReader(append(body, "\r\n\r\n"...))))
		if err == nil {
			if id := messageID(gomail.Header{Header: message.Header{Header: h}}, "Message-Id"); id != "" {
				w.report.original = id
			}
		}
	}
}

// body walks the MIME tree (bounded in parts and depth) and picks the text:
// text/plain where there is one, else HTML made readable.
func (p *parser) body(h gomail.Header, br *bufio.Reader) extracted {
	e, err := message.New(h.Header, br)
	if err != nil && e == nil {
		p.note("body unreadable: %v", err)
		return extracted{}
	}
	w := &walk{}
	p.walk(e, err, 0, w)
	out := extracted{attachments: w.attachments, forwarded: w.forwarded, report: w.report}
	// text/plain is preferred, unless it is empty (some mailers send an empty
	// plain alternative beside the real HTML).
	out.text = strings.Join(w.plain, "\n\n")
	if strings.TrimSpace(out.text) == "" {
		out.text = strings.Join(w.html, "\n\n")
	}
	out.text = normalizeText(out.text)
	return out
}

func (p *parser) walk(e *message.Entity, entErr error, depth int, w *walk) {
	p.parts++
	if p.parts > p.opts.MaxParts {
		if p.parts == p.opts.MaxParts+1 {
			p.note("more than %d MIME parts: the rest is ignored", p.opts.MaxParts)
		}
		return
	}
	mediaType, params, err := e.Header.ContentType()
	lenientCharset := "" // go-message decodes the charset of a readable Content-Type only
	if err != nil || (mediaType != "" && !strings.Contains(mediaType, "/")) {
		// go-message hands back the raw header as the type: a stray ";",
		// an empty parameter or a missing ";" would make the customer's
		// text an unnamed attachment. Mail programs read such a part by
		// the type it names, as RFC 2045 says for one they cannot read.
		raw := e.Header.Get("Content-Type")
		mediaType, params = lenientContentType(raw)
		lenientCharset = params["charset"]
		p.note("a MIME part's Content-Type is malformed (%q): read as %s", clipNote(raw), mediaType)
	}
	if mediaType == "" {
		mediaType = "text/plain"
	}
	mediaType = strings.ToLower(mediaType)
	if mr := e.MultipartReader(); mr != nil {
		if depth >= p.opts.MaxDepth {
			p.note("MIME parts nested deeper than %d: the deeper parts are ignored", p.opts.MaxDepth)
			return
		}
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				return
			}
			if part == nil {
				if err != nil {
					p.note("a MIME part could not be read: %v", err)
				}
				return
			}
			p.walk(part, err, depth+1, w)
		}
	}

	disp, dparams, _ := e.Header.ContentDisposition()
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	name = cleanLine(decodeLoose(decodeParamWords(name)))
	isAttachment := strings.EqualFold(disp, "attachment") || (name != "" && !strings.HasPrefix(mediaType, "text/"))
	isText := mediaType == "text/plain" || mediaType == "text/html"

	if !isText || isAttachment || (name != "" && strings.EqualFold(disp, "attachment")) {
		var n int64
		if isReportPart(mediaType) {
			b, _ := io.ReadAll(io.LimitReader(e.Body, maxReportPartBytes))
			w.readReportPart(mediaType, b)
			m, _ := io.Copy(io.Discard, io.LimitReader(e.Body, 1<<31))
			n = int64(len(b)) + m
		} else {
			n, _ = io.Copy(io.Discard, io.LimitReader(e.Body, 1<<31))
		}
		if name == "" {
			name = defaultName(mediaType, e)
		}
		if mediaType == "message/rfc822" {
			w.forwarded = true
		}
		w.attachments = append(w.attachments, Attachment{Name: name, Type: mediaType, Size: n, Inline: strings.EqualFold(disp, "inline") || e.Header.Get("Content-Id") != ""})
		return
	}

	raw, err := io.ReadAll(io.LimitReader(e.Body, maxPartBytes))
	if err != nil {
		p.note("%s part read partly: %v", mediaType, err)
	}
	text := string(raw)
	if lenientCharset != "" && !utf8.ValidString(text) {
		text = toUTF8(text, lenientCharset)
	}
	switch {
	case message.IsUnknownCharset(entErr):
		if utf8.ValidString(text) {
			p.note("%s part in unknown charset %q: shown undecoded", mediaType, params["charset"])
		} else {
			p.note("%s part in unknown charset %q: shown undecoded, 8-bit characters read as Windows-1252", mediaType, params["charset"])
			text = toUTF8(text, "windows-1252")
		}
	case message.IsUnknownEncoding(entErr):
		p.note("%s part in unknown transfer encoding %q: shown undecoded", mediaType, e.Header.Get("Content-Transfer-Encoding"))
		text = strings.ToValidUTF8(text, "\uFFFD")
	case !utf8.ValidString(text):
		// 8-bit text without a charset: Windows-1252 is what such mailers send.
		p.note("%s part has 8-bit text without a valid charset: read as Windows-1252", mediaType)
		text = toUTF8(text, "windows-1252")
	}
	if mediaType == "text/html" {
		w.html = append(w.html, htmlToText(text))
	} else {
		w.plain = append(w.plain, text)
	}
}

// maxReportPartBytes bounds what is read of a delivery report's parts: the
// status fields and the bounced mail's headers are at the start.
const maxReportPartBytes = 64 << 10

func isReportPart(mediaType string) bool {
	switch mediaType {
	case "message/delivery-status", "text/rfc822-headers", "message/rfc822", "message/rfc822-headers":
		return true
	}
	return false
}

// decodeParamWords decodes RFC 2047 words that some mailers put in file names.
func decodeParamWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	dec := &mime.WordDecoder{CharsetReader: charset.Reader}
	if d, err := dec.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

func defaultName(mediaType string, e *message.Entity) string {
	if mediaType == "message/rfc822" {
		return "forwarded message.eml"
	}
	if id := strings.Trim(e.Header.Get("Content-Id"), "<> "); id != "" {
		return "inline " + id
	}
	return "unnamed " + mediaType
}

// normalizeText unifies line ends and trims trailing spaces.
func normalizeText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\u00a0")
	}
	s = strings.Join(lines, "\n")
	// One blank line between paragraphs is enough (HTML mail piles them up).
	for strings.Contains(s, "\n\n\n") {
		s = strings.ReplaceAll(s, "\n\n\n", "\n\n")
	}
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r == 0 || (r < ' ' && r != '\n' && r != '\t') {
			return -1
		}
		return r
	}, s))
}

// lenientContentType reads what it can of a malformed Content-Type: the
// media type it starts with (text/plain when that is not one), and each
// parameter that is name=value (charset above all).
func lenientContentType(raw string) (string, map[string]string) {
	head, rest, _ := strings.Cut(raw, ";")
	fields := strings.Fields(head)
	mediaType := "text/plain"
	if len(fields) > 0 {
		if t, sub, ok := strings.Cut(fields[0], "/"); ok && t != "" && sub != "" {
			mediaType = strings.ToLower(fields[0])
		}
		// "text/plain charset=utf-8": a parameter after a missing ";".
		rest = strings.Join(fields[1:], ";") + ";" + rest
	}
	params := map[string]string{}
	for _, kv := range strings.Split(rest, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.Trim(strings.TrimSpace(v), `"`)
		if ok && k != "" && v != "" {
			params[k] = v
		}
	}
	return mediaType, params
}

// clipNote keeps a header quoted in a note short.
func clipNote(s string) string {
	if len(s) <= 80 {
		return s
	}
	for i := 80; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}
