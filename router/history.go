package router

import (
	"context"
	"fmt"
)

// HistoryStore is a store that can count a customer's complaints without
// loading them: the count and the newest few in one round trip.
type HistoryStore interface {
	// CustomerComplaints returns the customer's newest complaints (at most
	// limit) and how many they have in all.
	CustomerComplaints(ctx context.Context, customerKey string, limit int) ([]Complaint, int, error)
}

// History is a customer's earlier complaints: the newest few, and the true
// count (which the list is capped below).
type History struct {
	Recent []Complaint
	Total  int
}

// CustomerHistory returns the complaints of the customer of c other than c
// itself: the newest (at most limit) and how many there are in all.
func (r *Router) CustomerHistory(ctx context.Context, c Complaint, limit int) (History, error) {
	if c.CustomerKey == "" {
		return History{}, nil
	}
	if limit <= 0 {
		limit = 5
	}
	var (
		recent []Complaint
		total  int
		err    error
	)
	if hs, ok := r.store.(HistoryStore); ok {
		recent, total, err = hs.CustomerComplaints(ctx, c.CustomerKey, limit+1)
	} else {
		recent, err = r.store.Complaints(ctx, Filter{Customer: c.CustomerKey, Limit: 1000})
		total = len(recent)
	}
	if err != nil {
		return History{}, fmt.Errorf("reading the history of %s: %w", c.CustomerKey, err)
	}
	h := History{Total: total}
	for _, o := range recent {
		if o.ID == c.ID {
			continue
		}
		if len(h.Recent) < limit {
			h.Recent = append(h.Recent, o)
		}
	}
	if c.ID != "" && h.Total > 0 {
		// The customer's index holds c itself (it is theirs), so the earlier
		// ones are one fewer.
		h.Total--
	}
	if h.Total < len(h.Recent) {
		h.Total = len(h.Recent)
	}
	return h, nil
}
