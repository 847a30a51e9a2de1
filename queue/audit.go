package queue

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

// AuditReport is the result of checking the stored state against forgetmenot's
// invariants.
type AuditReport struct {
	Complaints int
	Open       int
	Messages   int
	// MessageComplaint maps every message on a timeline to its complaint.
	MessageComplaint map[string]string
	Problems         []string
}

// Audit reads every complaint and checks that: every open complaint has
// exactly one owner and is counted in that owner's load and nowhere else;
// every message is on exactly one complaint and indexed there; every thread
// key points to an existing complaint. It reads everything, so it is meant for
// tests and maintenance, not the hot path.
func (s *Store) Audit(ctx context.Context) (AuditReport, error) {
	rep := AuditReport{MessageComplaint: map[string]string{}}
	routedAt := map[string]time.Time{}
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }

	ids, err := s.rdb.ZRange(ctx, s.keys.Complaints(), 0, -1).Result()
	if err != nil {
		return rep, err
	}
	cs, err := s.loadComplaints(ctx, ids)
	if err != nil {
		return rep, err
	}
	rep.Complaints = len(cs)
	openByOwner := map[string]map[string]bool{}
	known := map[string]bool{}
	// A merge copies the messages of the complaint merged away onto the
	// one it went into: those copies are expected and not counted again,
	// and a message belongs to the complaint it was routed to, the first
	// of such a chain.
	mergedInto := map[string]string{}
	for _, c := range cs {
		if c.MergedInto != "" {
			mergedInto[c.ID] = c.MergedInto
		}
	}
	// copiedTo tells whether a merge (or a chain of them) took id's
	// messages to target.
	copiedTo := func(id, target string) bool {
		for range len(mergedInto) {
			id = mergedInto[id]
			if id == "" {
				return false
			}
			if id == target {
				return true
			}
		}
		return false
	}
	for _, c := range cs {
		known[c.ID] = true
		if c.Owner == "" {
			problem("%s has no owner", c.ID)
		}
		if c.Status == "open" {
			rep.Open++
			if openByOwner[c.Owner] == nil {
				openByOwner[c.Owner] = map[string]bool{}
			}
			openByOwner[c.Owner][c.ID] = true
		}
		tl, err := s.Timeline(ctx, c.ID)
		if err != nil {
			return rep, err
		}
		n := 0
		for _, e := range tl {
			if e.Message == nil {
				continue
			}
			n++
			other, dup := rep.MessageComplaint[e.Message.ID]
			if dup && copiedTo(other, c.ID) {
				continue
			}
			if dup && copiedTo(c.ID, other) {
				rep.MessageComplaint[e.Message.ID] = c.ID
				routedAt[e.Message.ID] = e.At
				continue
			}
			rep.Messages++
			if dup {
				problem("message %s is on %s and on %s", e.Message.ID, other, c.ID)
			}
			rep.MessageComplaint[e.Message.ID] = c.ID
			routedAt[e.Message.ID] = e.At
		}
		if n != c.Messages {
			problem("%s counts %d messages but its timeline holds %d", c.ID, c.Messages, n)
		}
	}

	// Owner loads: each owner's open set must be exactly their open complaints.
	scan, err := s.scanner(ctx)
	if err != nil {
		return rep, err
	}
	iter := scan.Scan(ctx, 0, s.keys.OwnerOpen("*"), 1000).Iterator()
	seenOwners := map[string]bool{}
	for iter.Next(ctx) {
		key := iter.Val()
		owner := strings.TrimSuffix(strings.TrimPrefix(key, s.keys.tag+":owner:"), ":open")
		seenOwners[owner] = true
		members, err := s.rdb.SMembers(ctx, key).Result()
		if err != nil {
			return rep, err
		}
		for _, id := range members {
			if !openByOwner[owner][id] {
				problem("owner %s's load counts %s, which is not an open complaint of theirs", owner, id)
			}
		}
		if len(members) != len(openByOwner[owner]) {
			problem("owner %s's load is %d but they own %d open complaints", owner, len(members), len(openByOwner[owner]))
		}
		if n, err := s.rdb.HGet(ctx, s.keys.OpenCounts(), owner).Int(); (err == nil || len(members) > 0) && n != len(members) {
			problem("owner %s's open count is %d but their open set holds %d", owner, n, len(members))
		}
	}
	if err := iter.Err(); err != nil {
		return rep, err
	}
	for owner, set := range openByOwner {
		if !seenOwners[owner] && len(set) > 0 {
			problem("owner %s owns %d open complaints but has no load", owner, len(set))
		}
	}
	openIDs, err := s.rdb.ZCard(ctx, s.keys.OpenComplaints()).Result()
	if err != nil {
		return rep, err
	}
	if int(openIDs) != rep.Open {
		problem("the open index holds %d complaints, but %d are open", openIDs, rep.Open)
	}
	// The figures kept by the commits must be what the open complaints say.
	var open []router.Complaint
	var owners []string
	for _, c := range cs {
		if c.Status == router.StatusOpen {
			open = append(open, c)
			owners = append(owners, c.Owner)
		}
	}
	now := time.Now()
	want := router.FiguresOf(open, owners, now)
	got, err := s.OpenFigures(ctx, owners, now)
	if err != nil {
		return rep, err
	}
	for o, w := range want.Owners {
		if g := got.Owners[o]; g != w {
			problem("owner %s's indexed figures are %+v but their open complaints say %+v", o, g, w)
		}
	}
	if got.PromisesPending != want.PromisesPending || got.PromisesBroken != want.PromisesBroken {
		problem("indexed promises pending/broken are %d/%d but the open complaints say %d/%d",
			got.PromisesPending, got.PromisesBroken, want.PromisesPending, want.PromisesBroken)
	}

	msgIDs := make([]string, 0, len(rep.MessageComplaint))
	for msg := range rep.MessageComplaint {
		msgIDs = append(msgIDs, msg)
	}
	indexed, err := s.MessagesRouted(ctx, msgIDs)
	if err != nil {
		return rep, err
	}
	for msg, c := range rep.MessageComplaint {
		// A message routed longer ago than the once retention has left the
		// index; one indexed elsewhere is always wrong.
		if got, ok := indexed[msg]; (ok && got != c) || (!ok && now.Sub(routedAt[msg]) < s.onceTTL) {
			problem("message %s is on %s but indexed to %q", msg, c, got)
		}
	}
	threads, err := s.rdb.HGetAll(ctx, s.keys.Threads()).Result()
	if err != nil {
		return rep, err
	}
	for key, c := range threads {
		if !known[c] {
			problem("thread key %s points to unknown complaint %s", key, c)
		}
	}
	sort.Strings(rep.Problems)
	return rep, nil
}
