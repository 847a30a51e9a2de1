package report_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/report"
)

// What must hold: a signed link opens exactly its own period until it
// expires; any change to the period, the expiry or the signature, or a
// different secret, is refused.
func TestSignedReportLinks(t *testing.T) {
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	since, until := now.AddDate(0, 0, -7), now
	l := report.Links{BaseURL: "https://support.example/", Secret: []byte("report-link-secret-0123"), ValidFor: 48 * time.Hour}
	link := l.Link(since, until, now)
	if !strings.HasPrefix(link, "https://support.example/v1/report?") {
		t.Fatalf("link %s", link)
	}
	u, _ := url.Parse(link)
	q := u.Query()
	s, e, err := l.Verify(q, now.Add(47*time.Hour))
	if err != nil || !s.Equal(since) || !e.Equal(until) || q.Get("format") != "html" {
		t.Fatalf("verify: %v %v %v", s, e, err)
	}
	if _, _, err := l.Verify(q, now.Add(48*time.Hour)); err == nil {
		t.Error("an expired link was accepted")
	}
	for name, change := range map[string]func(url.Values){
		"since":   func(v url.Values) { v.Set("since", since.AddDate(0, 0, -7).Format(time.RFC3339)) },
		"until":   func(v url.Values) { v.Set("until", until.AddDate(0, 1, 0).Format(time.RFC3339)) },
		"expires": func(v url.Values) { v.Set("expires", "99999999999") },
		"sig":     func(v url.Values) { v.Set("sig", strings.Repeat("0", 64)) },
		"no sig":  func(v url.Values) { v.Del("sig") },
	} {
		v, _ := url.ParseQuery(q.Encode())
		change(v)
		if _, _, err := l.Verify(v, now); err == nil {
			t.Errorf("a link with a changed %s was accepted", name)
		}
	}
	other := report.Links{Secret: []byte("another-secret-0123456")}
	if _, _, err := other.Verify(q, now); err == nil {
		t.Error("a link signed with another secret was accepted")
	}
	if _, _, err := (report.Links{}).Verify(q, now); err == nil {
		t.Error("without a secret no link may be accepted")
	}
}
