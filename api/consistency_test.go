package api_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/internal/httpx"
	"github.com/forgetmenot/forgetmenot/router"
)

// Unknown routes and methods answer in the API's JSON error shape like
// every other refusal, with Allow on a 405; the routes themselves still work.
func TestUnknownRoutesAndMethodsAnswerJSON(t *testing.T) {
	h := handler(t, "tok-123")
	cases := []struct {
		method, path string
		want         int
		allow        string
	}{
		{"GET", "/v1/nothing-here", 404, ""},
		{"GET", "/", 404, ""},
		{"GET", "/v1/complaints/C-1/frobnicate", 404, ""},
		{"DELETE", "/v1/complaints", 405, "GET"},
		{"PUT", "/v1/complaints/C-1/close", 405, "POST"},
		{"POST", "/healthz", 405, "GET"},
	}
	for _, tc := range cases {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req.Header.Set("Authorization", "Bearer tok-123")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body httpx.ErrorBody
		if rec.Code != tc.want || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") ||
			json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error == "" {
			t.Errorf("%s %s: %d %q %s, want %d with a JSON error", tc.method, tc.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body, tc.want)
		}
		if tc.allow != "" && !strings.Contains(rec.Header().Get("Allow"), tc.allow) {
			t.Errorf("%s %s: Allow %q, want it to list %s", tc.method, tc.path, rec.Header().Get("Allow"), tc.allow)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 {
		t.Errorf("/healthz: %d", rec.Code)
	}
}

func TestComplaintIDsAreCaseInsensitive(t *testing.T) {
	for in, want := range map[string]string{"c-1001": "C-1001", "C-1001": "C-1001", " c-42 ": "C-42", "c-": "c-", "c-x1": "c-x1", "M-01ABC": "M-01ABC"} {
		if got := api.ComplaintID(in); got != want {
			t.Errorf("ComplaintID(%q) = %q, want %q", in, got, want)
		}
	}
	h := handler(t, "tok-123")
	req := httptest.NewRequest("GET", "/v1/complaints/c-424242", nil)
	req.Header.Set("Authorization", "Bearer tok-123")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "C-424242") {
		t.Errorf("GET c-424242: %d %s, want 404 naming C-424242", rec.Code, rec.Body)
	}
}

// Where nothing is settled yet the report says so: "–" in text, an empty
// value in CSV, null in JSON; never a 0 that reads like a result.
func TestReportShowsNothingSettledAsNotZero(t *testing.T) {
	empty := router.Report{Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC),
		Owners: []router.OwnerReport{{Owner: "anna"}}}
	var text bytes.Buffer
	api.WriteReportText(&text, empty)
	for _, want := range []string{"median –, 90th percentile – (0 answered)", "median –, 90th percentile – (0 closed)", "(– of settled kept)", "Reopened:       0 (–)", "average –"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), "0.0%") {
		t.Errorf("text report shows 0.0%% for nothing settled:\n%s", text.String())
	}
	var csv bytes.Buffer
	if err := api.WriteReportCSV(&csv, empty); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"first_response,median_seconds,\n", "resolution,p90_seconds,\n", "promises,kept_percent,\n", "reopen,percent,\n", "csat,average,\n", "promises,made,0\n"} {
		if !strings.Contains(csv.String(), want) {
			t.Errorf("CSV lacks %q:\n%s", want, csv.String())
		}
	}
	var js map[string]any
	if err := json.Unmarshal(api.ReportJSON(empty), &js); err != nil {
		t.Fatal(err)
	}
	fr := js["first_response"].(map[string]any)
	if fr["median_seconds"] != nil || js["reopen_percent"] != nil || js["promises"].(map[string]any)["kept_percent"] != nil || js["csat"].(map[string]any)["average"] != nil {
		t.Errorf("JSON must have null for unsettled figures: %v", js)
	}
	if fr["count"] != float64(0) {
		t.Errorf("counts stay numbers: %v", fr)
	}
	// Each week's and each owner's figures alike.
	weekly := empty
	weekly.Weeks = []router.WeekReport{{Week: "2026-W45"}, {Week: "2026-W46", Complaints: 3,
		FirstResponse: router.Durations{Count: 1, MedianSeconds: 60, P90Seconds: 60}, Promises: router.PromiseStats{Made: 1, Kept: 1, KeptPercent: 100}}}
	weekly.Owners = []router.OwnerReport{{Owner: "anna"}, {Owner: "bas", Promises: router.PromiseStats{Made: 1, Broken: 1}}}
	if err := json.Unmarshal(api.ReportJSON(weekly), &js); err != nil {
		t.Fatal(err)
	}
	weeks, owners := js["weeks"].([]any), js["owners"].([]any)
	quiet, busy := weeks[0].(map[string]any), weeks[1].(map[string]any)
	if quiet["first_response"].(map[string]any)["median_seconds"] != nil || quiet["resolution"].(map[string]any)["p90_seconds"] != nil ||
		quiet["promises"].(map[string]any)["kept_percent"] != nil || quiet["reopen_percent"] != nil {
		t.Errorf("a week with nothing settled must have null figures: %v", quiet)
	}
	if busy["first_response"].(map[string]any)["median_seconds"] != float64(60) || busy["promises"].(map[string]any)["kept_percent"] != float64(100) ||
		busy["reopen_percent"] != float64(0) || busy["resolution"].(map[string]any)["median_seconds"] != nil {
		t.Errorf("a week's settled figures stay numbers (unsettled ones null): %v", busy)
	}
	if owners[0].(map[string]any)["promises"].(map[string]any)["kept_percent"] != nil ||
		owners[1].(map[string]any)["promises"].(map[string]any)["kept_percent"] != float64(0) {
		t.Errorf("owners' kept rate: null with nothing settled, 0 when all were broken: %v", owners)
	}

	settled := empty
	settled.Complaints = 4
	settled.FirstResponse = router.Durations{Count: 2, MedianSeconds: 600, P90Seconds: 900}
	settled.Promises = router.PromiseStats{Made: 2, Kept: 1, Broken: 1, KeptPercent: 50}
	text.Reset()
	api.WriteReportText(&text, settled)
	for _, want := range []string{"median 10m0s", "(50.0% of settled kept)", "Reopened:       0 (0.0%)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("settled text report lacks %q:\n%s", want, text.String())
		}
	}
	_ = json.Unmarshal(api.ReportJSON(settled), &js)
	if js["reopen_percent"] != float64(0) || js["first_response"].(map[string]any)["median_seconds"] != float64(600) {
		t.Errorf("settled figures stay numbers, also 0: %v", js)
	}
}
