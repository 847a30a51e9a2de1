package email

import (
	"regexp"
	"strings"

	gomail "github.com/emersion/go-message/mail"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlToText renders HTML mail as readable plain text: paragraphs and line
// breaks kept, lists bulleted, links with their target, quoted blocks
// prefixed with "> ", scripts, styles and the head dropped.
func htmlToText(src string) string {
	z := html.NewTokenizer(strings.NewReader(src))
	var b strings.Builder
	quote := 0
	skip := 0
	atLineStart := true
	pendingBreak := 0
	var href string
	var linkText strings.Builder
	inLink := false

	breakLines := func(n int) {
		if n > pendingBreak {
			pendingBreak = n
		}
	}
	write := func(s string) {
		if s == "" {
			return
		}
		if b.Len() > 0 && pendingBreak > 0 {
			for range pendingBreak {
				b.WriteString("\n")
			}
			atLineStart = true
		}
		pendingBreak = 0
		if atLineStart {
			if quote > 0 {
				b.WriteString(strings.Repeat("> ", quote))
			}
			s = strings.TrimLeft(s, " ")
			atLineStart = false
		}
		b.WriteString(s)
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip > 0 {
				continue
			}
			t := collapseSpace(html.UnescapeString(string(z.Text())))
			if inLink {
				linkText.WriteString(t)
				continue
			}
			if strings.TrimSpace(t) == "" && atLineStart {
				continue
			}
			write(t)
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			end := tt == html.EndTagToken
			attrs := map[string]string{}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				attrs[string(k)] = string(v)
			}
			switch a {
			case atom.Script, atom.Style, atom.Head, atom.Title:
				if tt == html.StartTagToken {
					skip++
				} else if end && skip > 0 {
					skip--
				}
			case atom.Br:
				breakLines(1)
				if pendingBreak == 1 && b.Len() > 0 {
					// consecutive <br> make blank lines
					b.WriteString("\n")
					atLineStart = true
					pendingBreak = 0
				}
			case atom.P, atom.Div, atom.Table, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Ul, atom.Ol, atom.Pre, atom.Hr:
				switch a {
				case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
					breakLines(2)
				default:
					breakLines(1)
				}
			case atom.Tr, atom.Li:
				breakLines(1)
				if a == atom.Li && !end {
					write("- ")
				}
			case atom.Td, atom.Th:
				if !end {
					write(" ")
				}
			case atom.Blockquote:
				breakLines(1)
				if end {
					if quote > 0 {
						quote--
					}
				} else {
					quote++
				}
			case atom.A:
				if !end {
					href, inLink = attrs["href"], true
					linkText.Reset()
				} else if inLink {
					inLink = false
					t := strings.TrimSpace(linkText.String())
					switch {
					case t == "":
						write(href)
					case href == "" || strings.HasPrefix(href, "#") || strings.Contains(href, t) || strings.HasPrefix(href, "mailto:"):
						write(t)
					default:
						write(t + " (" + href + ")")
					}
				}
			case atom.Img:
				if alt := strings.TrimSpace(attrs["alt"]); alt != "" && skip == 0 {
					write("[" + alt + "]")
				}
			}
		}
	}
}

var spaceRun = regexp.MustCompile(`[ \t\r\n\f\x{00a0}]+`)

func collapseSpace(s string) string { return spaceRun.ReplaceAllString(s, " ") }

// Quote detection: the first line that starts the quoted history of a reply.
var (
	attribution = []*regexp.Regexp{
		regexp.MustCompile(`(?i)^on .{4,200}\bwrote:?$`),
		regexp.MustCompile(`(?i)^op .{4,200}\bschreef .{0,200}:$`),
		regexp.MustCompile(`(?i)^op .{4,200}\bheeft .{0,200}geschreven:?$`),
		regexp.MustCompile(`(?i)^am .{4,200}\bschrieb .{0,200}:$`),
		regexp.MustCompile(`(?i)^le .{4,200}\ba écrit ?:$`),
		regexp.MustCompile(`(?i)^-{2,} ?(original message|oorspronkelijk bericht|origineel bericht|ursprüngliche nachricht|message d'origine) ?-{2,}$`),
	}
	forwardMarker = regexp.MustCompile(`(?i)^(-{2,} ?(forwarded message|doorgestuurd bericht|doorgestuurd|weitergeleitete nachricht|message transféré) ?-{2,}|begin forwarded message:|begin doorgestuurd bericht:)$`)
	outlookFrom   = regexp.MustCompile(`(?i)^\*?(from|van|von|de):\*? .+`)
	outlookSent   = regexp.MustCompile(`(?i)^\*?(sent|date|verzonden|datum|gesendet|envoyé):\*? .+`)
	underscores   = regexp.MustCompile(`^_{8,}$`)
)

// splitQuoted separates the customer's new text from the quoted history of
// the conversation below it. A forwarded mail is all content: nothing is cut.
func splitQuoted(text string) (fresh, quoted string) {
	lines := strings.Split(text, "\n")
	cut := -1
	for i := 0; i < len(lines) && cut < 0; i++ {
		l := strings.TrimSpace(lines[i])
		if forwardMarker.MatchString(l) {
			return text, ""
		}
		if l == "" {
			continue
		}
		for _, re := range attribution {
			if re.MatchString(l) {
				cut = i
				break
			}
			// An attribution wrapped over two lines.
			if i+1 < len(lines) && re.MatchString(l+" "+strings.TrimSpace(lines[i+1])) {
				cut = i
				break
			}
		}
		if cut >= 0 {
			break
		}
		if outlookFrom.MatchString(l) {
			for j := i + 1; j < len(lines) && j <= i+4; j++ {
				if outlookSent.MatchString(strings.TrimSpace(lines[j])) {
					cut = i
					if i > 0 && underscores.MatchString(strings.TrimSpace(lines[i-1])) {
						cut = i - 1
					}
					break
				}
			}
			if cut >= 0 {
				break
			}
		}
		if strings.HasPrefix(l, ">") && restIsQuote(lines[i:]) {
			cut = i
		}
	}
	if cut < 0 {
		return text, ""
	}
	fresh = strings.TrimSpace(strings.Join(lines[:cut], "\n"))
	quoted = strings.TrimSpace(strings.Join(lines[cut:], "\n"))
	if fresh == "" {
		// Nothing new above the quote (a bare forward or a top-quote): keep
		// everything as the text.
		return text, ""
	}
	return fresh, quoted
}

// restIsQuote reports whether the lines are all quoted or blank (a quote at
// the bottom, not interleaved answers).
func restIsQuote(lines []string) bool {
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, ">") {
			return false
		}
	}
	return true
}

// autoReplyReason says why this mail must get no automatic reply (RFC 3834
// and what mailers do in practice), or "" when an acknowledgement is fine.
func autoReplyReason(h gomail.Header, from string, opts ParseOptions) string {
	if v := strings.ToLower(strings.TrimSpace(strings.Split(h.Get("Auto-Submitted"), ";")[0])); v != "" && v != "no" {
		return "the mail is automatic (Auto-Submitted: " + v + ")"
	}
	if v := strings.ToLower(strings.TrimSpace(h.Get("Precedence"))); v == "bulk" || v == "list" || v == "junk" {
		return "the mail is bulk mail (Precedence: " + v + ")"
	}
	if h.Has("X-Auto-Response-Suppress") {
		return "the sender asked for no automatic replies (X-Auto-Response-Suppress: " + cleanLine(h.Get("X-Auto-Response-Suppress")) + ")"
	}
	if h.Has("List-Id") {
		return "the mail came through a mailing list (List-Id: " + clipRunes(cleanLine(h.Get("List-Id")), 80) + ")"
	}
	if h.Has("Return-Path") {
		if rp := strings.TrimSpace(h.Get("Return-Path")); rp == "<>" || rp == "" {
			return "the mail has an empty return path (a bounce or notification)"
		}
	}
	if t, params, err := h.ContentType(); err == nil && strings.EqualFold(t, "multipart/report") {
		return "the mail is a delivery or read report (" + params["report-type"] + ")"
	}
	if h.Has("X-Autoreply") || h.Has("X-Autorespond") {
		return "the mail is an automatic reply (X-Autoreply)"
	}
	if from != "" && opts.own(from) {
		return "the mail comes from our own address " + from
	}
	return ""
}
