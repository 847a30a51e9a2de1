package queue

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// filled sets every field of the struct at v to a value that is not its
// zero, different for each field (n counts), and recurses into structs and
// slices: a field the stored record forgets then comes back different.
func filled(t *testing.T, v reflect.Value, n *int, at time.Time) {
	t.Helper()
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + strings.Repeat("x", *n))
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			filled(t, v.Index(i), n, at)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		filled(t, k, n, at)
		filled(t, e, n, at)
		v.SetMapIndex(k, e)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		filled(t, v.Elem(), n, at)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(at.Add(time.Duration(*n) * time.Hour)))
			return
		}
		for i := range v.NumField() {
			filled(t, v.Field(i), n, at)
		}
	default:
		t.Fatalf("filled: no value for a %s", v.Type())
	}
}

// TestComplaintRecordKeepsEveryField stores a complaint with every field
// set, and reads it back unchanged: with times in whole milliseconds of
// UTC (kept as numbers), with nanoseconds, and in another zone (kept as
// text). A field added to router.Complaint and not to complaintRecord
// fails here.
func TestComplaintRecordKeepsEveryField(t *testing.T) {
	for _, at := range []time.Time{
		time.UnixMilli(1796208880493).UTC(),
		time.Date(2026, 11, 30, 9, 15, 0, 123456789, time.UTC),
		// RFC 3339 keeps a zone's offset, not its name (as the API's JSON);
		// one that no local zone has, or it is read back as time.Local.
		time.Date(2026, 11, 30, 9, 15, 0, 0, time.FixedZone("", 14*3600+30*60)),
	} {
		var c router.Complaint
		n := 0
		filled(t, reflect.ValueOf(&c).Elem(), &n, at)
		data, err := encodeComplaint(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeComplaint(string(data))
		if err != nil {
			t.Fatalf("decoding %s: %v", data, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("complaint stored as %s\nread back %+v\nwant      %+v", data, got, c)
		}
		view, err := decodeReportView(string(data))
		if err != nil || !reflect.DeepEqual(view, c.ReportView()) {
			t.Errorf("report view of %s: %+v, %v\nwant %+v", data, view, err, c.ReportView())
		}
		// Every field has a key of its own.
		keys := map[string]bool{}
		rt := reflect.TypeOf(complaintRecord{})
		for i := range rt.NumField() {
			k, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			if keys[k] {
				t.Errorf("key %q of complaintRecord is used twice", k)
			}
			keys[k] = true
		}
	}
}

// TestStoredTimesAreCompactOnlyWhenNothingIsLost: a time is a number of
// milliseconds only when that is all of it.
func TestStoredTimesAreCompactOnlyWhenNothingIsLost(t *testing.T) {
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{time.UnixMilli(1796208880493).UTC(), `1796208880493`},
		{time.UnixMilli(1796208880493).In(time.FixedZone("", 0)), `1796208880493`},
		{time.UnixMilli(-5).UTC(), `-5`},
		{time.Date(2026, 11, 30, 9, 15, 0, 1, time.UTC), `"2026-11-30T09:15:00.000000001Z"`},
		{time.Date(2026, 11, 30, 9, 15, 0, 0, time.FixedZone("CET", 3600)), `"2026-11-30T09:15:00+01:00"`},
	} {
		b, err := msTime{c.at}.MarshalJSON()
		if err != nil || string(b) != c.want {
			t.Errorf("%v stored as %s, %v; want %s", c.at, b, err, c.want)
			continue
		}
		var back msTime
		if err := back.UnmarshalJSON(b); err != nil || !back.Equal(c.at) {
			t.Errorf("%s read back as %v, %v; want %v", b, back.Time, err, c.at)
		}
	}
	var bad msTime
	if err := bad.UnmarshalJSON([]byte(`1.5`)); err == nil {
		t.Error("1.5 read as a stored time")
	}
}

// TestComplaintRecordLeavesOutOnlyWhatItCanRestore: a new complaint's
// update time is its creation time and is left out; any other, even none,
// is kept.
func TestComplaintRecordLeavesOutOnlyWhatItCanRestore(t *testing.T) {
	at := time.UnixMilli(1796208880493).UTC()
	for _, c := range []router.Complaint{
		{ID: "C-1", CreatedAt: at, UpdatedAt: at},
		{ID: "C-2", CreatedAt: at},
		{ID: "C-3", UpdatedAt: at},
		{ID: "C-4", CreatedAt: at, UpdatedAt: at.Add(time.Millisecond)},
		{ID: "C-5", CreatedAt: at, UpdatedAt: at.In(time.FixedZone("", 14*3600+30*60))},
	} {
		data, err := encodeComplaint(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeComplaint(string(data))
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("%s: stored as %s, read back %+v, %v", c.ID, data, got, err)
		}
	}
	data, _ := encodeComplaint(router.Complaint{ID: "C-1", CreatedAt: at, UpdatedAt: at, Messages: 1})
	if strings.Contains(string(data), `"u":`) {
		t.Errorf("a new complaint stored its update time: %s", data)
	}
}

// TestEntryRecordKeepsEveryField stores timelines with every field of an
// entry and of its event set, times shared with the entry before or not,
// and reads them back unchanged, also where entries stored as the API's
// JSON come before.
func TestEntryRecordKeepsEveryField(t *testing.T) {
	at := time.UnixMilli(1796208880493).UTC()
	var ev router.Event
	n := 0
	filled(t, reflect.ValueOf(&ev).Elem(), &n, at)
	var msg router.Message
	filled(t, reflect.ValueOf(&msg).Elem(), &n, at)
	msg.Fingerprint = "" // never stored (json:"-")
	byRouter, noActor := ev, ev
	byRouter.Actor, noActor.Actor = router.ActorRouter, ""
	zoned := at.Add(time.Nanosecond).In(time.FixedZone("", -(14*3600 + 30*60)))
	timeline := []router.Entry{
		{At: at, Message: &msg}, {At: at, Event: &ev}, {At: at, Event: &byRouter},
		{At: at.Add(time.Second), Event: &noActor}, {At: zoned, Event: &ev}, {At: zoned, Message: &msg},
		{Event: &byRouter}, {At: at},
	}
	var legacy []string
	for _, e := range timeline[:2] {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		legacy = append(legacy, string(b))
	}
	for _, before := range [][]string{nil, legacy} {
		raw := append([]string(nil), before...)
		var prev *time.Time
		for i, e := range timeline {
			b, err := encodeEntry(e, prev)
			if err != nil {
				t.Fatal(err)
			}
			prev = &timeline[i].At
			raw = append(raw, string(b))
		}
		got, err := decodeTimeline("C-1", raw)
		want := append(append([]router.Entry(nil), timeline[:len(before)]...), timeline...)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("timeline stored as\n%s\nread back %+v, %v\nwant %+v", strings.Join(raw, "\n"), got, err, want)
		}
	}
	// The entries a change adds at one time carry it once.
	b, _ := encodeEntry(timeline[2], &timeline[1].At)
	if strings.Contains(string(b), `"t":`) || strings.Contains(string(b), `"a":`) {
		t.Errorf("an event of the router at the time of the entry before stored as %s", b)
	}
	if _, err := decodeTimeline("C-7", []string{`{"e":{"y":1}}`}); err == nil || !strings.Contains(err.Error(), "entry 0 of C-7") {
		t.Errorf("a damaged entry: %v, want an error naming it", err)
	}
}
