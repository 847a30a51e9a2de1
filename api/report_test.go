package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/internal/report"
	"github.com/forgetmenot/forgetmenot/router"
)

// reportOnly is the router's side of the report; the rest is not used here.
type reportOnly struct {
	api.Accountability
	asked [][2]time.Time
}

func (r *reportOnly) Report(_ context.Context, since, until time.Time) (router.Report, error) {
	r.asked = append(r.asked, [2]time.Time{since, until})
	return router.BuildReport(router.ReportInput{Since: since, Until: until, Now: until, Complaints: []router.Complaint{{
		ID: "C-1", Channel: router.ChannelEmail, Owner: "anna", Status: router.StatusClosed, CreatedAt: since.Add(time.Hour),
		ClosedAt: since.Add(3 * time.Hour), Category: "<b>bold</b>", Prevention: `=HYPERLINK("http://x")`}}}), nil
}

// What must hold: the HTML report needs the API token like every format,
// except through a digest's signed link, which opens exactly its period
// until it expires; a tampered or expired link is refused with 403.
func TestHTMLReportNeedsTheTokenOrASignedLink(t *testing.T) {
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	svc := &reportOnly{}
	links := report.Links{BaseURL: "https://support.example", Secret: []byte("report-link-secret-0123")}
	mux := http.NewServeMux()
	for p, h := range api.AccountabilityRoutes(api.Access{Token: "tok-123"}, svc, func() time.Time { return now }, nil, links) {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path, token string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	for _, path := range []string{"/v1/report?format=html", "/v1/reports?format=html"} {
		if code, _, _ := get(path, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d", path, code)
		}
		code, h, body := get(path, "tok-123")
		if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") ||
			!strings.Contains(body, "&lt;b&gt;bold&lt;/b&gt;") || strings.Contains(body, "<b>bold") {
			t.Errorf("%s with the token: %d %v", path, code, h)
		}
	}
	if code, _, body := get("/v1/reports?format=pdf", "tok-123"); code != 400 || !strings.Contains(body, "html") {
		t.Errorf("unknown format: %d %s", code, body)
	}
	if _, _, body := get("/v1/reports?format=csv", "tok-123"); !strings.Contains(body, `'=HYPERLINK`) {
		t.Errorf("a note that looks like a formula must be defused in CSV: %s", body)
	}

	since, until := now.AddDate(0, 0, -7), now
	link, _ := url.Parse(links.Link(since, until, now))
	code, h, body := get(link.RequestURI(), "")
	if code != 200 || !strings.Contains(body, "<svg") || h.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("signed link: %d %s", code, body[:min(len(body), 200)])
	}
	if last := svc.asked[len(svc.asked)-1]; !last[0].Equal(since) || !last[1].Equal(until) {
		t.Errorf("the signed link reported %v, want its own period", last)
	}
	q := link.Query()
	q.Set("since", since.AddDate(-1, 0, 0).Format(time.RFC3339))
	if code, _, _ := get("/v1/report?"+q.Encode(), ""); code != http.StatusForbidden {
		t.Errorf("a link with a widened period: %d, want 403", code)
	}
	expired, _ := url.Parse(links.Link(since, until, now.Add(-15*24*time.Hour)))
	if code, _, body := get(expired.RequestURI(), ""); code != http.StatusForbidden || !strings.Contains(body, "expired") {
		t.Errorf("an expired link: %d %s", code, body)
	}
}

// What must hold: a report asked for without a period ends now, written as
// every other time of the answer is (UTC, to the millisecond), so until
// and generated_at of one answer do not print one moment two ways.
func TestReportsDefaultPeriodEndsNowToTheMillisecond(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	svc := &reportOnly{}
	mux := http.NewServeMux()
	for p, h := range api.AccountabilityRoutes(api.Access{Token: "tok-123"}, svc, func() time.Time { return now }, nil, report.Links{}) {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/reports", nil)
	req.Header.Set("Authorization", "Bearer tok-123")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || len(svc.asked) != 1 {
		t.Fatalf("GET /v1/reports: %d %s", res.StatusCode, body)
	}
	want := time.Date(2026, 11, 30, 9, 0, 0, 123000000, time.UTC)
	if since, until := svc.asked[0][0], svc.asked[0][1]; !until.Equal(want) || until.Location() != time.UTC || !since.Equal(want.AddDate(0, 0, -28)) {
		t.Errorf("default period asked: %v – %v, want 28 days up to %v in UTC", since, until, want)
	}
	if !strings.Contains(string(body), `"until":"2026-11-30T09:00:00.123Z"`) {
		t.Errorf("the answer does not give until as 2026-11-30T09:00:00.123Z: %s", body)
	}
}

// zonedReport counts weeks in Amsterdam, as a router with an Amsterdam
// calendar does.
type zonedReport struct{ reportOnly }

func (z *zonedReport) ReportLocation() *time.Location {
	loc, _ := time.LoadLocation("Europe/Amsterdam")
	return loc
}

// What must hold: a report period given as dates means midnight where the
// report counts its weeks. In Amsterdam 2026-11-30 starts at 23:00 UTC the
// day before; read as UTC midnight, the first hour of the week fell out and
// a stray hour of the next week came in.
func TestReportDatesAreMidnightInTheCalendarsZone(t *testing.T) {
	svc := &zonedReport{}
	mux := http.NewServeMux()
	for p, h := range api.AccountabilityRoutes(api.Access{Token: "tok-123"}, svc, time.Now, nil, report.Links{}) {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/reports?since=2026-11-30&until=2026-12-07", nil)
	req.Header.Set("Authorization", "Bearer tok-123")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || len(svc.asked) != 1 {
		t.Fatalf("GET: %d", res.StatusCode)
	}
	wantSince := time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	if since, until := svc.asked[0][0], svc.asked[0][1]; !since.Equal(wantSince) || !until.Equal(wantSince.AddDate(0, 0, 7)) {
		t.Errorf("period asked %v – %v, want from %v for 7 days", since.UTC(), until.UTC(), wantSince)
	}
}

// What must hold: the satisfaction page a link opens speaks the language
// the question was sent in (the link names it), English otherwise.
func TestSatisfactionPageSpeaksTheCustomersLanguage(t *testing.T) {
	mux := http.NewServeMux()
	for p, h := range api.AccountabilityRoutes(api.Access{Token: "tok-123"}, &reportOnly{}, time.Now, nil, report.Links{}) {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for lang, want := range map[string]string{"nl": "Uw antwoord: Tevreden", "en": "Your answer: Satisfied", "xx": "Your answer: Satisfied"} {
		res, err := http.Get(srv.URL + "/v1/csat/C-1/4?sig=abc&lang=" + lang)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("lang=%s: %d %s, want %q", lang, res.StatusCode, b, want)
		}
	}
}

// What must hold: a period that is not whole days shows its times in the
// text report's header, not two equal dates.
func TestTextReportShowsTheTimesOfAPeriodWithinADay(t *testing.T) {
	since := time.Date(2026, 12, 2, 16, 37, 0, 0, time.UTC)
	var b strings.Builder
	api.WriteReportText(&b, router.Report{Since: since, Until: since.Add(time.Hour)})
	if !strings.Contains(b.String(), "2026-12-02 16:37:00 UTC to 2026-12-02 17:37:00 UTC") {
		t.Errorf("header: %s", strings.SplitN(b.String(), "\n", 2)[0])
	}
	b.Reset()
	api.WriteReportText(&b, router.Report{Since: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)})
	if !strings.HasPrefix(b.String(), "Complaints opened 2026-11-30 to 2026-12-07:") {
		t.Errorf("header of whole days: %s", strings.SplitN(b.String(), "\n", 2)[0])
	}
}
