package cli

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// terminalSafe writes text meant for a terminal. What customers (or anyone
// else) wrote reaches the CLI's output, and a terminal obeys some of what it
// is sent: control characters other than newline and tab (escape sequences
// that move the cursor, recolour, retitle the window or clear the screen, a
// carriage return that overwrites the line) and the invisible characters
// that reorder or hide text (bidi overrides and isolates, line and paragraph
// separators, the byte order mark). Those are written as visible escapes
// (\x1b, \u202e); everything else, every script and emoji included, as is.
type terminalSafe struct {
	w       io.Writer
	pending []byte // the start of a character a write cut off
}

func (t *terminalSafe) Write(p []byte) (int, error) {
	n := len(p)
	if len(t.pending) > 0 {
		p = append(t.pending, p...)
		t.pending = nil
	}
	var b strings.Builder
	for i := 0; i < len(p); {
		if !utf8.FullRune(p[i:]) {
			t.pending = append([]byte(nil), p[i:]...)
			break
		}
		r, size := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, p[i])
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case hidden(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.Write(p[i : i+size])
		}
		i += size
	}
	if _, err := io.WriteString(t.w, b.String()); err != nil {
		return 0, err
	}
	return n, nil
}

// Flush writes what is left of a character the output ended in the middle
// of, escaped like any other byte that is no character.
func (t *terminalSafe) Flush() error {
	if len(t.pending) == 0 {
		return nil
	}
	var b strings.Builder
	for _, c := range t.pending {
		fmt.Fprintf(&b, `\x%02x`, c)
	}
	t.pending = nil
	_, err := io.WriteString(t.w, b.String())
	return err
}

// hidden reports whether r is a C1 control or an invisible character that
// changes how a line reads.
func hidden(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1 controls (CSI is 0x9b)
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, // bidi marks
		r >= 0x202a && r <= 0x202e, // bidi embeddings and overrides
		r >= 0x2066 && r <= 0x2069, // bidi isolates
		r == 0x2028, r == 0x2029,   // line and paragraph separators
		r == 0xfeff: // byte order mark
		return true
	}
	return false
}
