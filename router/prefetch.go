package router

import "context"

// RoutingInputs is what routing one message reads, fetched at once by a
// store that can (RoutingReader): one round trip instead of one for the
// thread keys, the complaints they name, the customer's history, the owner
// loads and the absences (the last read twice before, once to assign and
// once for the cover's copies).
type RoutingInputs struct {
	// Threads maps each thread key asked for that is known to its complaint.
	Threads map[string]string
	// Complaints holds the complaints those keys name and the customer's
	// latest, as read.
	Complaints map[string]Complaint
	// Latest is the id of the customer's most recent complaint ("" none).
	Latest string
	// Loads has every owner asked for.
	Loads map[string]OwnerLoad
	// Absences are the absences recorded through the API.
	Absences []Absence
}

// RoutingReader is a Store that reads a message's RoutingInputs in one
// round trip.
type RoutingReader interface {
	RoutingInputs(ctx context.Context, threadKeys []string, customerKey string, owners []string) (RoutingInputs, error)
}

type prefetchKey struct{}

// withPrefetch carries the inputs read for one routing through the
// functions that would otherwise read them one by one.
func withPrefetch(ctx context.Context, in *RoutingInputs) context.Context {
	return context.WithValue(ctx, prefetchKey{}, in)
}

func prefetched(ctx context.Context) *RoutingInputs {
	in, _ := ctx.Value(prefetchKey{}).(*RoutingInputs)
	return in
}

// threadLookup is every key the message's thread is looked up by: its
// thread keys and their customer-scoped variants.
func threadLookup(msg Message) []string {
	if len(msg.ThreadKeys) == 0 {
		return nil
	}
	lookup := append([]string(nil), msg.ThreadKeys...)
	if customerKey := msg.Customer.Key(msg.Channel); customerKey != "" {
		for _, k := range msg.ThreadKeys {
			lookup = append(lookup, scopedThreadKey(k, customerKey))
		}
	}
	return lookup
}

// prefetch reads a message's routing inputs in one go when the store can:
// the owners are those of the team its rules pick and of the default team,
// which is where a new complaint's owner comes from but for rare fallbacks
// (those read what is missing themselves).
func (r *Router) prefetch(ctx context.Context, msg Message) (context.Context, error) {
	rr, ok := r.store.(RoutingReader)
	if !ok {
		return ctx, nil
	}
	team := r.rules.match(msg, msg.Language).team
	seen := map[string]bool{}
	var owners []string
	for _, t := range []string{team, r.rules.defaultTeam()} {
		for _, o := range r.dir.Members(t) {
			if !seen[o.ID] {
				seen[o.ID] = true
				owners = append(owners, o.ID)
			}
		}
	}
	in, err := rr.RoutingInputs(ctx, threadLookup(msg), msg.Customer.Key(msg.Channel), owners)
	if err != nil {
		return ctx, err
	}
	return withPrefetch(ctx, &in), nil
}

// complaint answers from the prefetch for a complaint it read: one a
// thread key named or the customer's latest (absent: it does not exist).
// ok is false when the prefetch did not read it.
func (in *RoutingInputs) complaint(id string) (c Complaint, read bool, err error) {
	if in == nil {
		return Complaint{}, false, nil
	}
	if c, ok := in.Complaints[id]; ok {
		return c, true, nil
	}
	named := id == in.Latest
	for _, v := range in.Threads {
		named = named || v == id
	}
	if named {
		return Complaint{}, true, complaintNotFound(id, ErrNotFound)
	}
	return Complaint{}, false, nil
}
