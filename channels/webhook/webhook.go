// Package webhook is the generic customer channel: forms, review sites and
// shops POST complaints as signed JSON. A message is acknowledged (2xx) only
// once it is durably queued; anything else gets a clear error and nothing is
// queued.
package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/cleantext"
	"github.com/forgetmenot/forgetmenot/internal/httpx"
	"github.com/forgetmenot/forgetmenot/internal/mailaddr"
	"github.com/forgetmenot/forgetmenot/router"
)

// Enqueuer stores an inbound message durably, once per (channel, source id).
type Enqueuer interface {
	Enqueue(ctx context.Context, msg router.Message) (id string, duplicate bool, err error)
}

// Config configures the handler.
type Config struct {
	Queue Enqueuer
	// Secrets verify X-Forgetmenot-Signature; none means callers on this
	// host only (the real client, see httpx.IsLoopback), unless Open.
	Secrets []string
	// Open accepts unsigned messages from everyone when there is no secret
	// (FORGETMENOT_INSECURE_OPEN_WEBHOOK).
	Open     bool
	MaxBytes int64
	Clock    func() time.Time
	Logger   *slog.Logger
}

// Handler serves POST /v1/messages.
type Handler struct {
	queue    Enqueuer
	secrets  [][]byte
	open     bool
	maxBytes int64
	clock    func() time.Time
	log      *slog.Logger
}

// New builds the handler.
func New(cfg Config) *Handler {
	h := &Handler{queue: cfg.Queue, open: cfg.Open, maxBytes: cfg.MaxBytes, clock: cfg.Clock, log: cfg.Logger}
	for _, s := range cfg.Secrets {
		h.secrets = append(h.secrets, []byte(s))
	}
	if h.maxBytes <= 0 {
		h.maxBytes = 1 << 20
	}
	if h.clock == nil {
		h.clock = time.Now
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h
}

// Request is the JSON body of POST /v1/messages.
type Request struct {
	SourceID    string            `json:"source_id"`
	Customer    CustomerJSON      `json:"customer"`
	Subject     string            `json:"subject"`
	Body        string            `json:"body"`
	Language    string            `json:"language"`
	ThreadKey   string            `json:"thread_key"`
	ComplaintID string            `json:"complaint_id"`
	Metadata    map[string]string `json:"metadata"`
}

// CustomerJSON is the customer object of a Request.
type CustomerJSON struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Response is the JSON answer to an accepted message.
type Response struct {
	MessageID string `json:"message_id"`
	Duplicate bool   `json:"duplicate"`
}

// enqueueTimeout bounds how long a sender waits for Redis before a 503.
const enqueueTimeout = 5 * time.Second

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpx.WriteError(w, http.StatusMethodNotAllowed, "use POST", "")
		return
	}
	if len(h.secrets) == 0 && !h.open && !httpx.IsLoopback(r) {
		httpx.WriteError(w, http.StatusForbidden, "no webhook secret is configured, so only callers on this host are accepted (a request relayed by a proxy is not local unless FORGETMENOT_TRUSTED_PROXIES names the proxy); set FORGETMENOT_WEBHOOK_SECRET", "")
		return
	}
	if r.ContentLength > h.maxBytes {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", h.maxBytes), "")
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpx.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is larger than %d bytes", h.maxBytes), "")
			return
		}
		httpx.WriteError(w, http.StatusBadRequest, "could not read the body: "+err.Error(), "")
		return
	}
	if len(h.secrets) > 0 {
		if err := verify(r.Header.Get(SignatureHeader), raw, h.clock(), h.secrets); err != nil {
			h.log.Warn("webhook: refused signature", "remote", httpx.ClientIP(r), "err", err)
			httpx.WriteError(w, http.StatusUnauthorized, err.Error(), "")
			return
		}
	}
	req, field, err := decode(raw)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, err.Error(), field)
		return
	}
	msg := req.message(h.clock())
	ctx, cancel := context.WithTimeout(r.Context(), enqueueTimeout)
	defer cancel()
	id, dup, err := h.queue.Enqueue(ctx, msg)
	if errors.Is(err, router.ErrSourceReused) {
		h.log.Warn("webhook: source_id reused for a different message; refused", "source_id", req.SourceID, "first", id)
		httpx.WriteError(w, http.StatusConflict, fmt.Sprintf("source_id %q was already used for a different message (%s): use a new source_id for a new message; a retry must send the same content", req.SourceID, id), "source_id")
		return
	}
	if err != nil {
		h.log.Error("webhook: could not queue message; the sender must retry", "source_id", req.SourceID, "err", err)
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, http.StatusServiceUnavailable, "the queue is unavailable; nothing was stored, retry later", "")
		return
	}
	status := http.StatusAccepted
	if dup {
		status = http.StatusOK
	}
	httpx.WriteJSON(w, status, Response{MessageID: id, Duplicate: dup})
}

var (
	complaintIDPattern = regexp.MustCompile(`^C-[0-9]{1,12}$`)
	languagePattern    = regexp.MustCompile(`^[a-z]{2}$`)
)

// Input limits, generous for real forms and tight enough to keep one message
// from bloating a complaint's timeline.
const (
	maxIDLen       = 256
	maxSubjectLen  = 998 // RFC 5322 line limit, so it fits a mail subject
	maxNameLen     = 200
	maxMetadata    = 50
	maxMetaKeyLen  = 64
	maxMetaValueLn = 2048
)

// decode parses and validates the body; on failure it names the field.
func decode(raw []byte) (Request, string, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, jsonErrorField(err), fmt.Errorf("body is not a valid message: %s", jsonErrorText(err))
	}
	// Anything but white space after the object is refused. (dec.More is not
	// enough: it reports false before a stray '}' or ']'.)
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, "", errors.New("body has data after the JSON object")
	}
	req.SourceID = strings.TrimSpace(req.SourceID)
	req.Customer.Email = strings.TrimSpace(req.Customer.Email)
	// As staff and customers write it: c-1042 is C-1042.
	req.ComplaintID = router.CanonicalComplaintID(req.ComplaintID)
	// A language code in any case ("NL", "Nl") is the code.
	req.Language = strings.ToLower(strings.TrimSpace(req.Language))
	checks := []struct {
		field string
		bad   bool
		why   string
	}{
		{"source_id", req.SourceID == "", "is required: the sender's unique id for this message (retries reuse it)"},
		{"source_id", len(req.SourceID) > maxIDLen, fmt.Sprintf("is longer than %d bytes", maxIDLen)},
		{"body", strings.TrimSpace(req.Body) == "", "is required: the customer's words"},
		{"subject", len(req.Subject) > maxSubjectLen, fmt.Sprintf("is longer than %d bytes", maxSubjectLen)},
		{"subject", strings.ContainsAny(req.Subject, "\r\n"), "must be one line"},
		{"customer.email", req.Customer.Email != "" && !mailaddr.Valid(req.Customer.Email), "is not an e-mail address"},
		{"customer.name", len(req.Customer.Name) > maxNameLen, fmt.Sprintf("is longer than %d bytes", maxNameLen)},
		{"customer.id", len(req.Customer.ID) > maxIDLen, fmt.Sprintf("is longer than %d bytes", maxIDLen)},
		{"thread_key", len(req.ThreadKey) > maxIDLen, fmt.Sprintf("is longer than %d bytes", maxIDLen)},
		{"source_id", !cleantext.Printable(req.SourceID), "must not contain control or bidi formatting characters"},
		{"customer.id", !cleantext.Printable(req.Customer.ID), "must not contain control or bidi formatting characters"},
		{"thread_key", !cleantext.Printable(req.ThreadKey), "must not contain control or bidi formatting characters"},
		{"complaint_id", req.ComplaintID != "" && !complaintIDPattern.MatchString(req.ComplaintID), "must look like C-1042"},
		{"language", req.Language != "" && !languagePattern.MatchString(req.Language), "must be a two-letter ISO 639-1 code like nl"},
		{"metadata", len(req.Metadata) > maxMetadata, fmt.Sprintf("has more than %d entries", maxMetadata)},
	}
	for _, c := range checks {
		if c.bad {
			return req, c.field, fmt.Errorf("%s %s", c.field, c.why)
		}
	}
	for k, v := range req.Metadata {
		if k == "" || len(k) > maxMetaKeyLen || len(v) > maxMetaValueLn {
			return req, "metadata", fmt.Errorf("metadata key %q: keys must be 1-%d bytes and values at most %d", k, maxMetaKeyLen, maxMetaValueLn)
		}
		if ReservedMetadataKey(k) {
			return req, "metadata." + k, fmt.Errorf("metadata key %q is reserved for forgetmenot's own use (keys starting with %q, and %s); choose another name",
				k, reservedPrefix, strings.Join(reservedKeys, ", "))
		}
	}
	return req, "", nil
}

// reservedPrefix starts every metadata key forgetmenot may give meaning to,
// now or later; reservedKeys are the names it used for its own facts before
// they moved to typed fields. A sender setting either is refused, so nothing
// from outside can pass for one of forgetmenot's own facts.
const reservedPrefix = "fmn"

var reservedKeys = []string{"no_auto_reply", "delivery_report_for", "delivery_status", "chat_session",
	"forum_topic_id", "forum_post_number", "forum_post_id", "forum_category"}

// ReservedMetadataKey reports whether a metadata key is forgetmenot's own.
func ReservedMetadataKey(k string) bool {
	k = strings.ToLower(strings.TrimSpace(k))
	return strings.HasPrefix(k, reservedPrefix) || slices.Contains(reservedKeys, k)
}

func (req Request) message(now time.Time) router.Message {
	msg := router.Message{
		Channel:  router.ChannelWebhook,
		SourceID: req.SourceID,
		Customer: router.Customer{ID: req.Customer.ID, Name: strings.TrimSpace(req.Customer.Name), Email: req.Customer.Email},
		Subject:  strings.TrimSpace(req.Subject), Body: req.Body, Language: req.Language,
		ComplaintID: req.ComplaintID, Metadata: req.Metadata, ReceivedAt: now.UTC(),
	}
	if req.ThreadKey != "" {
		msg.ThreadKeys = []string{"webhook:" + req.ThreadKey}
	}
	msg.Fingerprint = req.fingerprint()
	return msg
}

// fingerprint digests what the sender said, re-encoded so that a retry that
// orders its JSON differently is still the same message: the source id is
// an idempotency key, and reusing it for other content must not be taken
// for a retry.
func (req Request) fingerprint() string {
	canonical, err := json.Marshal(req) // struct fields in order, map keys sorted
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:8])
}

var unknownField = regexp.MustCompile(`unknown field "([^"]+)"`)

func jsonErrorField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return ""
}

func jsonErrorText(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field == "":
		return fmt.Sprintf("the body must be %s, not %s", jsonType(te.Type.Kind().String()), te.Value)
	case errors.As(err, &te):
		return fmt.Sprintf("%s must be %s, not %s", te.Field, jsonType(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.EOF):
		return "the body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonType(kind string) string {
	switch kind {
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	}
	return "a " + kind
}
