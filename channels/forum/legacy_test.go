package forum

import "testing"

// What must hold: only a username that cannot be read as a user id is
// taken for a customer key from before forum customers were keyed by user
// id; a username of digits only may be another user's id and is left.
func TestLegacyUsername(t *testing.T) {
	for u, want := range map[string]bool{
		"marloes": true, "j.jansen": true, "user_42": true, "233x": true,
		"": false, "233": false, "0042": false,
	} {
		if got := legacyUsername(u); got != want {
			t.Errorf("legacyUsername(%q) = %v, want %v", u, got, want)
		}
	}
}
