// Package mailaddr checks e-mail addresses the same way wherever they enter:
// webhooks, the chat widget and the owner roster.
package mailaddr

import (
	"net/mail"
	"strings"
	"unicode"
)

// Valid reports whether s is a bare e-mail address: parseable, and nothing
// but the address (no display name, no angle brackets, no surrounding space),
// so it can be used as is in an envelope and compared with what mail carries.
// It also keeps to the lengths SMTP allows (RFC 5321: 64 octets before the
// @, 254 in all), so an address can neither bloat a key nor fail at send.
func Valid(s string) bool {
	if len(s) > MaxLen {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at > maxLocalLen {
		return false
	}
	// Internationalised addresses carry letters of any script, never
	// controls or invisible formatting (a right-to-left override shows the
	// address as another one).
	for _, r := range s {
		if unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

// MaxLen is the longest address SMTP can carry.
const MaxLen = 254

const maxLocalLen = 64
