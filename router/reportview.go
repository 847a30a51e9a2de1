package router

import "time"

// ReportView is the part of a complaint the accountability report reads,
// with the JSON names of Complaint. A store paging through a 28-day report
// decodes only these fields: decoding whole complaints (customer, timers,
// routing reason, …) was most of the report's time. The report itself takes
// ReportViews, so it cannot come to depend on a field a store leaves out; a
// test keeps the names and types in step with Complaint.
type ReportView struct {
	ID              string    `json:"id"`
	Status          Status    `json:"status"`
	Owner           string    `json:"owner"`
	Channel         Channel   `json:"channel"`
	CreatedAt       time.Time `json:"created_at"`
	ClosedAt        time.Time `json:"closed_at,omitzero"`
	Category        string    `json:"category,omitempty"`
	Prevention      string    `json:"prevention,omitempty"`
	Reopens         int       `json:"reopens"`
	FirstResponseAt time.Time `json:"first_response_at,omitzero"`
	PromisedBy      time.Time `json:"promised_by,omitzero"`
	Breaches        []string  `json:"breaches,omitempty"`
	Promises        int       `json:"promises,omitempty"`
	PromisesKept    int       `json:"promises_kept,omitempty"`
	PromisesBroken  int       `json:"promises_broken,omitempty"`
	CSAT            int       `json:"csat,omitempty"`
}

// ReportView is the complaint as the report sees it.
func (c Complaint) ReportView() ReportView {
	return ReportView{ID: c.ID, Status: c.Status, Owner: c.Owner, Channel: c.Channel,
		CreatedAt: c.CreatedAt, ClosedAt: c.ClosedAt, Category: c.Category, Prevention: c.Prevention,
		Reopens: c.Reopens, FirstResponseAt: c.FirstResponseAt, PromisedBy: c.PromisedBy, Breaches: c.Breaches,
		Promises: c.Promises, PromisesKept: c.PromisesKept, PromisesBroken: c.PromisesBroken, CSAT: c.CSAT}
}

func reportViews(cs []Complaint) []ReportView {
	out := make([]ReportView, len(cs))
	for i, c := range cs {
		out[i] = c.ReportView()
	}
	return out
}
