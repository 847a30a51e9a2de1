package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/forgetmenot/forgetmenot/internal/httpx"
	"github.com/forgetmenot/forgetmenot/internal/privacy"
)

// Privacy exports and erases customers (issue 16).
type Privacy interface {
	Export(ctx context.Context, customer string) (privacy.Export, error)
	Erase(ctx context.Context, req privacy.EraseRequest) (privacy.EraseResult, error)
	Log(ctx context.Context, limit int64) ([]map[string]string, error)
}

// EraseRequest is the body of POST /v1/customers/{key}/erase.
type EraseRequest struct {
	Reason string `json:"reason"`
	Actor  string `json:"actor"`
	// Force closes the customer's open complaints ("erased on request")
	// instead of refusing.
	Force bool `json:"force"`
	// Category is the root cause recorded on the complaints a forced
	// erasure closes (optional; one of the configured categories).
	Category string `json:"category,omitempty"`
}

// ErasureLog answers GET /v1/erasures: the audit of erasures, newest first.
type ErasureLog struct {
	Erasures []map[string]string `json:"erasures"`
}

// PrivacyRoutes are the /v1 routes of export and erasure, mounted by the
// daemon; all need the API token. {key} is an e-mail address or a customer
// key (chat:<session>, webhook:<id>, forum:<user id>).
func PrivacyRoutes(access Access, svc Privacy, log *slog.Logger) map[string]http.Handler {
	if log == nil {
		log = slog.Default()
	}
	p := &privacyRoutes{svc: svc, s: &server{log: log}}
	return map[string]http.Handler{
		"GET /v1/customers/{key}/export": access.Require(http.HandlerFunc(p.export)),
		"POST /v1/customers/{key}/erase": access.Require(http.HandlerFunc(p.erase)),
		"GET /v1/erasures":               access.Require(http.HandlerFunc(p.log)),
	}
}

type privacyRoutes struct {
	svc Privacy
	s   *server
}

// export answers with the JSON document, or with ?format=text a readable one.
func (p *privacyRoutes) export(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "text" {
		httpx.WriteError(w, http.StatusBadRequest, "format must be json or text", "format")
		return
	}
	ex, err := p.svc.Export(r.Context(), r.PathValue("key"))
	if err != nil {
		p.s.fail(w, err)
		return
	}
	// Personal data: not for shared caches.
	w.Header().Set("Cache-Control", "no-store")
	if format == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_ = ex.WriteText(w)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, ex)
}

func (p *privacyRoutes) erase(w http.ResponseWriter, r *http.Request) {
	var req EraseRequest
	if !decodeBody(w, r, &req) {
		return
	}
	res, err := p.svc.Erase(r.Context(), privacy.EraseRequest{Customer: r.PathValue("key"), Reason: req.Reason, Actor: req.Actor, Force: req.Force, Category: req.Category})
	if err != nil {
		p.s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, res)
}

func (p *privacyRoutes) log(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.ParseInt(r.URL.Query().Get("limit"), 10, 64)
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	recs, err := p.svc.Log(r.Context(), limit)
	if err != nil {
		p.s.fail(w, err)
		return
	}
	if recs == nil {
		recs = []map[string]string{}
	}
	httpx.WriteJSON(w, http.StatusOK, ErasureLog{Erasures: recs})
}
