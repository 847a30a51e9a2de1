package cleantext_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/forgetmenot/forgetmenot/internal/cleantext"
	"github.com/forgetmenot/forgetmenot/router"
)

func TestLineAndText(t *testing.T) {
	tests := []struct {
		name, in, line, text string
	}{
		{"plain", "Pakket niet ontvangen", "Pakket niet ontvangen", "Pakket niet ontvangen"},
		{"forged line", "Jan\n  2026-11-23 10:58:01  closed by anna", "Jan   2026-11-23 10:58:01  closed by anna", "Jan\n  2026-11-23 10:58:01  closed by anna"},
		{"ANSI escape", "Jan\x1b[2J\x1b[31mRED", "Jan[2J[31mRED", "Jan[2J[31mRED"},
		{"C1 CSI", "Jan\u009b31m", "Jan31m", "Jan31m"},
		{"NUL and DEL", "Ja\x00n\x7f", "Jan", "Jan"},
		{"bidi override", "invoice\u202Ecod.exe", "invoicecod.exe", "invoicecod.exe"},
		{"bidi isolate", "a\u2066b\u2069c", "abc", "abc"},
		{"implicit marks stay", "שלום\u200Fabc", "שלום\u200Fabc", "שלום\u200Fabc"},
		{"CRLF and separators", "a\r\nb\u2028c", "a  b c", "a\nb\nc"},
		{"tabs", "a\tb", "a b", "a\tb"},
		{"invalid UTF-8", "caf\xe9", "caf\uFFFD", "caf\uFFFD"},
		{"emoji and CJK", "荷物が届きません 📦", "荷物が届きません 📦", "荷物が届きません 📦"},
	}
	for _, tc := range tests {
		if got := cleantext.Line(tc.in); got != tc.line {
			t.Errorf("%s: Line(%q) = %q, want %q", tc.name, tc.in, got, tc.line)
		}
		if got := cleantext.Text(tc.in); got != tc.text {
			t.Errorf("%s: Text(%q) = %q, want %q", tc.name, tc.in, got, tc.text)
		}
	}
}

func TestCutNeverSplitsACharacter(t *testing.T) {
	for _, s := range []string{strings.Repeat("é", 300), strings.Repeat("荷", 300), strings.Repeat("📦", 300), strings.Repeat("a", 300)} {
		for _, max := range []int{0, 1, 3, 4, 5, 199, 200} {
			got, cut := cleantext.Cut(s, max)
			if !cut || len(got) > max && max >= 3 || !utf8.ValidString(got) {
				t.Errorf("Cut(%q…, %d) = %q (%d bytes, cut %v)", s[:6], max, got, len(got), cut)
			}
		}
	}
	if got, cut := cleantext.Cut("short", 10); got != "short" || cut {
		t.Errorf("Cut of a short string = %q, %v", got, cut)
	}
}

// TestMessage: what reaches the queue is clean, and staff learn what was
// changed; identities are never rewritten.
func TestMessage(t *testing.T) {
	m := router.Message{
		SourceID:   "src\x00-1",
		Customer:   router.Customer{ID: "id\u202E1", Name: strings.Repeat("Jan\x1b[31m", 100), Email: strings.Repeat("a", 900) + "@evil.example"},
		Subject:    "Re: [#C-1001]\r\nBcc: x",
		Body:       "line 1\r\nline 2\x00",
		ThreadKeys: []string{"webhook:ok", "email:<bad\x00id>", strings.Repeat("k", 2000)},
		Metadata:   map[string]string{"order\n": "1\x1b", strings.Repeat("k", 100): "x"},
	}
	cleantext.Message(&m)
	if m.SourceID != "src\x00-1" || m.Customer.ID != "id\u202E1" {
		t.Errorf("identities were rewritten: %q %q", m.SourceID, m.Customer.ID)
	}
	if len(m.Customer.Name) > cleantext.MaxName || strings.ContainsRune(m.Customer.Name, 0x1b) {
		t.Errorf("name %q", m.Customer.Name)
	}
	if m.Customer.Email != "" {
		t.Errorf("a 900-byte address was kept: %d bytes", len(m.Customer.Email))
	}
	if m.Subject != "Re: [#C-1001]  Bcc: x" || m.Body != "line 1\nline 2" {
		t.Errorf("subject %q body %q", m.Subject, m.Body)
	}
	if len(m.ThreadKeys) != 1 || m.ThreadKeys[0] != "webhook:ok" {
		t.Errorf("thread keys %q", m.ThreadKeys)
	}
	if len(m.Metadata) != 1 || m.Metadata["order"] != "1" {
		t.Errorf("metadata %q", m.Metadata)
	}
	joined := strings.Join(m.Notes, "\n")
	for _, want := range []string{"name was cut", "not a usable e-mail address", "conversation reference", "metadata entry"} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes %q do not say %q", m.Notes, want)
		}
	}
}
