package report

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Links makes and checks signed, expiring links to the HTML report of one
// period, for the weekly digest: whoever holds the link may read that one
// report (and nothing else) until it expires, without an API token.
type Links struct {
	// BaseURL is the daemon's public address (https://support.example.com).
	BaseURL string
	// Secret signs the links (16 bytes or more); empty makes unsigned links,
	// for a report that needs no token.
	Secret []byte
	// ValidFor is how long a link works (default DefaultLinkValidity).
	ValidFor time.Duration
}

// DefaultLinkValidity is how long a digest's report link works.
const DefaultLinkValidity = 14 * 24 * time.Hour

// ReportPath is the route the links point to.
const ReportPath = "/v1/report"

// ErrBadLink is a link whose signature is missing, wrong or expired.
var ErrBadLink = errors.New("the report link is not valid or has expired")

func (l Links) sign(since, until string, expires int64) string {
	m := hmac.New(sha256.New, l.Secret)
	m.Write([]byte("forgetmenot-report\n" + since + "\n" + until + "\n" + strconv.FormatInt(expires, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// Link returns the address of the HTML report of [since, until), signed
// and valid from now when a secret is set.
func (l Links) Link(since, until, now time.Time) string {
	q := url.Values{"format": {"html"}, "since": {since.UTC().Format(time.RFC3339)}, "until": {until.UTC().Format(time.RFC3339)}}
	if len(l.Secret) > 0 {
		valid := l.ValidFor
		if valid <= 0 {
			valid = DefaultLinkValidity
		}
		exp := now.Add(valid).Unix()
		q.Set("expires", strconv.FormatInt(exp, 10))
		q.Set("sig", l.sign(q.Get("since"), q.Get("until"), exp))
	}
	return strings.TrimSuffix(l.BaseURL, "/") + ReportPath + "?" + q.Encode()
}

// Signed reports whether a request carries a link signature at all.
func Signed(q url.Values) bool { return q.Has("sig") || q.Has("expires") }

// Verify checks a signed link's query and returns its period.
func (l Links) Verify(q url.Values, now time.Time) (since, until time.Time, err error) {
	if len(l.Secret) == 0 {
		return time.Time{}, time.Time{}, ErrBadLink
	}
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return time.Time{}, time.Time{}, ErrBadLink
	}
	want := l.sign(q.Get("since"), q.Get("until"), exp)
	if !hmac.Equal([]byte(want), []byte(q.Get("sig"))) {
		return time.Time{}, time.Time{}, ErrBadLink
	}
	since, err1 := time.Parse(time.RFC3339, q.Get("since"))
	until, err2 := time.Parse(time.RFC3339, q.Get("until"))
	if err1 != nil || err2 != nil || !until.After(since) {
		return time.Time{}, time.Time{}, ErrBadLink
	}
	return since, until, nil
}
