package cli

import (
	"bytes"
	"testing"
)

// What must hold: a character split across writes is printed whole, and
// output that ends in the middle of a character shows its bytes as escapes
// instead of dropping them.
func TestTerminalSafeKeepsSplitAndCutCharacters(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"split across writes", []string{"prijs \xe2\x82", "\xac 10\n"}, "prijs € 10\n"},
		{"cut at the end", []string{"prijs \xe2\x82"}, `prijs \xe2\x82`},
		{"control after a cut", []string{"a\xe2", "\x1b[2J"}, `a\xe2\x1b[2J`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			ts := &terminalSafe{w: &b}
			for _, w := range tc.writes {
				if _, err := ts.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
			}
			if err := ts.Flush(); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("printed %q, want %q", b.String(), tc.want)
			}
		})
	}
}
