package testslack_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/internal/testslack"
)

func call(t *testing.T, ws *testslack.Workspace, method string, form url.Values) map[string]any {
	t.Helper()
	resp, err := http.PostForm(strings.TrimSuffix(ws.URL(), "/")+"/"+method, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func callJSON(t *testing.T, ws *testslack.Workspace, method string, body any) map[string]any {
	t.Helper()
	raw, _ := json.Marshal(body)
	resp, err := http.Post(strings.TrimSuffix(ws.URL(), "/")+"/"+method, "application/json", strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// What must hold: the double refuses what Slack refuses, in Slack's error
// shape, records the refusal, and does not record the refused call as sent.
func TestTheDoubleRefusesWhatSlackRefuses(t *testing.T) {
	ws := testslack.New(t, map[string]string{"anna@example.nl": "UANNA"})
	header := `[{"type":"header","text":{"type":"plain_text","text":"` + strings.Repeat("日", 151) + `"}}]`
	cases := []struct {
		name string
		got  map[string]any
		code string
	}{
		{"151-character header", call(t, ws, "chat.postMessage", url.Values{"channel": {"DUANNA"}, "text": {"t"}, "blocks": {header}}), "invalid_blocks"},
		{"blocks without text", call(t, ws, "chat.postMessage", url.Values{"channel": {"DUANNA"}, "blocks": {`[{"type":"divider"}]`}}), "no_text"},
		{"unknown block type", call(t, ws, "chat.update", url.Values{"channel": {"DUANNA"}, "ts": {"1"}, "text": {"t"}, "blocks": {`[{"type":"carousel"}]`}}), "invalid_blocks"},
		{"channel the app is not in", call(t, ws, "chat.postMessage", url.Values{"channel": {"CSECRET"}, "text": {"t"}}), "channel_not_found"},
		{"DM with an unknown user", call(t, ws, "conversations.open", url.Values{"users": {"UNOBODY"}}), "user_not_found"},
		{"max_length 4000", callJSON(t, ws, "views.open", map[string]any{"trigger_id": "t", "view": map[string]any{"type": "modal", "title": map[string]any{"type": "plain_text", "text": "Close"},
			"blocks": []any{map[string]any{"type": "input", "label": map[string]any{"type": "plain_text", "text": "L"}, "element": map[string]any{"type": "plain_text_input", "action_id": "v", "max_length": 4000}}}}}), "invalid_arguments"},
		{"modal title of 25", callJSON(t, ws, "views.open", map[string]any{"trigger_id": "t", "view": map[string]any{"type": "modal", "title": map[string]any{"type": "plain_text", "text": strings.Repeat("x", 25)}}}), "invalid_arguments"},
		{"a modal published as App Home", callJSON(t, ws, "views.publish", map[string]any{"user_id": "UANNA", "view": map[string]any{"type": "modal", "title": map[string]any{"type": "plain_text", "text": "x"}}}), "invalid_arguments"},
	}
	for _, c := range cases {
		if c.got["ok"] != false || c.got["error"] != c.code {
			t.Errorf("%s: answered %v, want ok:false error:%s", c.name, c.got, c.code)
		}
	}
	first := cases[0].got
	msgs, _ := first["response_metadata"].(map[string]any)["messages"].([]any)
	if len(msgs) == 0 || !strings.Contains(msgs[0].(string), "json-pointer:/blocks/0/text/text") {
		t.Errorf("response_metadata.messages %v, want the path of the broken text", first["response_metadata"])
	}
	if n := len(ws.Posts("")); n != 0 {
		t.Errorf("%d refused calls recorded as sent", n)
	}
	if n := len(ws.Refused()); n != len(cases) {
		t.Errorf("%d refusals recorded, want %d", n, len(cases))
	}
	// What Slack accepts, the double accepts.
	ok := call(t, ws, "chat.postMessage", url.Values{"channel": {"DUANNA"}, "text": {"t"}, "blocks": {`[{"type":"header","text":{"type":"plain_text","text":"` + strings.Repeat("日", 150) + `"}}]`}})
	if ok["ok"] != true {
		t.Errorf("a 150-character header was refused: %v", ok)
	}
}
