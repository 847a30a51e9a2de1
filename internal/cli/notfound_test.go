package cli_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/internal/httpx"
)

// An unknown complaint is named once, in the operator's words, by the CLI
// (stderr, exit 1) and by the API it reads it from (404 with a JSON body):
// wrapping layers that each repeat the id made "loading complaint C-9999:
// complaint C-9999: not found".
func TestUnknownComplaintIsNamedOnce(t *testing.T) {
	base := startDaemon(t)
	known := ingest(t, base, `{"source_id":"cli-nf-1","customer":{"email":"jan@voorbeeld.nl"},"subject":"Kapotte kan","body":"De kan was kapot."}`)
	const unknown = "C-9999"
	want := "complaint " + unknown + ": not found"
	cases := []struct {
		name string
		args []string
		// method, path and body of the API call the command makes.
		method, path, body string
	}{
		{"show", []string{"complaints", "show", unknown}, "GET", "/v1/complaints/" + unknown, ""},
		{"close", []string{"complaints", "close", unknown, "--resolution", "done", "--category", "delivery"},
			"POST", "/v1/complaints/" + unknown + "/close", `{"resolution":"done","category":"delivery"}`},
		{"ack", []string{"complaints", "ack", unknown}, "POST", "/v1/complaints/" + unknown + "/acknowledge", `{}`},
		{"reassign", []string{"complaints", "reassign", unknown, "--to", "bas", "--reason", "speaks Dutch"},
			"POST", "/v1/complaints/" + unknown + "/reassign", `{"owner":"bas","reason":"speaks Dutch"}`},
		{"note", []string{"complaints", "note", unknown, "--text", "called"},
			"POST", "/v1/complaints/" + unknown + "/notes", `{"text":"called"}`},
		{"reply", []string{"complaints", "reply", unknown, "--body", "Sorry!"},
			"POST", "/v1/complaints/" + unknown + "/reply", `{"body":"Sorry!"}`},
		{"promise", []string{"complaints", "promise", unknown, "--in", "48h", "--note", "I will call"},
			"POST", "/v1/complaints/" + unknown + "/promise", `{"by":"2099-01-01T10:00:00Z","note":"I will call"}`},
		{"lower-case id", []string{"complaints", "show", "c-9999"}, "GET", "/v1/complaints/c-9999", ""},
		{"merge from unknown", []string{"complaints", "merge", unknown, "--into", known, "--reason", "same customer"},
			"POST", "/v1/complaints/" + unknown + "/merge", `{"into":"` + known + `","reason":"same customer"}`},
		{"merge into unknown", []string{"complaints", "merge", known, "--into", unknown, "--reason", "same customer"},
			"POST", "/v1/complaints/" + known + "/merge", `{"into":"` + unknown + `","reason":"same customer"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if wantErr := "error: " + want + " (HTTP 404)\n"; code != 1 || errOut != wantErr {
				t.Errorf("CLI: exit %d, stderr %q; want exit 1 and %q (stdout %q)", code, errOut, wantErr, out)
			}
			status, body := apiCall(t, base, tc.method, tc.path, tc.body)
			if status != http.StatusNotFound || body.Error != want {
				t.Errorf("API: %d %q, want 404 %q", status, body.Error, want)
			}
		})
	}
}

func apiCall(t *testing.T, base, method, path, body string) (int, httpx.ErrorBody) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer cli-test-token")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb httpx.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
		t.Fatalf("%s %s: the error body is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, eb
}
