package slack

import (
	"strings"
	"unicode"

	"github.com/forgetmenot/forgetmenot/channels/slack/blockkit"
)

// Texts are made to fit Slack's limits here, and only here: escaped first,
// then cut by characters (runes, never inside an escape or markup), with the
// "…" that marks a cut counted in the limit. Slack counts characters after
// escaping (& → &amp;), so 700 "&" are 3,500 characters, not 700.

const ellipsis = "…"

// escape makes text safe inside mrkdwn: Slack treats &, < and > as markup.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// escapedRune is what one rune of text becomes in mrkdwn.
func escapedRune(r rune) string {
	switch r {
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	}
	return string(r)
}

func escapedCost(r rune) int {
	switch r {
	case '&':
		return 5
	case '<', '>':
		return 4
	}
	return blockkit.RuneLen(r)
}

// keep returns how many runes of rs fit in n characters when each costs
// cost(r), leaving room for the ellipsis when not all fit, and whether it
// cut. It prefers to cut at a space in the last half of what fits.
func keep(rs []rune, n int, cost func(rune) int) (int, bool) {
	total := 0
	for _, r := range rs {
		total += cost(r)
	}
	if total <= n {
		return len(rs), false
	}
	budget, k := n-1, 0 // one character for the ellipsis
	for k < len(rs) {
		c := cost(rs[k])
		if c > budget {
			break
		}
		budget -= c
		k++
	}
	for i := k - 1; i > k/2; i-- {
		if unicode.IsSpace(rs[i]) {
			return i, true
		}
	}
	return k, true
}

// clipPlain shortens text for a plain_text object of at most n characters
// (Slack counts & < > escaped there too). The text itself stays unescaped.
func clipPlain(s string, n int) string {
	s = strings.TrimSpace(s)
	rs := []rune(s)
	k, cut := keep(rs, n, escapedCost)
	if !cut {
		return s
	}
	return strings.TrimRightFunc(string(rs[:k]), unicode.IsSpace) + ellipsis
}

// clip escapes text for mrkdwn and shortens it to at most n characters.
func clip(s string, n int) (string, bool) {
	s = strings.TrimSpace(s)
	rs := []rune(s)
	k, cut := keep(rs, n, escapedCost)
	out := escape(strings.TrimRightFunc(string(rs[:k]), unicode.IsSpace))
	if cut {
		out += ellipsis
	}
	return out, cut
}

// clipRaw shortens text that is not escaped (a notification's fallback
// text, an e-mail subject) to n runes.
func clipRaw(s string, n int) string {
	rs := []rune(strings.TrimSpace(s))
	k, cut := keep(rs, n, blockkit.RuneLen)
	if !cut {
		return string(rs)
	}
	return strings.TrimRightFunc(string(rs[:k]), unicode.IsSpace) + ellipsis
}

// quote renders customer or staff text as a mrkdwn block quote of at most n
// characters, escapes and "> " line marks included.
func quote(s string, n int) (string, bool) {
	s = strings.TrimSpace(s)
	rs := []rune(s)
	cost := func(r rune) int {
		if r == '\n' {
			return 3 // "\n> "
		}
		return escapedCost(r)
	}
	k, cut := keep(rs, n-2, cost) // "> " starts the quote
	var b strings.Builder
	b.WriteString("> ")
	for _, r := range strings.TrimRightFunc(string(rs[:k]), unicode.IsSpace) {
		if r == '\n' {
			b.WriteString("\n> ")
			continue
		}
		b.WriteString(escapedRune(r))
	}
	if cut {
		b.WriteString(ellipsis)
	}
	return b.String(), cut
}

// appendQuote adds staff's text, quoted and trimmed for a thread, when there
// is any.
func appendQuote(lines []string, text string) []string {
	if text == "" {
		return lines
	}
	q, _ := quote(text, threadExcerpt)
	return append(lines, q)
}

// fit makes mrkdwn that is already escaped (lines built from clipped parts)
// at most n characters: it cuts at the last line break that fits, else at a
// character outside any escape (&amp;) or markup (<!date…>), and marks the
// cut.
func fit(s string, n int) string {
	if blockkit.Len(s) <= n {
		return s
	}
	k, _ := keep([]rune(s), n, blockkit.RuneLen)
	cut := string([]rune(s)[:k])
	if i := strings.LastIndex(cut, "\n"); i > len(cut)/2 && i > 0 {
		return cut[:i] + "\n" + ellipsis
	}
	if amp := strings.LastIndex(cut, "&"); amp >= 0 && !strings.Contains(cut[amp:], ";") {
		cut = cut[:amp]
	}
	if lt := strings.LastIndex(cut, "<"); lt >= 0 && !strings.Contains(cut[lt:], ">") {
		cut = cut[:lt]
	}
	return cut + ellipsis
}

// esc is clip without the report: escaped text of at most n characters.
func esc(s string, n int) string {
	out, _ := clip(s, n)
	return out
}
