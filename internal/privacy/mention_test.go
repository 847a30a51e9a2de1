package privacy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/router"
)

// What must hold: a stranger who names another customer's complaint leaves
// a line on it that names the complaint the stranger got, never the
// stranger. The other customer's export holds no stranger's data, and the
// stranger's erasure leaves none on the other complaint, also where a line
// was written by an earlier version that named them.
func TestMentionLinesKeepStrangersOutOfOtherCustomersData(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	jan := e.complaintOf(e.enqueue(router.Message{Channel: router.ChannelWebhook, SourceID: "jan-1",
		Customer: router.Customer{Name: "Jan Jansen", Email: "jan@voorbeeld.nl"}, Body: "Mijn wasmachine lekt."}))
	strangers := []router.Customer{
		{Name: "Kees Vreemd", Email: "kees@vreemd.example"},
		{Name: "Mila Anders", Email: "mila@anders.example"},
	}
	var theirs []string
	for i, s := range strangers {
		c := e.complaintOf(e.enqueue(router.Message{Channel: router.ChannelWebhook, SourceID: fmt.Sprintf("stranger-%d", i),
			Customer: s, Body: "Over " + jan.ID + ": wanneer komt de monteur?", ComplaintID: jan.ID}))
		if c.ID == jan.ID {
			t.Fatalf("a stranger's message joined %s", jan.ID)
		}
		theirs = append(theirs, c.ID)
	}
	e.settle()
	// A line as an earlier version wrote it: with Kees's name and address.
	timeline := e.keys.Timeline(jan.ID)
	raw, err := e.rdb.LRange(ctx, timeline, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	legacy := -1
	for i, r := range raw {
		if strings.Contains(r, `"mentioned"`) && strings.Contains(r, theirs[0]) {
			legacy = i
			old := strings.Replace(r, "its sender is not verified as this complaint's customer (via webhook)",
				"sender not verified as its customer (Kees Vreemd <kees@vreemd.example> via webhook)", 1)
			if old == r {
				t.Fatalf("the mention line is not worded as expected: %s", r)
			}
			if err := e.rdb.LSet(ctx, timeline, int64(i), old).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if legacy < 0 {
		t.Fatalf("no mention line of %s on %s: %v", theirs[0], jan.ID, raw)
	}
	personal := []string{"Kees", "kees@vreemd.example", "Mila", "mila@anders.example"}
	named := func(s string) []string {
		var out []string
		for _, p := range personal {
			if strings.Contains(s, p) {
				out = append(out, p)
			}
		}
		return out
	}

	s := (&world{env: e}).service(t, nil)
	ex, err := s.Export(ctx, "jan@voorbeeld.nl")
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	if err := ex.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if got := named(fmt.Sprintf("%+v", ex) + text.String()); len(got) > 0 {
		t.Errorf("Jan's export names strangers: %v", got)
	}
	if !strings.Contains(text.String(), theirs[0]+" mentions this complaint") || !strings.Contains(text.String(), theirs[1]+" mentions this complaint") {
		t.Errorf("Jan's export does not say which complaints mention his:\n%s", text.String())
	}

	if _, err := s.Erase(ctx, EraseRequest{Customer: "kees@vreemd.example", Reason: "request", Actor: "anna", Force: true}); err != nil {
		t.Fatal(err)
	}
	raw, err = e.rdb.LRange(ctx, timeline, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if got := named(strings.Join(raw, "\n")); slices.Contains(got, "Kees") || slices.Contains(got, "kees@vreemd.example") {
		t.Errorf("after Kees's erasure, %s's timeline still names him: %v", jan.ID, got)
	}
	tl, err := e.store.Timeline(ctx, jan.ID)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, en := range tl {
		if ev := en.Event; ev != nil && ev.Type == router.EventMentioned {
			lines = append(lines, ev.Reason)
		}
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], theirs[0]+" mentions this complaint") {
		t.Errorf("after the erasure, %s's mention lines are %q: want both kept, worded without the sender", jan.ID, lines)
	}
}

// What must hold: an erasure finds the complaints a complaint left mention
// lines on, from the list in its "opened" event or, opened by an earlier
// version, from that event's wording.
func TestMentionedByReadsBothWordings(t *testing.T) {
	tl := []router.Entry{
		{Event: &router.Event{Type: router.EventOpened, Reason: "new conversation; mentions C-1001 (by complaint_id), sender not verified as its customer; mentions C-1002 (by email:<x@y>), sender not verified as its customer"}},
		{Event: &router.Event{Type: router.EventAssigned, Reason: "mentions C-9 (by nothing)"}},
	}
	if got := mentionedBy(tl); !slices.Equal(got, []string{"C-1001", "C-1002"}) {
		t.Errorf("from the old wording: %v, want C-1001 and C-1002", got)
	}
	tl[0].Event.Details = map[string]string{router.DetailMentions: "C-7,C-8"}
	if got := mentionedBy(tl); !slices.Equal(got, []string{"C-7", "C-8"}) {
		t.Errorf("from the list: %v, want C-7 and C-8", got)
	}
}
