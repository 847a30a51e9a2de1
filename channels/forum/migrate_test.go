package forum_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/forum"
	"github.com/forgetmenot/forgetmenot/channels/forum/forumtest"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/router"
)

// rekeys records the moves the migration asks for.
type rekeys struct {
	mu    sync.Mutex
	moves []string
}

func (r *rekeys) RekeyCustomer(_ context.Context, ch router.Channel, oldID, newID string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.moves = append(r.moves, fmt.Sprintf("%s:%s→%s", ch, oldID, newID))
	return 2, nil
}

func candidates(list ...forum.LegacyCandidate) func(context.Context) ([]forum.LegacyCandidate, error) {
	return func(context.Context) ([]forum.LegacyCandidate, error) { return list, nil }
}

var (
	complaintsSince = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	accountsSince   = time.Date(2021, 3, 4, 0, 0, 0, 0, time.UTC)
)

// What must hold: each username with complaints is resolved to its user id
// and moved; a username of digits only is taken for a user id and not
// looked up; a username Discourse does not know is left and logged once at
// INFO with the count; a username held now by an account created after the
// complaints (it changed hands) is left, never given to a stranger.
func TestMigrationMovesResolvedUsernamesAndLeavesTheRest(t *testing.T) {
	d := forumtest.New(t, "k", "helpdesk")
	d.AddUser(forumtest.User{ID: 233, Username: "marloes", Created: accountsSince},
		forumtest.User{ID: 501, Username: "J.Jansen", Created: accountsSince},
		forumtest.User{ID: 777, Username: "piet", Created: complaintsSince.Add(48 * time.Hour)})
	logs := &testkit.LockedBuffer{}
	moved := &rekeys{}
	res, err := forum.MigrateLegacyCustomers(context.Background(), forum.MigrationConfig{
		API: forum.NewAPI(d.URL, "k", "helpdesk", nil), Legacy: moved, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Customers: candidates(
			forum.LegacyCandidate{ID: "marloes", First: complaintsSince}, forum.LegacyCandidate{ID: "j.jansen", First: complaintsSince},
			forum.LegacyCandidate{ID: "4242", First: complaintsSince}, forum.LegacyCandidate{ID: "ghost", First: complaintsSince},
			forum.LegacyCandidate{ID: "vanished", First: complaintsSince}, forum.LegacyCandidate{ID: "piet", First: complaintsSince}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"forum:marloes→233", "forum:j.jansen→501"}; !slices.Equal(moved.moves, want) {
		t.Errorf("moves %v, want %v", moved.moves, want)
	}
	want := forum.MigrationResult{Usernames: 5, Moved: 2, Complaints: 4, Unknown: 2, Newer: 1}
	if res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	if n := d.Requests("GET /u/4242"); n != 0 {
		t.Errorf("a user id was looked up as a username %d times", n)
	}
	if n := strings.Count(logs.String(), "does not know"); n != 1 || !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), "usernames=2") {
		t.Errorf("unknown usernames must be logged once at INFO with their count:\n%s", logs)
	}
}

// What must hold: a rate limit (429 with Retry-After) is waited out for as
// long as Discourse asks, and every username is still resolved.
func TestMigrationWaitsOutTheRateLimitAsDiscourseAsks(t *testing.T) {
	d := forumtest.New(t, "k", "helpdesk")
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	d.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	list := members(d, forumtest.MaxAdminAPIReqPerMinute+5)
	var waits []time.Duration
	moved := &rekeys{}
	res, err := forum.MigrateLegacyCustomers(context.Background(), forum.MigrationConfig{
		API: forum.NewAPI(d.URL, "k", "helpdesk", nil), Legacy: moved, Customers: candidates(list...),
		Logger: slog.New(slog.DiscardHandler),
		Sleep: func(_ context.Context, w time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, w)
			now = now.Add(w)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Moved != len(list) || len(moved.moves) != len(list) {
		t.Fatalf("moved %d of %d: %+v", len(moved.moves), len(list), res)
	}
	if len(waits) == 0 || waits[0] < 50*time.Second || waits[0] > time.Minute+time.Second {
		t.Errorf("waits %v: want the Retry-After of Discourse's minute window", waits)
	}
}

// What must hold: when Discourse will not show profiles to the caller (no
// key on a forum that hides profiles, or a wrong key), the migration stops
// with an error saying what to set, and moves nothing; Discourse being
// down is an error too (retried later), never taken for an unknown user.
func TestMigrationStopsWhenDiscourseRefusesOrIsDown(t *testing.T) {
	d := forumtest.New(t, "k", "helpdesk")
	d.AddUser(forumtest.User{ID: 233, Username: "marloes", Created: accountsSince})
	noSleep := func(context.Context, time.Duration) error { return nil }
	for name, api := range map[string]*forum.API{
		"no key":    forum.NewAPI(d.URL, "", "", nil),
		"wrong key": forum.NewAPI(d.URL, "wrong", "helpdesk", nil),
	} {
		moved := &rekeys{}
		_, err := forum.MigrateLegacyCustomers(context.Background(), forum.MigrationConfig{
			API: api, Legacy: moved, Logger: slog.New(slog.DiscardHandler), Sleep: noSleep,
			Customers: candidates(forum.LegacyCandidate{ID: "marloes", First: complaintsSince}),
		})
		var ae *forum.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || !strings.Contains(err.Error(), "FORGETMENOT_DISCOURSE_API_KEY") {
			t.Errorf("%s: %v, want Discourse's 403 and what to set", name, err)
		}
		if len(moved.moves) != 0 {
			t.Errorf("%s: moved %v", name, moved.moves)
		}
	}
	d.Down(true)
	moved := &rekeys{}
	res, err := forum.MigrateLegacyCustomers(context.Background(), forum.MigrationConfig{
		API: forum.NewAPI(d.URL, "k", "helpdesk", nil), Legacy: moved, Logger: slog.New(slog.DiscardHandler), Sleep: noSleep,
		Customers: candidates(forum.LegacyCandidate{ID: "marloes", First: complaintsSince}),
	})
	if err == nil || res.Unknown != 0 || len(moved.moves) != 0 {
		t.Errorf("Discourse down: %v %+v %v, want an error and nothing moved or left", err, res, moved.moves)
	}
}

// What must hold: the double refuses user lookups as Discourse does: 403
// without a key (profiles hidden from the public) or with a wrong one, 404
// in Discourse's error shape for an unknown username; a known username is
// found whatever its case.
func TestDoubleRefusesUserLookupsAsDiscourseDoes(t *testing.T) {
	d := forumtest.New(t, "k", "helpdesk")
	d.AddUser(forumtest.User{ID: 233, Username: "Marloes", Created: accountsSince})
	get := func(path, key string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", d.URL+path, nil)
		if key != "" {
			req.Header.Set("Api-Key", key)
			req.Header.Set("Api-Username", "helpdesk")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	for _, c := range []struct {
		path, key string
		status    int
		errorType string
	}{
		{"/u/marloes.json", "", 403, "invalid_access"},
		{"/u/marloes.json", "wrong", 403, "invalid_access"},
		{"/u/nobody.json", "k", 404, "not_found"},
	} {
		code, out := get(c.path, c.key)
		if errs, _ := out["errors"].([]any); code != c.status || out["error_type"] != c.errorType || len(errs) == 0 {
			t.Errorf("GET %s (key %q): %d %v, want %d %s with errors", c.path, c.key, code, out, c.status, c.errorType)
		}
	}
	if code, out := get("/u/marloes.json", "k"); code != 200 || out["user"].(map[string]any)["id"] != float64(233) {
		t.Errorf("known user: %d %v", code, out)
	}
	u, err := forum.NewAPI(d.URL, "k", "helpdesk", nil).UserByUsername(context.Background(), "nobody")
	if !errors.Is(err, forum.ErrUnknownUser) {
		t.Errorf("unknown user through the client: %+v %v, want ErrUnknownUser", u, err)
	}
}

// What must hold: after the first LookupBurst usernames the lookups are
// spaced by Pace, so the migration leaves part of the key's rate limit to
// replies; every username is still resolved.
func TestMigrationPacesItsLookupsAfterABurst(t *testing.T) {
	d := forumtest.New(t, "k", "helpdesk")
	list := members(d, forum.LookupBurst+5)
	var waits []time.Duration
	moved := &rekeys{}
	res, err := forum.MigrateLegacyCustomers(context.Background(), forum.MigrationConfig{
		API: forum.NewAPI(d.URL, "k", "helpdesk", nil), Legacy: moved, Customers: candidates(list...),
		Logger: slog.New(slog.DiscardHandler), Pace: forum.DefaultLookupPace,
		Sleep: func(_ context.Context, w time.Duration) error { waits = append(waits, w); return nil },
	})
	if err != nil || res.Moved != len(list) {
		t.Fatalf("%+v %v, want all %d moved", res, err, len(list))
	}
	if want := slices.Repeat([]time.Duration{forum.DefaultLookupPace}, 5); !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
}

// members gives the double n users, member_0 onwards (ids from 1000), and
// returns them as customers still keyed by username.
func members(d *forumtest.Discourse, n int) []forum.LegacyCandidate {
	var list []forum.LegacyCandidate
	for i := range n {
		name := fmt.Sprintf("member_%d", i)
		d.AddUser(forumtest.User{ID: int64(1000 + i), Username: name, Created: accountsSince})
		list = append(list, forum.LegacyCandidate{ID: name, First: complaintsSince})
	}
	return list
}
