package router

import (
	"fmt"
	"sync/atomic"
)

// settings are the roster, the routing rules and the accountability policy in
// force. They are swapped whole (Reload), so every read sees a roster and
// rules that were validated together, and a reload never races a routing
// worker.
type settings struct {
	dir    Directory
	rules  *Rules
	policy *Policy
}

// liveSettings holds the settings in force.
type liveSettings struct{ p atomic.Pointer[settings] }

func (l *liveSettings) load() *settings { return l.p.Load() }

// liveDirectory is the Directory the router (and whoever asks the router for
// its Directory) reads: always the roster in force.
type liveDirectory struct{ l *liveSettings }

func (d liveDirectory) Owner(id string) (Owner, bool) { return d.l.load().dir.Owner(id) }
func (d liveDirectory) Team(id string) (Team, bool)   { return d.l.load().dir.Team(id) }
func (d liveDirectory) Members(team string) []Owner   { return d.l.load().dir.Members(team) }
func (d liveDirectory) Owners() []Owner               { return d.l.load().dir.Owners() }

// liveRules reads the routing rules in force.
type liveRules struct{ l *liveSettings }

func (r liveRules) match(msg Message, lang string) match {
	return r.l.load().rules.match(msg, lang)
}

func (r liveRules) defaultTeam() string { return r.l.load().rules.DefaultTeam }

// policy is the accountability policy in force (never nil).
func (r *Router) policy() *Policy { return r.live.load().policy }

// Reload puts a new roster, routing rules and policy in force, after
// checking them against each other; on an error the old ones stay. Work in
// progress finishes with whichever it read; a complaint whose owner left the
// roster keeps that owner until someone reassigns it (a reopen assigns
// anew).
func (r *Router) Reload(dir Directory, rules *Rules, policy *Policy) error {
	if dir == nil || rules == nil {
		return fmt.Errorf("router: reload needs a directory and rules")
	}
	if err := rules.Validate(dir); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if policy == nil {
		policy = &Policy{}
	}
	r.live.p.Store(&settings{dir: dir, rules: rules, policy: policy})
	// Absences may have changed with the roster: the next look at who is
	// away reads them afresh.
	r.snapshot.Store(nil)
	return nil
}
