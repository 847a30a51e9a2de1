package router

import (
	"fmt"
	"sort"
)

// Directory answers who the owners and teams are. The configuration loader
// provides one; it is an interface so a roster can be reloaded at run time.
type Directory interface {
	Owner(id string) (Owner, bool)
	Team(id string) (Team, bool)
	// Members lists the team's owners, active or not, in a stable order.
	Members(team string) []Owner
	Owners() []Owner
}

// Roster is an in-memory Directory built from the owners file.
type Roster struct {
	owners  map[string]Owner
	teams   map[string]Team
	members map[string][]Owner
	order   []Owner
}

// NewRoster checks that every reference resolves: owners' teams exist, team
// leads are owners, every team has at least one owner.
func NewRoster(teams []Team, owners []Owner) (*Roster, error) {
	r := &Roster{
		owners:  make(map[string]Owner, len(owners)),
		teams:   make(map[string]Team, len(teams)),
		members: make(map[string][]Owner, len(teams)),
	}
	for _, t := range teams {
		if _, dup := r.teams[t.ID]; dup {
			return nil, fmt.Errorf("team %q is declared twice", t.ID)
		}
		r.teams[t.ID] = t
	}
	for _, o := range owners {
		if _, dup := r.owners[o.ID]; dup {
			return nil, fmt.Errorf("owner %q is declared twice", o.ID)
		}
		if len(o.Teams) == 0 {
			return nil, fmt.Errorf("owner %q belongs to no team", o.ID)
		}
		for _, t := range o.Teams {
			if _, ok := r.teams[t]; !ok {
				return nil, fmt.Errorf("owner %q: team %q is not declared", o.ID, t)
			}
			r.members[t] = append(r.members[t], o)
		}
		r.owners[o.ID] = o
		r.order = append(r.order, o)
	}
	for id, t := range r.teams {
		if len(r.members[id]) == 0 {
			return nil, fmt.Errorf("team %q has no owners", id)
		}
		if t.Lead != "" {
			if _, ok := r.owners[t.Lead]; !ok {
				return nil, fmt.Errorf("team %q: lead %q is not an owner", id, t.Lead)
			}
		}
	}
	sort.SliceStable(r.order, func(i, j int) bool { return r.order[i].ID < r.order[j].ID })
	return r, nil
}

// Owner looks an owner up by id.
func (r *Roster) Owner(id string) (Owner, bool) { o, ok := r.owners[id]; return o, ok }

// Team looks a team up by id.
func (r *Roster) Team(id string) (Team, bool) { t, ok := r.teams[id]; return t, ok }

// Members lists a team's owners in roster order.
func (r *Roster) Members(team string) []Owner { return r.members[team] }

// Owners lists every owner, sorted by id.
func (r *Roster) Owners() []Owner { return r.order }

// TeamIDs lists the declared teams, sorted.
func (r *Roster) TeamIDs() []string {
	ids := make([]string, 0, len(r.teams))
	for id := range r.teams {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
