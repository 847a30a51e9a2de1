package queue

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// agreeDocs are documents as forgetmenot writes them (every field set, odd
// text, zones, nil and empty parts) and damaged ones: decodeJSON must read
// each into what encoding/json reads, and refuse what it refuses.
func agreeDocs(t testing.TB) []string {
	at := time.Date(2026, 11, 30, 9, 15, 0, 123456789, time.FixedZone("CET", 3600))
	odd := "Zoë <b>&</b> \"quoted\" \\ \u2028 \x00 ✓\n\ttabs"
	msg := router.Message{ID: "M-01", Channel: router.ChannelEmail, SourceID: "<a@b>", Customer: router.Customer{Name: odd, Email: "z@example.com"},
		Subject: odd, Body: odd + strings.Repeat(" body", 80), Language: "nl", ThreadKeys: []string{"email:<a@b>", "ref:C-1"},
		ComplaintID: "C-1", DefaultTeam: "support", Metadata: map[string]string{"order": "42", "shop": odd}, NoAutoReply: "list",
		Unreachable: "no address", Notes: []string{"n1", odd}, ReceivedAt: at}
	c := router.Complaint{ID: "C-1042", Status: router.StatusClosed, Owner: "anna", Team: "support-nl", Channel: router.ChannelEmail,
		Subject: odd, Customer: msg.Customer, CustomerKey: "email:z@example.com", RoutingReason: "rule → team", CreatedAt: at, UpdatedAt: at,
		LastMessageAt: at, ClosedAt: at.Add(50 * time.Hour), Category: "late", Prevention: odd, Reopens: 2, FirstResponseAt: at,
		PromisedBy: at, Breaches: []string{"response"}, Promises: 3, PromisesKept: 1, PromisesBroken: 2, CSAT: 4, CSATAt: at,
		Timers: []router.Timer{{Kind: "respond_breach", Due: at}}, Version: 7}
	ev := router.Event{Type: router.EventAssigned, Actor: "router", Owner: "anna", Reason: odd, Details: map[string]string{"load": "0", "x": odd}}
	var docs []string
	add := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	n := router.Notification{ID: "C-1042:v7:assigned:anna", Kind: router.NotifyAssigned, Recipient: "anna", At: at, Complaint: c, Event: &ev, Message: &msg}
	cm := router.CustomerMessage{ID: "C-1042:ack", Kind: router.ToCustomerAcknowledgement, At: at, Complaint: c, OwnerName: "Anna", Body: odd, InReplyTo: &msg, References: []string{"a", "b"}}
	for _, v := range []any{msg, router.Message{}, c, router.Complaint{}, router.Entry{At: at, Message: &msg}, router.Entry{At: at, Event: &ev},
		router.Outgoing{Notification: &n}, router.Outgoing{Customer: &cm}, router.Outgoing{}} {
		add(v)
	}
	// A message copied from its inbound entry, the language the router
	// detected added at its end (Store.Commit): in a timeline entry and in
	// a notification.
	plain := msg
	plain.Language = ""
	pb, err := json.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	copied := string(pb[:len(pb)-1]) + `,"language":"nl"}`
	docs = append(docs, `{"at":"2026-11-30T09:15:00.123456789+01:00","message":`+copied+`}`,
		`{"notification":{"id":"n","kind":"assigned","recipient":"anna","at":"2026-11-30T09:15:00Z","complaint":{"id":"C-1"},"message":`+copied+`}}`)
	// Complaints as stored (records), with times of a zone and of
	// nanoseconds (kept as text) and in whole milliseconds of UTC (kept as
	// numbers), alone and in outbox entries.
	utc := c
	utc.CreatedAt, utc.ClosedAt, utc.Timers = at.UTC().Truncate(time.Millisecond), time.UnixMilli(1796208880493).UTC(), []router.Timer{{Kind: "promise", Due: at.UTC().Truncate(time.Second), Ref: "r", Via: "email"}}
	for _, rc := range []router.Complaint{c, utc, {}} {
		rec, err := encodeComplaint(rc)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(rec),
			`{"notification":{"id":"n","kind":"assigned","recipient":"anna","at":"2026-11-30T09:15:00Z","complaint":`+string(rec)+`,"message":`+copied+`}}`,
			`{"customer":{"id":"C-1042:ack","kind":"acknowledgement","at":"2026-11-30T09:15:00Z","complaint":`+string(rec)+`,"owner_name":"Anna"}}`)
	}
	// Timeline entries as stored, and an event record in a notification.
	for _, e := range []router.Entry{{At: at, Event: &ev}, {At: at.UTC().Truncate(time.Millisecond), Message: &msg}, {Event: &router.Event{Actor: "router"}}} {
		b, err := encodeEntry(e, nil)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
		if e.Event != nil {
			rec, err := json.Marshal(eventRecordOf(e.Event))
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, `{"notification":{"id":"n","kind":"assigned","recipient":"anna","at":"2026-11-30T09:15:00Z","event":`+string(rec)+`}}`)
		}
	}
	docs = append(docs, `{"e":{"y":"x","a":null}}`, `{"t":"x"}`, `{"notification":{"event":{"y":1}}}`, `{"notification":{"event":null}}`)
	docs = append(docs, `{"v":1,"c":"yesterday"}`, `{"v":1,"c":1.5}`, `{"v":1,"c":null}`, `{"v":"1"}`, `{"v":1,"tm":[{"d":"x"}]}`)
	docs = append(docs, reportViewDocs(t)...)
	return append(docs, ``, `null`, `[]`, `{"id":1}`, `{"received_at":"yesterday"}`, `{"metadata":{"a":1}}`, `{"body":"a\qb"}`,
		`{"notification":{"complaint":{"version":"7"}}}`, `{"id":"M-1"} x`, `{"id":"M-1"`, `{"id":"M-1","id":"M-2"}`, `{"ID":"M-1"}`,
		"{\"body\":\"\xff\"}", `{"thread_keys":null,"metadata":null}`, `{"notes":["a",1]}`)
}

func TestDecodersAgreeWithEncodingJSON(t *testing.T) {
	for _, doc := range agreeDocs(t) {
		checkAgree(t, doc)
	}
}

func FuzzDecodersAgreeWithEncodingJSON(f *testing.F) {
	for _, doc := range agreeDocs(f) {
		f.Add(doc)
	}
	f.Fuzz(checkAgree)
}

// checkAgree decodes doc as each kind of document with decodeJSON and
// encoding/json, which must agree.
func checkAgree(t *testing.T, doc string) {
	for _, kind := range []func() any{
		func() any { return new(router.Message) }, func() any { return new(router.Outgoing) },
		func() any { return new(router.Complaint) }, func() any { return new(router.Entry) },
		func() any { return new(router.ReportView) },
		func() any { return new(complaintRecord) }, func() any { return new(reportRecord) },
		func() any { return new(outgoingRecord) }, func() any { return new(entryRecord) },
	} {
		want, got := kind(), kind()
		wantErr := json.Unmarshal([]byte(doc), want)
		err := decodeJSON([]byte(doc), got)
		switch {
		case (err == nil) != (wantErr == nil):
			t.Errorf("%T from %q: error %v, encoding/json's %v", got, doc, err, wantErr)
		case err == nil && !reflect.DeepEqual(got, want):
			t.Errorf("%T from %q:\n got %+v\nwant %+v", got, doc, got, want)
		}
	}
}
