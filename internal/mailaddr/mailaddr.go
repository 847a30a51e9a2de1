// Package mailaddr checks e-mail addresses the same way wherever they enter:
// webhooks, the chat widget and the owner roster.
package mailaddr

import "net/mail"

// Valid reports whether s is a bare e-mail address: parseable, and nothing
// but the address (no display name, no angle brackets, no surrounding space),
// so it can be used as is in an envelope and compared with what mail carries.
func Valid(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s
}
