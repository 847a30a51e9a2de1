// Package cleantext is the one normalisation of customer text at the
// boundary where channels hand messages to the queue. Whatever a channel
// read (a mail header, a form field, a chat frame, a forum post), what is
// stored and later shown to staff in Slack, the CLI and the API carries no
// control characters that could forge lines or drive a terminal, no bidi
// overrides that make text read differently from what it is, and no field
// longer than its limit.
package cleantext

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/forgetmenot/forgetmenot/internal/mailaddr"
	"github.com/forgetmenot/forgetmenot/router"
)

// Limits of one-line fields, in bytes. A subject fits a mail header line
// (RFC 5322); names and thread keys are generous for real data.
const (
	MaxName       = 200
	MaxSubject    = 998
	MaxThreadKey  = 998
	MaxThreadKeys = 100
	MaxMetaKey    = 64
)

// bidiControl reports the explicit directional formatting characters
// (embeddings, overrides, isolates): they reorder how the text around them
// is displayed, so "invoice_cod.exe" can show as "invoice_exe.doc". The
// implicit marks (U+200E, U+200F) are harmless and kept.
func bidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

// control reports characters with no place in stored text: C0 and C1
// controls (NUL, ESC of ANSI sequences, CSI), DEL, and the Unicode line and
// paragraph separators, which some displays treat as line breaks.
func control(r rune) bool {
	return r < 0x20 || (r >= 0x7F && r <= 0x9F) || r == 0x2028 || r == 0x2029
}

// Line cleans a one-line field (a name, a subject): line breaks and tabs
// become spaces, other control and bidi characters go, invalid UTF-8 becomes
// U+FFFD, and runs of space collapse at the ends.
func Line(s string) string {
	if isClean(s, false) {
		return strings.TrimSpace(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r == 0x2028 || r == 0x2029:
			b.WriteByte(' ')
		case control(r) || bidiControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return strings.TrimSpace(b.String())
}

// Text cleans a body: line breaks become "\n" and tabs stay; every other
// control and bidi character goes, invalid UTF-8 becomes U+FFFD.
func Text(s string) string {
	if isClean(s, true) {
		return s
	}
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\r\n", "\n")
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r == '\r' || r == 0x2028 || r == 0x2029:
			b.WriteByte('\n')
		case control(r) || bidiControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isClean is the fast path: most text needs nothing done.
func isClean(s string, multiline bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return false // checked rune by rune
		}
		if c < 0x20 || c == 0x7F {
			if !multiline || (c != '\n' && c != '\t') {
				return false
			}
		}
	}
	return true
}

// Cut shortens s to at most max bytes without splitting a character, and
// reports whether it did; "…" marks the cut and counts in the limit.
func Cut(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	const ellipsis = "…"
	end := max - len(ellipsis)
	if end < 0 {
		end = 0
	}
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return strings.TrimRightFunc(s[:end], func(r rune) bool { return r == ' ' }) + ellipsis, true
}

// Message cleans everything a channel hands over about a message, in place,
// and records on it (Notes) what had to be cut or dropped so staff know.
// It leaves the source id and the customer id alone: they are identities,
// and cleaning could make two different ones equal; channels refuse unfit
// ones instead.
func Message(m *router.Message) {
	note := func(format string, args ...any) {
		if n := fmt.Sprintf(format, args...); !slices.Contains(m.Notes, n) {
			m.Notes = append(m.Notes, n)
		}
	}
	m.Customer.Name = Line(m.Customer.Name)
	if n, cut := Cut(m.Customer.Name, MaxName); cut {
		m.Customer.Name = n
		note("the sender's name was cut to %d bytes", MaxName)
	}
	if e := strings.TrimSpace(m.Customer.Email); e != "" && !mailaddr.Valid(e) {
		note("the sender's address %q is not a usable e-mail address and was not kept", clip(Line(e), 80))
		m.Customer.Email = ""
	} else {
		m.Customer.Email = e
	}
	m.Subject = Line(m.Subject)
	if s, cut := Cut(m.Subject, MaxSubject); cut {
		m.Subject = s
		note("the subject was cut to %d bytes", MaxSubject)
	}
	m.Body = Text(m.Body)
	keys := m.ThreadKeys[:0:0]
	for _, k := range m.ThreadKeys {
		if k == "" || len(k) > MaxThreadKey || !Printable(k) {
			note("a conversation reference that is empty, longer than %d bytes or not printable was ignored", MaxThreadKey)
			continue
		}
		if len(keys) == MaxThreadKeys {
			note("only the first %d conversation references were kept", MaxThreadKeys)
			break
		}
		keys = append(keys, k)
	}
	m.ThreadKeys = keys
	if len(m.Metadata) > 0 {
		clean := make(map[string]string, len(m.Metadata))
		for k, v := range m.Metadata {
			k = Line(k)
			if k == "" || len(k) > MaxMetaKey {
				note("a metadata entry with an empty or overlong name was dropped")
				continue
			}
			clean[k] = Text(v)
		}
		m.Metadata = clean
	}
	m.NoAutoReply = Line(m.NoAutoReply)
	m.Unreachable = Line(m.Unreachable)
	if r := m.DeliveryReport; r != nil {
		r.Status = Text(r.Status)
	}
}

// Printable reports whether s is valid UTF-8 without control or bidi
// characters: fit to be an identifier (a source id, a customer id, a key).
func Printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return control(r) || bidiControl(r) }) < 0
}

func clip(s string, n int) string { c, _ := Cut(s, n); return c }
