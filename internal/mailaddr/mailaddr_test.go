package mailaddr_test

import (
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/internal/mailaddr"
)

// TestValid: only a bare address is valid; anything a mail header would need
// to interpret (a name, brackets, line breaks) is refused.
func TestValid(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"jan@voorbeeld.nl", true},
		{"jan.de.boer+shop@sub.voorbeeld.nl", true},
		{"", false},
		{"jan", false},
		{"jan@", false},
		{"Jan <jan@voorbeeld.nl>", false},
		{"<jan@voorbeeld.nl>", false},
		{" jan@voorbeeld.nl", false},
		{"jan@voorbeeld.nl\r\nBcc: x@y.z", false},
		{"jan@voorbeeld.nl, piet@voorbeeld.nl", false},
		{strings.Repeat("a", 64) + "@voorbeeld.nl", true},
		{strings.Repeat("a", 65) + "@voorbeeld.nl", false},
		{"jan@" + strings.Repeat("a", 240) + ".nl", true},
		{"jan@" + strings.Repeat("a", 248) + ".nl", false},
		{"jan@" + strings.Repeat("sub.", 225000) + "nl", false},
		// Any script, but no invisible formatting: U+202E would show the
		// address as another one.
		{"jörg@bücher.example", true},
		{"用户@例子.广告", true},
		{"eve\u202e@x.example", false},
		{"eve@x\u200f.example", false},
		{"eve\u2066@x.example", false},
		{"eve@x.example\ufeff", false},
	} {
		if got := mailaddr.Valid(tc.in); got != tc.want {
			t.Errorf("Valid(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
