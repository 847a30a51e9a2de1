package queue

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// reportViewDocs are stored complaints as json.Marshal writes them and
// documents it never writes, for TestDecodersAgreeWithEncodingJSON.
func reportViewDocs(t testing.TB) []string {
	at := time.Date(2026, 11, 30, 9, 15, 0, 123456789, time.UTC)
	rich := router.Complaint{ID: "C-1042", Status: router.StatusClosed, Owner: "anna", Team: "support-nl", Channel: router.ChannelEmail,
		Subject: "<Bestelling> & \"meer\"", Customer: router.Customer{Name: "Zoë", Email: "z@example.com"},
		RoutingReason: "rule → team", CreatedAt: at, UpdatedAt: at, LastMessageAt: at,
		ClosedAt: at.Add(50 * time.Hour).In(time.FixedZone("CET", 3600)), Category: "late \"delivery\"",
		Prevention: "Pack glass <twice> ✓\n\tand tell the carrier", Reopens: 2, FirstResponseAt: at.Add(time.Hour),
		PromisedBy: at.Add(24 * time.Hour), Breaches: []string{"response", "promise"}, Promises: 3, PromisesKept: 1, PromisesBroken: 2,
		CSAT: 4, CSATAt: at, Timers: []router.Timer{{Kind: "respond_breach", Due: at}}, Version: 7}
	var docs []string
	for _, c := range []router.Complaint{rich, {}, {ID: "C-1", Status: router.StatusOpen, CreatedAt: at}} {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	return append(docs,
		// Documents json.Marshal never writes.
		`{"id":"C-1","ID":"C-2"}`, `{"Status":"closed"}`, `{"ſtatus":"closed"}`, `{"id":"caf\u00e9"}`, `{"id":"café"}`,
		`{"prevention":"\ud800"}`, "{\"id\":\"\xff\"}", `{"id":null,"reopens":null,"created_at":null,"breaches":null}`,
		`{"reopens":1.0}`, `{"reopens":1e2}`, `{"reopens":-0}`, `{"reopens":99999999999999999999}`, `{"csat":"4"}`,
		`{"created_at":"2026-13-01T00:00:00Z"}`, `{"created_at":"2026-12-01T10:00:00+01:00"}`, `{"created_at":1}`,
		`{"breaches":"response"}`, `{"breaches":["a",1]}`, `{"owner":{"id":"anna"}}`,
		`{"id":"C-1","id":"C-2","reopens":1,"reopens":2,"breaches":["a","b"],"breaches":["c"]}`,
		" { \"id\" : \"C-1\" ,\n\t\"x\" : [1, -2.5e+3, 0.5E-2, {\"a\": [true, false, null, {}]}, \"\\u00e9\\\"\\\\\\/\\b\\f\\n\\r\\t\"], \"y\": [] } \r\n",
		`{"x":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`,"id":"C-9"}`,
		// Not JSON: both must refuse.
		``, `null`, `[]`, `"C-1"`, `{"id":"C-1"`, `{"id":"C-1"} x`, `{"id":"C-1"}}`, `{"id":"a\qb"}`, `{"x":01}`, `{"x":1.}`,
		`{"x":-}`, `{"x":1e}`, `{"x":"\u12"}`, "{\"x\":\"tab\there\"}", `{"x":tru}`, `{"x":nul}`, `{,}`, `{"a":1,}`,
		`{"a" 1}`, `{"a":1 "b":2}`, `{"a":[1,]}`, `{"a":[1 2]}`, `{"a":{"b"}}`, `{a:1}`, `{"id":"C-1",}`)
}

// BenchmarkDecodeReportView decodes a complaint as routing stores it.
func BenchmarkDecodeReportView(b *testing.B) {
	at := time.Date(2026, 12, 2, 3, 21, 36, 129982772, time.UTC)
	c := router.Complaint{ID: "C-1004", Status: router.StatusOpen, Owner: "anna", Team: "support-en", Channel: router.ChannelWebhook,
		Subject: "Order 1", Language: "en", Customer: router.Customer{Name: "Seeded Customer", Email: "seed-1@example.com"},
		CustomerKey: "email:seed-1@example.com", RoutingReason: "no rule matched; default team → team support-en → least loaded: anna (0/25 open)",
		CreatedAt: at, UpdatedAt: at, LastMessageAt: at, Messages: 1, RespondBy: at.Add(9 * time.Hour), ResolveBy: at.Add(170 * time.Hour),
		Timers:  []router.Timer{{Kind: "respond_reminder", Due: at}, {Kind: "respond_breach", Due: at}, {Kind: "resolve_reminder", Due: at}, {Kind: "resolve_breach", Due: at}},
		Version: 1}
	doc, err := json.Marshal(c)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := decodeReportView(string(doc)); err != nil {
			b.Fatal(err)
		}
	}
}
