package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// assignment is the router's choice of owner for a complaint, with its reasons.
type assignment struct {
	team         string
	owner        Owner
	load         int
	sticky       bool
	overCapacity bool
	reason       string
}

func (a assignment) details() map[string]string {
	d := map[string]string{
		"team":     a.team,
		"load":     strconv.Itoa(a.load),
		"capacity": strconv.Itoa(a.owner.Capacity),
	}
	if a.sticky {
		d["sticky"] = "true"
	}
	if a.overCapacity {
		d["over_capacity"] = "true"
	}
	return d
}

// guard keeps concurrent routers from pushing an owner past capacity; an
// assignment made over capacity on purpose carries none.
func (a assignment) guard() *CapacityGuard {
	if a.overCapacity {
		return nil
	}
	return &CapacityGuard{Owner: a.owner.ID, Limit: a.owner.Capacity}
}

// assign picks one owner in team for a new complaint. The order: the owner of
// the customer's most recent complaint if they are in the team, active, speak
// the language and have room (sticky); else the least-loaded active owner who
// speaks the language and has room; else anyone in the team with room; else,
// because no complaint may wait without an owner, the least-loaded owner over
// capacity.
func (r *Router) assign(ctx context.Context, team string, msg Message) (assignment, error) {
	off, err := r.away(ctx, r.clock())
	if err != nil {
		return assignment{}, err
	}
	team, candidates, teamNote := r.candidates(team, off)
	ids := make([]string, len(candidates))
	for i, o := range candidates {
		ids[i] = o.ID
	}
	loads, err := r.ownerLoads(ctx, ids)
	if err != nil {
		return assignment{}, fmt.Errorf("reading owner loads of team %s: %w", team, err)
	}
	lang := msg.Language
	withNote := func(a assignment) assignment {
		a.team = team
		a.load = loads[a.owner.ID].Open
		if teamNote != "" {
			a.reason = teamNote + "; " + a.reason
		}
		return a
	}
	hasRoom := func(o Owner) bool { return loads[o.ID].Open < o.Capacity }

	if key := msg.Customer.Key(msg.Channel); key != "" {
		prev, err := r.latestComplaintOf(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return assignment{}, fmt.Errorf("reading the customer's previous complaint: %w", err)
		default:
			for _, o := range candidates {
				if o.ID == prev.Owner && o.Speaks(lang) && hasRoom(o) {
					return withNote(assignment{owner: o, sticky: true, reason: fmt.Sprintf(
						"sticky: %s owned this customer's %s (%d/%d open)", o.ID, prev.ID, loads[o.ID].Open, o.Capacity)}), nil
				}
			}
			if a, away := off[prev.Owner]; away {
				note := fmt.Sprintf("%s, who owned this customer's %s, is away until %s", prev.Owner, prev.ID, a.Until.Format(time.DateOnly))
				if teamNote != "" {
					note = teamNote + "; " + note
				}
				teamNote = note
			}
		}
	}

	speakers := ownersWhere(candidates, func(o Owner) bool { return o.Speaks(lang) })
	if o, ok := leastLoaded(speakers, loads, hasRoom); ok {
		why := fmt.Sprintf("least loaded: %s (%d/%d open)", o.ID, loads[o.ID].Open, o.Capacity)
		if lang != "" && len(speakers) < len(candidates) {
			why += ", speaks " + lang
		}
		return withNote(assignment{owner: o, reason: why}), nil
	}
	if o, ok := leastLoaded(candidates, loads, hasRoom); ok {
		return withNote(assignment{owner: o, reason: fmt.Sprintf(
			"least loaded: %s (%d/%d open); nobody who speaks %s has room", o.ID, loads[o.ID].Open, o.Capacity, lang)}), nil
	}
	pool := speakers
	if len(pool) == 0 {
		pool = candidates
	}
	o, _ := leastLoaded(pool, loads, func(Owner) bool { return true })
	return withNote(assignment{owner: o, overCapacity: true, reason: fmt.Sprintf(
		"over capacity: everyone in team %s is at capacity; least loaded %s (%d/%d open)", team, o.ID, loads[o.ID].Open, o.Capacity)}), nil
}

// candidates returns the active owners of team, falling back to the default
// team and, as a last resort, to the team's inactive owners, so that the list
// is never empty for a validated roster.
func (r *Router) candidates(team string, off map[string]Absence) (string, []Owner, string) {
	pick := func(t string, ok func(Owner) bool) []Owner { return ownersWhere(r.dir.Members(t), ok) }
	// Owners who are away take no new complaints, unless nobody else can.
	present := func(t string) []Owner {
		return pick(t, func(o Owner) bool { _, away := off[o.ID]; return o.Active && !away })
	}
	if len(off) > 0 {
		if _, ok := r.dir.Team(team); ok {
			if c := present(team); len(c) > 0 {
				return team, c, ""
			}
			if c := present(r.rules.defaultTeam()); len(c) > 0 && len(pick(team, func(o Owner) bool { return o.Active })) > 0 {
				return r.rules.defaultTeam(), c, fmt.Sprintf("everyone active in team %s is away; default team %s", team, r.rules.defaultTeam())
			}
		}
	}
	active := func(t string) []Owner { return pick(t, func(o Owner) bool { return o.Active }) }
	if _, ok := r.dir.Team(team); !ok {
		note := fmt.Sprintf("team %q is not on the roster; default team %s", team, r.rules.defaultTeam())
		team = r.rules.defaultTeam()
		if c := active(team); len(c) > 0 {
			return team, c, note
		}
	}
	if c := active(team); len(c) > 0 {
		return team, c, ""
	}
	if c := active(r.rules.defaultTeam()); len(c) > 0 {
		return r.rules.defaultTeam(), c, fmt.Sprintf("team %s has no active owner; default team %s", team, r.rules.defaultTeam())
	}
	return team, r.dir.Members(team), fmt.Sprintf("nobody in team %s is active", team)
}

// leastLoaded picks, among owners that pass ok, the one with the fewest open
// complaints; ties go to whoever waited longest for a new one, then by id.
func leastLoaded(owners []Owner, loads map[string]OwnerLoad, ok func(Owner) bool) (Owner, bool) {
	best, found := Owner{}, false
	for _, o := range owners {
		if ok(o) && (!found || loadedLess(o, best, loads)) {
			best, found = o, true
		}
	}
	return best, found
}

// loadedLess orders owners for a new complaint: fewer open first, then the
// one who waited longer for a new one, then by id.
func loadedLess(a, b Owner, loads map[string]OwnerLoad) bool {
	la, lb := loads[a.ID], loads[b.ID]
	if la.Open != lb.Open {
		return la.Open < lb.Open
	}
	if !la.LastAssigned.Equal(lb.LastAssigned) {
		return la.LastAssigned.Before(lb.LastAssigned)
	}
	return a.ID < b.ID
}

// ownersWhere returns the owners that pass ok: owners itself when all do
// (the common case, on every new complaint; callers only read it), else a
// copy of those that do.
func ownersWhere(owners []Owner, ok func(Owner) bool) []Owner {
	all := true
	for _, o := range owners {
		if !ok(o) {
			all = false
			break
		}
	}
	if all {
		return owners
	}
	out := make([]Owner, 0, len(owners))
	for _, o := range owners {
		if ok(o) {
			out = append(out, o)
		}
	}
	return out
}

// ownerLoads answers from the routing prefetch when it read every owner.
func (r *Router) ownerLoads(ctx context.Context, ids []string) (map[string]OwnerLoad, error) {
	if pre := prefetched(ctx); pre != nil {
		all := true
		for _, id := range ids {
			_, ok := pre.Loads[id]
			all = all && ok
		}
		if all {
			return pre.Loads, nil
		}
	}
	return r.store.OwnerLoads(ctx, ids)
}

// latestComplaintOf answers from the routing prefetch when there is one.
func (r *Router) latestComplaintOf(ctx context.Context, customerKey string) (Complaint, error) {
	if pre := prefetched(ctx); pre != nil {
		if pre.Latest == "" {
			return Complaint{}, fmt.Errorf("complaints of %s: %w", customerKey, ErrNotFound)
		}
		if c, ok, err := pre.complaint(pre.Latest); ok {
			return c, err
		}
	}
	return r.store.LatestComplaintOf(ctx, customerKey)
}
