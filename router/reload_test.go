package router_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/forgetmenot/forgetmenot/router"
)

// TestReloadSwapsRosterAndRulesWhileRouting: a reload while routing workers
// run is race-free (run with -race), every message lands on one complaint,
// and after the reload new complaints follow the new rules and roster. A
// reload whose rules do not fit its roster changes nothing.
func TestReloadSwapsRosterAndRulesWhileRouting(t *testing.T) {
	d := newDesk(t)
	ctx := context.Background()
	teams := []router.Team{{ID: "support", Lead: "chloe"}, {ID: "billing"}, {ID: "vip"}}
	owners := []router.Owner{
		{ID: "anna", Name: "Anna", Email: "anna@example.nl", Teams: []string{"support"}, Capacity: 50, Active: true},
		{ID: "daan", Name: "Daan", Email: "daan@example.nl", Teams: []string{"billing"}, Capacity: 50, Active: true},
		{ID: "chloe", Name: "Chloe", Email: "chloe@example.com", Teams: []string{"support"}, Capacity: 50, Active: true},
		{ID: "zoe", Name: "Zoë", Email: "zoe@example.com", Teams: []string{"vip"}, Capacity: 50, Active: true},
	}
	next, err := router.NewRoster(teams, owners)
	if err != nil {
		t.Fatal(err)
	}
	nextRules := &router.Rules{DefaultTeam: "support", Rules: []router.Rule{{Name: "vip", Team: "vip", Keywords: []string{"platinum"}}}}

	var wg sync.WaitGroup
	msgs := make([]router.Message, 40)
	for i := range msgs {
		msgs[i] = d.msg(fmt.Sprintf("c%d@example.com", i), "platinum member, parcel late")
	}
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(msgs); i += 4 {
				if _, err := d.router.Route(ctx, msgs[i]); err != nil {
					t.Errorf("routing %s: %v", msgs[i].ID, err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := d.router.Reload(next, nextRules, nil); err != nil {
				t.Errorf("reload: %v", err)
			}
			_ = d.router.Directory().Owners()
		}
	})
	wg.Wait()
	rep, err := d.store.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages != len(msgs) || len(rep.Problems) > 0 {
		t.Fatalf("audit: %d messages on complaints (want %d), problems %v", rep.Messages, len(msgs), rep.Problems)
	}

	out := d.route(d.msg("new@example.com", "platinum customer here"))
	if out.Owner != "zoe" {
		t.Fatalf("after the reload a platinum complaint went to %s, want zoe (vip rule, new owner)", out.Owner)
	}
	if _, ok := d.router.Directory().Owner("zoe"); !ok {
		t.Fatal("the router's Directory does not show the reloaded roster")
	}

	// Rules naming a team the roster lacks: refused, the roster in force stays.
	bad := &router.Rules{DefaultTeam: "support", Rules: []router.Rule{{Name: "gold", Team: "gold", Keywords: []string{"gold"}}}}
	if err := d.router.Reload(next, bad, nil); err == nil {
		t.Fatal("rules naming an undeclared team must be refused")
	}
	if out := d.route(d.msg("other@example.com", "platinum again")); out.Owner != "zoe" {
		t.Fatalf("a refused reload changed routing: owner %s", out.Owner)
	}
}
