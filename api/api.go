// Package api serves forgetmenot's HTTP management API (/v1), the health and
// readiness probes, and mounts the ingest and metrics handlers it is given.
// The CLI is a client of this API, so it works the same against the embedded
// and a real Redis.
package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/httpx"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
)

// Complaints is the complaint service the API exposes (the router).
type Complaints interface {
	Complaint(ctx context.Context, id string) (router.Complaint, []router.Entry, error)
	Complaints(ctx context.Context, f router.Filter) ([]router.Complaint, error)
	CloseWith(ctx context.Context, id, actor string, closing router.Closing) (router.Complaint, error)
	Reassign(ctx context.Context, id, actor, to, reason string) (router.Complaint, error)
	Merge(ctx context.Context, fromID, intoID, actor, reason string) (router.Complaint, error)
	Reply(ctx context.Context, id, actor, body string) (router.Complaint, error)
	Acknowledge(ctx context.Context, id, actor string) (router.Complaint, error)
	AddNote(ctx context.Context, id, actor, text, key string) (router.Complaint, error)
	Promise(ctx context.Context, id, actor string, by time.Time, note string, tellCustomer bool) (router.Complaint, error)
	Owners(ctx context.Context) ([]router.OwnerStatus, error)
	MessageComplaint(ctx context.Context, messageID string) (router.Complaint, bool, error)
}

// DeadLetters lists and retries failed work.
type DeadLetters interface {
	DeadLetters(ctx context.Context, limit int) ([]queue.DeadLetter, error)
	RetryDeadLetter(ctx context.Context, id string) error
}

// Pinger tells whether the store is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config wires the API.
type Config struct {
	Complaints  Complaints
	DeadLetters DeadLetters
	Store       Pinger
	// Access protects /v1 (except ingest, which has its own signature) and
	// the details of /readyz.
	Access Access
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the
	// real client; nobody else's is believed.
	TrustedProxies httpx.TrustedProxies
	// Ingest serves POST /v1/messages; Metrics serves GET /metrics.
	Ingest  http.Handler
	Metrics http.Handler
	// MetricsToken, when set, is the bearer token /metrics asks for
	// (Prometheus: authorization.credentials).
	MetricsToken string
	// Routes are further handlers (channels, integrations) mounted as given;
	// they carry their own authentication.
	Routes map[string]http.Handler
	// Checks report problems of components for /readyz details. A failing
	// check does not make the daemon unready: it still takes in complaints.
	Checks map[string]func(context.Context) error
	Logger *slog.Logger
}

type server struct {
	cfg Config
	log *slog.Logger
}

// New builds the HTTP handler of the daemon.
func New(cfg Config) http.Handler {
	s := &server{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", requireBearer(cfg.MetricsToken, "forgetmenot-metrics", cfg.Metrics))
	}
	if cfg.Ingest != nil {
		mux.Handle("/v1/messages", cfg.Ingest)
	}
	mux.Handle("GET /v1/messages/{id}", s.auth(s.message))
	mux.Handle("GET /v1/complaints", s.auth(s.list))
	mux.Handle("GET /v1/complaints/{id}", s.auth(s.show))
	mux.Handle("POST /v1/complaints/{id}/close", s.auth(s.close))
	mux.Handle("POST /v1/complaints/{id}/reassign", s.auth(s.reassign))
	mux.Handle("POST /v1/complaints/{id}/merge", s.auth(s.merge))
	mux.Handle("POST /v1/complaints/{id}/reply", s.auth(s.reply))
	mux.Handle("POST /v1/complaints/{id}/acknowledge", s.auth(s.acknowledge))
	mux.Handle("POST /v1/complaints/{id}/notes", s.auth(s.note))
	mux.Handle("POST /v1/complaints/{id}/promise", s.auth(s.promise))
	mux.Handle("GET /v1/owners", s.auth(s.owners))
	mux.Handle("GET /v1/deadletters", s.auth(s.deadLetters))
	mux.Handle("POST /v1/deadletters/{id}/retry", s.auth(s.retryDeadLetter))
	for pattern, h := range cfg.Routes {
		mux.Handle(pattern, h)
	}
	return httpx.RealClient(cfg.TrustedProxies, jsonMisses(mux))
}

// jsonMisses answers requests no route takes (an unknown path: 404; a known
// path with another method: 405 with Allow) in the API's JSON error shape
// instead of the ServeMux's plain text, so a client reads every refusal the
// same way.
func jsonMisses(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// The mux's own answer tells which miss it is (and the Allow header).
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusMethodNotAllowed:
			if allow := rec.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			httpx.WriteError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow")), "")
		case http.StatusNotFound:
			httpx.WriteError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s (a feature not configured on this daemon, or a daemon older than its client)", r.Method, r.URL.Path), "")
		default: // a redirect or another answer of the mux: pass it on as it is
			mux.ServeHTTP(w, r)
		}
	})
}

// statusRecorder keeps the status and headers a handler writes, and drops
// its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }
func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}
func (s *statusRecorder) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(b), nil
}

// ComplaintID normalises a complaint reference as people type it: "c-1001"
// and " C-1001 " are C-1001. Anything else is returned as it is (and not
// found).
func ComplaintID(v string) string { return router.CanonicalComplaintID(v) }

// complaintID is the complaint id of the request's path, normalised.
func complaintID(r *http.Request) string { return ComplaintID(r.PathValue("id")) }

func (s *server) auth(h http.HandlerFunc) http.Handler { return s.cfg.Access.Require(h) }

// Access decides who may use the management API.
type Access struct {
	// Token is the bearer token (FORGETMENOT_API_TOKEN); empty admits
	// callers on this host only, judged on the real client (see httpx).
	Token string
	// Open admits everyone without a token (FORGETMENOT_INSECURE_OPEN_API):
	// only for a network where something else guards the daemon.
	Open bool
}

// Allows reports whether r may use the API.
func (a Access) Allows(r *http.Request) bool {
	switch {
	case a.Token != "":
		return bearerMatches(r, a.Token)
	case a.Open:
		return true
	default:
		return httpx.IsLoopback(r)
	}
}

// Require admits the requests Access allows and answers the others with
// what they lack. Components protect their management routes with it.
func (a Access) Require(h http.Handler) http.Handler {
	if a.Token != "" {
		return requireBearer(a.Token, "forgetmenot", h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.Allows(r) {
			httpx.WriteError(w, http.StatusForbidden, "no API token is configured, so the API answers callers on this host only, addressed as localhost and not sent by a web page of another site (a request relayed by a proxy is not local unless FORGETMENOT_TRUSTED_PROXIES names the proxy); set FORGETMENOT_API_TOKEN", "")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// requireBearer admits requests carrying "Authorization: Bearer <token>";
// an empty token admits everyone.
func requireBearer(token, realm string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !bearerMatches(r, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
			httpx.WriteError(w, http.StatusUnauthorized, "missing or wrong bearer token", "")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func bearerMatches(r *http.Request, token string) bool {
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	// The scheme is case-insensitive (RFC 7235): "bearer" is "Bearer".
	return ok && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// ready answers the readiness probe: 200 while Redis answers, else 503, for
// everyone. What is wrong (component errors, which may name owners or
// servers) is shown only to callers the API admits.
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	details := s.cfg.Access.Allows(r)
	if err := s.cfg.Store.Ping(ctx); err != nil {
		res := map[string]string{"status": "unavailable"}
		if details {
			res["redis"] = err.Error()
		}
		httpx.WriteJSON(w, http.StatusServiceUnavailable, res)
		return
	}
	res := map[string]string{"status": "ready"}
	if details {
		res["redis"] = "ok"
	}
	for name, check := range s.cfg.Checks {
		err := check(ctx)
		if err != nil {
			res["status"] = "degraded"
		}
		if details {
			res[name] = "ok"
			if err != nil {
				res[name] = err.Error()
			}
		}
	}
	httpx.WriteJSON(w, http.StatusOK, res)
}

// MessageStatus answers GET /v1/messages/{id}.
type MessageStatus struct {
	MessageID   string `json:"message_id"`
	ComplaintID string `json:"complaint_id"`
	Owner       string `json:"owner"`
	Status      string `json:"status"`
}

func (s *server) message(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, found, err := s.cfg.Complaints.MessageComplaint(r.Context(), id)
	if err != nil {
		s.fail(w, err)
		return
	}
	if !found {
		httpx.WriteError(w, http.StatusNotFound, fmt.Sprintf("message %s is not on a complaint (yet): unknown, still queued, or in the dead letters", id), "")
		return
	}
	httpx.WriteJSON(w, http.StatusOK, MessageStatus{MessageID: id, ComplaintID: c.ID, Owner: c.Owner, Status: string(c.Status)})
}

// ComplaintList answers GET /v1/complaints.
type ComplaintList struct {
	Complaints []router.Complaint `json:"complaints"`
	Count      int                `json:"count"`
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := router.Filter{Status: router.Status(q.Get("status")), Owner: q.Get("owner"), Customer: q.Get("customer")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			httpx.WriteError(w, http.StatusBadRequest, "limit must be a positive number", "limit")
			return
		}
		f.Limit = n
	}
	cs, err := s.cfg.Complaints.Complaints(r.Context(), f)
	if err != nil {
		s.fail(w, err)
		return
	}
	if cs == nil {
		cs = []router.Complaint{}
	}
	httpx.WriteJSON(w, http.StatusOK, ComplaintList{Complaints: cs, Count: len(cs)})
}

// ComplaintDetail answers GET /v1/complaints/{id}: the complaint and its
// whole timeline of messages and events.
type ComplaintDetail struct {
	Complaint router.Complaint `json:"complaint"`
	Timeline  []router.Entry   `json:"timeline"`
}

func (s *server) show(w http.ResponseWriter, r *http.Request) {
	c, tl, err := s.cfg.Complaints.Complaint(r.Context(), complaintID(r))
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, ComplaintDetail{Complaint: c, Timeline: tl})
}

// CloseRequest is the body of POST /v1/complaints/{id}/close.
type CloseRequest struct {
	Resolution string `json:"resolution"`
	Category   string `json:"category"`
	Prevention string `json:"prevention,omitempty"`
	Actor      string `json:"actor"`
}

func (s *server) close(w http.ResponseWriter, r *http.Request) {
	var req CloseRequest
	if !decodeBody(w, r, &req) {
		return
	}
	s.respond(w)(s.cfg.Complaints.CloseWith(r.Context(), complaintID(r), req.Actor,
		router.Closing{Resolution: req.Resolution, Category: req.Category, Prevention: req.Prevention}))
}

// ReassignRequest is the body of POST /v1/complaints/{id}/reassign.
type ReassignRequest struct {
	Owner  string `json:"owner"`
	Reason string `json:"reason"`
	Actor  string `json:"actor"`
}

func (s *server) reassign(w http.ResponseWriter, r *http.Request) {
	var req ReassignRequest
	if !decodeBody(w, r, &req) {
		return
	}
	s.respond(w)(s.cfg.Complaints.Reassign(r.Context(), complaintID(r), req.Actor, req.Owner, req.Reason))
}

// MergeRequest is the body of POST /v1/complaints/{id}/merge: the complaint
// in the path is merged into Into.
type MergeRequest struct {
	Into   string `json:"into"`
	Reason string `json:"reason"`
	Actor  string `json:"actor"`
}

func (s *server) merge(w http.ResponseWriter, r *http.Request) {
	var req MergeRequest
	if !decodeBody(w, r, &req) {
		return
	}
	s.respond(w)(s.cfg.Complaints.Merge(r.Context(), complaintID(r), ComplaintID(req.Into), req.Actor, req.Reason))
}

// ReplyRequest is the body of POST /v1/complaints/{id}/reply.
type ReplyRequest struct {
	Body  string `json:"body"`
	Actor string `json:"actor"`
}

func (s *server) reply(w http.ResponseWriter, r *http.Request) {
	var req ReplyRequest
	if !decodeBody(w, r, &req) {
		return
	}
	s.respond(w)(s.cfg.Complaints.Reply(r.Context(), complaintID(r), req.Actor, req.Body))
}

// ActorRequest is the body of POST /v1/complaints/{id}/acknowledge.
type ActorRequest struct {
	Actor string `json:"actor"`
}

func (s *server) acknowledge(w http.ResponseWriter, r *http.Request) {
	var req ActorRequest
	if !decodeBody(w, r, &req) {
		return
	}
	s.respond(w)(s.cfg.Complaints.Acknowledge(r.Context(), complaintID(r), req.Actor))
}

// NoteRequest is the body of POST /v1/complaints/{id}/notes.
type NoteRequest struct {
	Text  string `json:"text"`
	Actor string `json:"actor"`
	// Key makes the note idempotent: the same key again records nothing.
	Key string `json:"key"`
}

func (s *server) note(w http.ResponseWriter, r *http.Request) {
	var req NoteRequest
	if !decodeBody(w, r, &req) {
		return
	}
	s.respond(w)(s.cfg.Complaints.AddNote(r.Context(), complaintID(r), req.Actor, req.Text, req.Key))
}

// PromiseRequest is the body of POST /v1/complaints/{id}/promise.
type PromiseRequest struct {
	// By is an RFC 3339 time: "2026-11-26T14:00:00+01:00".
	By           string `json:"by"`
	Note         string `json:"note"`
	TellCustomer bool   `json:"tell_customer"`
	Actor        string `json:"actor"`
}

func (s *server) promise(w http.ResponseWriter, r *http.Request) {
	var req PromiseRequest
	if !decodeBody(w, r, &req) {
		return
	}
	by, err := time.Parse(time.RFC3339, req.By)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "by must be an RFC 3339 time such as 2026-11-26T14:00:00+01:00", "by")
		return
	}
	s.respond(w)(s.cfg.Complaints.Promise(r.Context(), complaintID(r), req.Actor, by, req.Note, req.TellCustomer))
}

// respond writes a lifecycle step's result: the complaint, or the error.
func (s *server) respond(w http.ResponseWriter) func(router.Complaint, error) {
	return func(c router.Complaint, err error) {
		if err != nil {
			s.fail(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, c)
	}
}

// OwnerList answers GET /v1/owners.
type OwnerList struct {
	Owners []router.OwnerStatus `json:"owners"`
}

func (s *server) owners(w http.ResponseWriter, r *http.Request) {
	os, err := s.cfg.Complaints.Owners(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, OwnerList{Owners: os})
}

// DeadLetterList answers GET /v1/deadletters.
type DeadLetterList struct {
	DeadLetters []queue.DeadLetter `json:"dead_letters"`
}

func (s *server) deadLetters(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	dl, err := s.cfg.DeadLetters.DeadLetters(r.Context(), limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	if dl == nil {
		dl = []queue.DeadLetter{}
	}
	httpx.WriteJSON(w, http.StatusOK, DeadLetterList{DeadLetters: dl})
}

func (s *server) retryDeadLetter(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.cfg.DeadLetters.RetryDeadLetter(r.Context(), id); err != nil {
		if errors.Is(err, queue.ErrNoDeadLetter) {
			httpx.WriteError(w, http.StatusNotFound, err.Error(), "")
			return
		}
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"retried": id})
}

// maxAPIBody bounds management request bodies: they carry a few sentences.
const maxAPIBody = 64 << 10

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	if err != nil {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", maxAPIBody), "")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "body is not valid JSON for this request: "+strings.TrimPrefix(err.Error(), "json: "), "")
		return false
	}
	return true
}

// fail maps domain errors to statuses. Anything unexpected comes from the
// store, so it is reported as unavailable rather than as a client error.
func (s *server) fail(w http.ResponseWriter, err error) {
	var v *router.ValidationError
	switch {
	case errors.As(err, &v):
		httpx.WriteError(w, http.StatusBadRequest, v.Error(), v.Field)
	case errors.Is(err, router.ErrNotFound):
		httpx.WriteError(w, http.StatusNotFound, err.Error(), "")
	case errors.Is(err, router.ErrInvalidState):
		httpx.WriteError(w, http.StatusConflict, err.Error(), "")
	default:
		s.log.Error("api: request failed", "err", err)
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, http.StatusServiceUnavailable, "storage unavailable: "+err.Error(), "")
	}
}
