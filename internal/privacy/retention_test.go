package privacy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// Retention with an injected clock erases exactly the closed complaints
// whose close lies beyond the period, once, even with two replicas working
// at the same time; open and recent ones stay as they are.
func TestRetentionErasesExactlyTheOldClosedComplaintsAcrossTwoReplicas(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	t0 := e.clock.Now()
	open := func(name string) string {
		return e.complaintOf(e.enqueue(router.Message{Channel: router.ChannelWebhook, SourceID: "src-" + name,
			Customer: router.Customer{Name: "Klant " + name, Email: name + "@klant.example"}, Body: "Klacht van " + name})).ID
	}
	closeAt := func(id string, at time.Time) {
		e.clock.Set(at)
		c, err := e.store.Complaint(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.router.CloseWith(ctx, id, c.Owner, router.Closing{Resolution: "opgelost", Category: "delivery"}); err != nil {
			t.Fatal(err)
		}
	}
	const day = 24 * time.Hour
	var old []string
	for i := range 5 {
		e.clock.Set(t0.Add(time.Duration(i) * time.Minute))
		id := open(fmt.Sprintf("oud%d", i))
		closeAt(id, t0.Add(time.Hour+time.Duration(i)*time.Minute))
		old = append(old, id)
	}
	e.clock.Set(t0)
	recentClose := open("recent") // opened long ago, closed within the period
	closeAt(recentClose, t0.Add(400*day))
	e.clock.Set(t0)
	stillOpen := open("open") // old but open: never erased
	e.clock.Set(t0.Add(500 * day))
	young := open("young")
	closeAt(young, t0.Add(501*day))
	e.settle()
	keep := map[string]string{}
	for _, id := range []string{recentClose, stillOpen, young} {
		c, _ := e.store.Complaint(ctx, id)
		tl, _ := e.store.Timeline(ctx, id)
		keep[id] = jsonOf(c, tl)
	}

	// Work still queued about old complaints: an acknowledgement in the
	// dead letters and a reply waiting for its retry. They go with the
	// complaint (a retried dead letter would mail a customer whose data is
	// gone). A new message from someone else that names an old complaint
	// is theirs, not the old complaint's data: it stays.
	deadAck := `{"customer":{"id":"ack-1","kind":"acknowledgement","complaint":{"id":"` + old[0] + `","customer":{"name":"Klant oud0","email":"oud0@klant.example"}},"body":"Klacht van oud0"}}`
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.keys.DeadLetters(), Values: []string{"stream", e.keys.Outbox(), "group", queue.DeliveryGroup,
		"entry", "1-1", "attempts", "5", "error", "smtp: connection refused", "failed_at", t0.Format(time.RFC3339), "data", deadAck}}).Err(); err != nil {
		t.Fatal(err)
	}
	retry, _ := json.Marshal(map[string]string{"id": "1-2", "attempt": "1", "data": `{"customer":{"id":"reply-1","kind":"reply","complaint":{"id":"` + old[1] + `","customer":{"email":"oud1@klant.example"}},"body":"Klacht van oud1, antwoord"}}`})
	if err := e.rdb.ZAdd(ctx, e.keys.Delayed(e.keys.Outbox()), redis.Z{Score: float64(t0.UnixMilli()), Member: string(retry)}).Err(); err != nil {
		t.Fatal(err)
	}
	// A newer complaint's notification that names an old one (its customer
	// wrote "about C-…") is the newer complaint's: it stays.
	newer := `{"notification":{"id":"C-9999:v1:assigned:anna","kind":"assigned","recipient":"anna","complaint":{"id":"C-9999","customer":{"email":"ander@klant.example"}},"message":{"complaint_id":"` + old[3] + `","body":"Over ` + old[3] + `"}}}`
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.keys.Outbox(), Values: []string{"data", newer, "attempt", "0"}}).Err(); err != nil {
		t.Fatal(err)
	}
	newMessage := `{"id":"M-1","channel":"webhook","source_id":"nieuw-1","customer":{"email":"nieuw@klant.example"},"complaint_id":"` + old[2] + `","body":"Ik schrijf over ` + old[2] + `"}`
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.keys.DeadLetters(), Values: []string{"stream", e.keys.Inbound(), "group", queue.RouterGroup,
		"entry", "1-3", "attempts", "5", "error", "poison", "failed_at", t0.Format(time.RFC3339), "data", newMessage}}).Err(); err != nil {
		t.Fatal(err)
	}

	e.clock.Set(t0.Add(2*365*day + 10*day))
	replicas := make([]*Service, 2)
	for i := range replicas {
		s, err := New(Config{Store: e.store, Closer: e.router, Clock: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		replicas[i] = s
	}
	var wg sync.WaitGroup
	for _, s := range replicas {
		wg.Go(func() {
			for {
				n, err := s.EraseExpired(ctx, 2*365*day, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	e.settle()

	erased, err := e.store.WhichErased(ctx, append(slices.Clone(old), recentClose, stillOpen, young))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range old {
		if !erased[id] {
			t.Errorf("%s closed over two years ago is not erased", id)
		}
		tl, _ := e.store.Timeline(ctx, id)
		n := 0
		for _, en := range tl {
			if en.Event != nil && en.Event.Type == EventErased {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s has %d erased events, want exactly 1", id, n)
		}
	}
	for id, was := range keep {
		c, _ := e.store.Complaint(ctx, id)
		tl, _ := e.store.Timeline(ctx, id)
		if erased[id] || jsonOf(c, tl) != was {
			t.Errorf("%s changed, but is open or closed within the period", id)
		}
	}
	log, err := e.store.PrivacyLog(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var audited []string
	for _, rec := range log {
		if rec["kind"] == "retention" {
			audited = append(audited, rec["complaint"])
		}
	}
	slices.Sort(audited)
	want := slices.Clone(old)
	slices.Sort(want)
	if !slices.Equal(audited, want) {
		t.Errorf("audited retention erasures %v, want each of %v once", audited, want)
	}
	var needles []string
	for i := range 5 {
		needles = append(needles, fmt.Sprintf("oud%d@klant.example", i), fmt.Sprintf("Klacht van oud%d", i), fmt.Sprintf("src-oud%d", i))
	}
	dump := e.dump()
	for k := range dump {
		// The e-mail channel's acknowledgement limit expires an hour after
		// the acknowledgement, long before any retention period ends (the
		// test's clock jumps two years; Redis's does not).
		if kind, _ := e.keys.KindOf(k); kind.Name == "state:email:ack" {
			if ttl := e.rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Hour {
				t.Errorf("%s expires in %v, want within the hour", k, ttl)
			}
			delete(dump, k)
		}
	}
	if got := traces(dump, needles); len(got) > 0 {
		t.Errorf("after retention the old customers are still in:\n%s", strings.Join(got, "\n"))
	}
	if got := traces(e.dump(), []string{"nieuw@klant.example"}); len(got) != 1 {
		t.Errorf("a new message naming an old complaint was removed with it: %v", got)
	}
	if got := traces(e.dump(), []string{"ander@klant.example"}); len(got) != 1 {
		t.Errorf("a newer complaint's notification naming an old complaint was removed with it: %v", got)
	}
	if got := traces(e.dump(), []string{"young@klant.example", "open@klant.example", "recent@klant.example"}); len(got) < 3 {
		t.Errorf("retention erased customers within the period: %v", got)
	}
	e.checkInvariants()
}

// Tokens match whole words only, so another customer whose id merely
// starts like the erased one's keeps their data; a name only mentions a
// customer (someone else may share it), so it is redacted, never a reason to
// delete.
func TestPersonalDataMatchesWholeWords(t *testing.T) {
	p := queue.NewPersonalData([]string{"forum:4242", "jan@voorbeeld.nl", "ab"}, []string{"Jan Jansen"}, nil)
	for s, want := range map[string][2]bool{ // identifies, mentions
		"forum:4242":                    {true, true},
		"forum:42420":                   {false, false},
		"Beste jan jansen,":             {false, true},
		"Jan Janssens":                  {false, false},
		"<jan@voorbeeld.nl>":            {true, true},
		"xjan@voorbeeld.nl":             {false, false},
		"ab is too short to be a token": {false, false},
	} {
		if got := [2]bool{p.Identifies(s), p.Mentions(s)}; got != want {
			t.Errorf("%q: identifies, mentions = %v, want %v", s, got, want)
		}
	}
	if got := p.Redact("Beste Jan Jansen (jan@voorbeeld.nl), forum:42420", "[x]"); got != "Beste [x] ([x]), forum:42420" {
		t.Errorf("Redact: %q", got)
	}
}

func jsonOf(v ...any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
