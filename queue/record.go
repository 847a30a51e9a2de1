package queue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// A complaint is stored as a compact record (complaintRecord), not as the
// JSON the API shows: short keys, times as milliseconds since the epoch,
// and no zero counters. The API's JSON of a new complaint is about 515
// bytes, which Redis's allocator rounds up to 640; the record is about
// 350, rounded to 384: some 250 bytes less per complaint, and fewer to
// send with every commit. The record starts with its version (complaintHead)
// like the JSON before it, so the commit's version guard reads it from the
// head of the string. Complaints stored before as the API's JSON
// (complaintHeadLegacy) are read as they are and written as records by
// their next change.
const (
	complaintHead       = `{"v":`
	complaintHeadLegacy = `{"version":`
)

// complaintRecord is router.Complaint as stored. Every field of the
// complaint has one here (TestComplaintRecordKeepsEveryField fills each
// and compares): a field added to router.Complaint and not here would be
// lost at the next write.
type complaintRecord struct {
	Version       int64           `json:"v"`
	ID            string          `json:"id"`
	Status        router.Status   `json:"s"`
	Owner         string          `json:"o"`
	Team          string          `json:"t"`
	Channel       router.Channel  `json:"ch"`
	Subject       string          `json:"su,omitempty"`
	Language      string          `json:"l,omitempty"`
	Customer      router.Customer `json:"cu"`
	CustomerKey   string          `json:"ck,omitempty"`
	Identities    []string        `json:"ids,omitempty"`
	Unreachable   string          `json:"un,omitempty"`
	MergedInto    string          `json:"mi,omitempty"`
	RoutingReason string          `json:"rr,omitempty"`
	FollowUpOf    string          `json:"fu,omitempty"`
	CreatedAt     msTime          `json:"c,omitzero"`
	// UpdatedAt is nil when it is CreatedAt (a new complaint).
	UpdatedAt       *msTime       `json:"u,omitempty"`
	LastMessageAt   msTime        `json:"lm,omitzero"`
	ClosedAt        msTime        `json:"cl,omitzero"`
	Resolution      string        `json:"re,omitempty"`
	Category        string        `json:"ca,omitempty"`
	Prevention      string        `json:"pv,omitempty"`
	Messages        int           `json:"m,omitempty"`
	Reopens         int           `json:"ro,omitempty"`
	AcknowledgedAt  msTime        `json:"ak,omitzero"`
	FirstResponseAt msTime        `json:"fr,omitzero"`
	RespondBy       msTime        `json:"rb,omitzero"`
	ResolveBy       msTime        `json:"sb,omitzero"`
	PromisedBy      msTime        `json:"pb,omitzero"`
	PromiseNote     string        `json:"pn,omitempty"`
	Priority        string        `json:"pr,omitempty"`
	WaitingSince    msTime        `json:"ws,omitzero"`
	Timers          []timerRecord `json:"tm,omitempty"`
	Breaches        []string      `json:"br,omitempty"`
	Promises        int           `json:"p,omitempty"`
	PromisesKept    int           `json:"pk,omitempty"`
	PromisesBroken  int           `json:"px,omitempty"`
	CSAT            int           `json:"cs,omitempty"`
	CSATAt          msTime        `json:"ct,omitzero"`
	CSATChanges     int           `json:"cc,omitempty"`
}

// timerRecord is router.Timer as stored in a complaintRecord.
type timerRecord struct {
	Kind router.TimerKind `json:"k"`
	Due  msTime           `json:"d,omitzero"`
	Ref  string           `json:"r,omitempty"`
	Via  router.Channel   `json:"w,omitempty"`
}

func recordOf(c router.Complaint) complaintRecord {
	r := complaintRecord{
		Version: c.Version, ID: c.ID, Status: c.Status, Owner: c.Owner, Team: c.Team, Channel: c.Channel,
		Subject: c.Subject, Language: c.Language, Customer: c.Customer, CustomerKey: c.CustomerKey,
		Identities: c.Identities, Unreachable: c.Unreachable, MergedInto: c.MergedInto,
		RoutingReason: c.RoutingReason, FollowUpOf: c.FollowUpOf,
		CreatedAt: msTime{c.CreatedAt}, LastMessageAt: msTime{c.LastMessageAt},
		ClosedAt: msTime{c.ClosedAt}, Resolution: c.Resolution, Category: c.Category, Prevention: c.Prevention,
		Messages: c.Messages, Reopens: c.Reopens, AcknowledgedAt: msTime{c.AcknowledgedAt},
		FirstResponseAt: msTime{c.FirstResponseAt}, RespondBy: msTime{c.RespondBy}, ResolveBy: msTime{c.ResolveBy},
		PromisedBy: msTime{c.PromisedBy}, PromiseNote: c.PromiseNote, Priority: c.Priority,
		WaitingSince: msTime{c.WaitingSince}, Breaches: c.Breaches, Promises: c.Promises,
		PromisesKept: c.PromisesKept, PromisesBroken: c.PromisesBroken, CSAT: c.CSAT,
		CSATAt: msTime{c.CSATAt}, CSATChanges: c.CSATChanges,
	}
	if c.UpdatedAt != c.CreatedAt {
		r.UpdatedAt = &msTime{c.UpdatedAt}
	}
	if len(c.Timers) > 0 {
		r.Timers = make([]timerRecord, len(c.Timers))
		for i, t := range c.Timers {
			r.Timers[i] = timerRecord{Kind: t.Kind, Due: msTime{t.Due}, Ref: t.Ref, Via: t.Via}
		}
	}
	return r
}

func (r complaintRecord) complaint() router.Complaint {
	c := router.Complaint{
		Version: r.Version, ID: r.ID, Status: r.Status, Owner: r.Owner, Team: r.Team, Channel: r.Channel,
		Subject: r.Subject, Language: r.Language, Customer: r.Customer, CustomerKey: r.CustomerKey,
		Identities: r.Identities, Unreachable: r.Unreachable, MergedInto: r.MergedInto,
		RoutingReason: r.RoutingReason, FollowUpOf: r.FollowUpOf,
		CreatedAt: r.CreatedAt.Time, UpdatedAt: r.CreatedAt.Time, LastMessageAt: r.LastMessageAt.Time,
		ClosedAt: r.ClosedAt.Time, Resolution: r.Resolution, Category: r.Category, Prevention: r.Prevention,
		Messages: r.Messages, Reopens: r.Reopens, AcknowledgedAt: r.AcknowledgedAt.Time,
		FirstResponseAt: r.FirstResponseAt.Time, RespondBy: r.RespondBy.Time, ResolveBy: r.ResolveBy.Time,
		PromisedBy: r.PromisedBy.Time, PromiseNote: r.PromiseNote, Priority: r.Priority,
		WaitingSince: r.WaitingSince.Time, Breaches: r.Breaches, Promises: r.Promises,
		PromisesKept: r.PromisesKept, PromisesBroken: r.PromisesBroken, CSAT: r.CSAT,
		CSATAt: r.CSATAt.Time, CSATChanges: r.CSATChanges,
	}
	if r.UpdatedAt != nil {
		c.UpdatedAt = r.UpdatedAt.Time
	}
	if len(r.Timers) > 0 {
		c.Timers = make([]router.Timer, len(r.Timers))
		for i, t := range r.Timers {
			c.Timers[i] = router.Timer{Kind: t.Kind, Due: t.Due.Time, Ref: t.Ref, Via: t.Via}
		}
	}
	return c
}

// reportRecord is router.ReportView as stored in a complaintRecord: the
// report decodes only these fields of every complaint of its period.
type reportRecord struct {
	ID              string         `json:"id"`
	Status          router.Status  `json:"s"`
	Owner           string         `json:"o"`
	Channel         router.Channel `json:"ch"`
	CreatedAt       msTime         `json:"c,omitzero"`
	ClosedAt        msTime         `json:"cl,omitzero"`
	Category        string         `json:"ca,omitempty"`
	Prevention      string         `json:"pv,omitempty"`
	Reopens         int            `json:"ro,omitempty"`
	FirstResponseAt msTime         `json:"fr,omitzero"`
	PromisedBy      msTime         `json:"pb,omitzero"`
	Breaches        []string       `json:"br,omitempty"`
	Promises        int            `json:"p,omitempty"`
	PromisesKept    int            `json:"pk,omitempty"`
	PromisesBroken  int            `json:"px,omitempty"`
	CSAT            int            `json:"cs,omitempty"`
}

func (r reportRecord) view() router.ReportView {
	return router.ReportView{ID: r.ID, Status: r.Status, Owner: r.Owner, Channel: r.Channel,
		CreatedAt: r.CreatedAt.Time, ClosedAt: r.ClosedAt.Time, Category: r.Category, Prevention: r.Prevention,
		Reopens: r.Reopens, FirstResponseAt: r.FirstResponseAt.Time, PromisedBy: r.PromisedBy.Time,
		Breaches: r.Breaches, Promises: r.Promises, PromisesKept: r.PromisesKept,
		PromisesBroken: r.PromisesBroken, CSAT: r.CSAT}
}

// msTime is a time stored as milliseconds since the epoch when that keeps
// all of it (a whole millisecond, in UTC or a zone of offset 0, which the
// API's JSON writes as "Z" and reads back as UTC too), and as RFC 3339
// text otherwise, so nothing a caller gave is rounded or loses its zone.
// The router's clock runs in whole milliseconds, like every index here.
type msTime struct{ time.Time }

func (t msTime) MarshalJSON() ([]byte, error) {
	if _, offset := t.Zone(); offset == 0 && t.Nanosecond()%int(time.Millisecond) == 0 {
		return strconv.AppendInt(nil, t.UnixMilli(), 10), nil
	}
	return t.Time.MarshalJSON()
}

func (t *msTime) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return t.Time.UnmarshalJSON(b)
	}
	if string(b) == "null" {
		return nil
	}
	ms, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("a stored time is neither milliseconds nor RFC 3339: %.40q", b)
	}
	t.Time = time.UnixMilli(ms).UTC()
	return nil
}

// encodeComplaint is what a complaint is stored as: its record.
func encodeComplaint(c router.Complaint) ([]byte, error) {
	data, err := json.Marshal(recordOf(c))
	if err != nil {
		return nil, router.NamesComplaint(c.ID, fmt.Errorf("encoding complaint %s: %w", c.ID, err))
	}
	if !bytes.HasPrefix(data, []byte(complaintHead)) {
		return nil, router.NamesComplaint(c.ID, fmt.Errorf("encoding complaint %s: it does not start with its version: %.40q", c.ID, data))
	}
	return data, nil
}

// decodeComplaint reads a stored complaint: a record, or the API's JSON a
// version before records stored.
func decodeComplaint(data string) (router.Complaint, error) {
	if isLegacyComplaint(data) {
		var c router.Complaint
		if err := decodeJSON([]byte(data), &c); err != nil {
			return router.Complaint{}, fmt.Errorf("decoding stored complaint: %w", err)
		}
		return c, nil
	}
	var r complaintRecord
	if err := decodeJSON([]byte(data), &r); err != nil {
		return router.Complaint{}, fmt.Errorf("decoding stored complaint: %w", err)
	}
	return r.complaint(), nil
}

// isLegacyComplaint tells the API's JSON, stored before records, from a
// record: a record starts with complaintHead, which that JSON never does
// (its first key is "version", or "id" in a layout before 5).
func isLegacyComplaint(data string) bool {
	return len(data) < len(complaintHead) || data[:len(complaintHead)] != complaintHead
}

// A timeline entry is stored as an entryRecord, not as the API's JSON
// (which starts with "at", legacyEntryHead): short keys, its time in
// milliseconds, and left out when it is the entry before's (the entries a
// change adds share its time), and an event's actor left out when it is
// the router. A message in an entry stays as the inbound entry holds it:
// the commit copies it from there.
const legacyEntryHead = `{"at":`

type entryRecord struct {
	// At is nil when the entry has the time of the entry before it.
	At      *msTime         `json:"t,omitempty"`
	Message *router.Message `json:"m,omitempty"`
	Event   *eventRecord    `json:"e,omitempty"`
}

// Fields of an entry record, as entryPart finds them.
const (
	entryRecordMessage = `"m":`
	entryRecordEvent   = `"e":`
)

// eventRecord is router.Event as stored (TestEntryRecordKeepsEveryField).
type eventRecord struct {
	Type router.EventType `json:"y"`
	// Actor is nil for router.ActorRouter.
	Actor         *string           `json:"a,omitempty"`
	Owner         string            `json:"o,omitempty"`
	PreviousOwner string            `json:"po,omitempty"`
	Reason        string            `json:"r,omitempty"`
	Text          string            `json:"x,omitempty"`
	Details       map[string]string `json:"d,omitempty"`
}

func eventRecordOf(e *router.Event) *eventRecord {
	if e == nil {
		return nil
	}
	r := &eventRecord{Type: e.Type, Owner: e.Owner, PreviousOwner: e.PreviousOwner, Reason: e.Reason, Text: e.Text, Details: e.Details}
	if e.Actor != router.ActorRouter {
		r.Actor = &e.Actor
	}
	return r
}

func (r *eventRecord) event() *router.Event {
	if r == nil {
		return nil
	}
	e := &router.Event{Type: r.Type, Actor: router.ActorRouter, Owner: r.Owner, PreviousOwner: r.PreviousOwner, Reason: r.Reason, Text: r.Text, Details: r.Details}
	if r.Actor != nil {
		e.Actor = *r.Actor
	}
	return e
}

// entryTime is the time an entry record stores: nil when it is prev's,
// the time of the entry stored just before it in the same timeline by the
// same write (prev nil: none).
func entryTime(e router.Entry, prev *time.Time) *msTime {
	if prev != nil && e.At == *prev {
		return nil
	}
	return &msTime{e.At}
}

// entryHead is the stored entry of e up to its message or event (without
// the closing brace), as encodeEntry writes it.
func entryHead(e router.Entry, prev *time.Time) ([]byte, error) {
	b := []byte{'{'}
	if at := entryTime(e, prev); at != nil {
		t, err := at.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("encoding timeline entry: %w", err)
		}
		b = append(append(b, `"t":`...), t...)
		b = append(b, ',')
	}
	return b, nil
}

// encodeEntry is what e is stored as (see entryTime for prev).
func encodeEntry(e router.Entry, prev *time.Time) ([]byte, error) {
	b, err := json.Marshal(entryRecord{At: entryTime(e, prev), Message: e.Message, Event: eventRecordOf(e.Event)})
	if err != nil {
		return nil, fmt.Errorf("encoding timeline entry: %w", err)
	}
	return b, nil
}

// decodeTimeline reads the stored entries of complaint id's timeline,
// oldest first: records, and the API's JSON stored before them.
func decodeTimeline(id string, raw []string) ([]router.Entry, error) {
	out := make([]router.Entry, 0, len(raw))
	var prev time.Time
	for i, data := range raw {
		var e router.Entry
		if strings.HasPrefix(data, legacyEntryHead) {
			if err := decodeJSON([]byte(data), &e); err != nil {
				return nil, router.NamesComplaint(id, fmt.Errorf("decoding timeline entry %d of %s: %w", i, id, err))
			}
		} else {
			var r entryRecord
			if err := decodeJSON([]byte(data), &r); err != nil {
				return nil, router.NamesComplaint(id, fmt.Errorf("decoding timeline entry %d of %s: %w", i, id, err))
			}
			e = router.Entry{At: prev, Message: r.Message, Event: r.Event.event()}
			if r.At != nil {
				e.At = r.At.Time
			}
		}
		prev = e.At
		out = append(out, e)
	}
	return out, nil
}

// storedEventJSON decodes an event in an outbox entry: a record copied
// from the timeline, or the API's JSON.
type storedEventJSON struct{ e *router.Event }

func (s *storedEventJSON) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(b, []byte(`{"y":`)) {
		var r eventRecord
		if err := decodeJSON(b, &r); err != nil {
			return err
		}
		s.e = r.event()
		return nil
	}
	if string(b) == "null" {
		s.e = nil
		return nil
	}
	s.e = new(router.Event)
	return decodeJSON(b, s.e)
}
