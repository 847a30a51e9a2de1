package router

import (
	"context"
	"errors"
	"fmt"
	"time"
)

var (
	// ErrNotFound means the complaint (or owner, or message) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned by a Store when a guard of a Change failed:
	// someone changed the complaint in the meantime. The change was not applied
	// and should be recomputed from fresh state.
	ErrConflict = errors.New("concurrent change")
	// ErrIDTaken is the ErrConflict of a new complaint whose id is held by a
	// complaint already: the change must be planned again under another id
	// (the store's counter went back, after Redis lost data).
	ErrIDTaken = fmt.Errorf("%w: the new complaint's id is taken", ErrConflict)
	// ErrDuplicate is returned by a Store when a Change keyed by a message was
	// already applied: redelivery must do nothing twice.
	ErrDuplicate = errors.New("already applied")
	// ErrSourceReused is returned on ingest when a sender's idempotency key
	// (channel and source id) was used before for a message with other
	// content: answering "duplicate" would silently drop the new one.
	ErrSourceReused = errors.New("source id already used for a different message")
	// ErrInvalidState means the operation does not fit the complaint's state,
	// such as closing a closed complaint.
	ErrInvalidState = errors.New("not possible in the current state")
)

// NotFoundError names the thing that does not exist, once: "complaint
// C-9999: not found". Layers that each named the id again made
// "loading complaint C-9999: complaint C-9999: not found", which operators
// read in the CLI and the API's error body. It is an ErrNotFound.
type NotFoundError struct {
	Kind string // "complaint"
	ID   string
	// Err is what the store said, kept for errors.Is and errors.As.
	Err error
}

func (e *NotFoundError) Error() string { return e.Kind + " " + e.ID + ": not found" }

// Is makes a NotFoundError an ErrNotFound, whatever Err is.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

func (e *NotFoundError) Unwrap() error { return e.Err }

// complaintNotFound is the error for a complaint that does not exist.
func complaintNotFound(id string, err error) error {
	return &NotFoundError{Kind: "complaint", ID: id, Err: err}
}

// loadErr wraps a failure to load complaint id. A missing complaint is
// said once, whatever words the store used; other failures (Redis down, a
// stored value that does not decode) keep the store's words after ours.
func loadErr(id string, err error) error {
	if errors.Is(err, ErrNotFound) {
		return complaintNotFound(id, err)
	}
	return complaintErr(err, id, "loading complaint "+id, "loading complaint")
}

// timelineErr wraps a failure to load complaint id's timeline.
func timelineErr(id string, err error) error {
	return complaintErr(err, id, "loading the timeline of "+id, "loading the timeline")
}

// complaintErr wraps err with what the router was doing to complaint id:
// doing names the complaint ("updating complaint C-1"), short says the
// same without it, for an err that already names the complaint, so the id
// is said once. Whether it does is a fact the error carries (a
// ComplaintError, NotFoundError or AppliedError of that id), not something
// read from its text.
func complaintErr(err error, id, doing, short string) error {
	if namesComplaint(err, id) {
		return fmt.Errorf("%s: %w", short, err)
	}
	// Now it names the complaint: a caller further up says it once too.
	return NamesComplaint(id, fmt.Errorf("%s: %w", doing, err))
}

// namesComplaint reports whether err says it is about complaint id.
func namesComplaint(err error, id string) bool {
	if id == "" {
		return false
	}
	var named *ComplaintError
	if errors.As(err, &named) && named.ID == id {
		return true
	}
	var missing *NotFoundError
	if errors.As(err, &missing) && missing.Kind == "complaint" && missing.ID == id {
		return true
	}
	var applied *AppliedError
	return errors.As(err, &applied) && applied.ComplaintID == id
}

// ComplaintError is a Store's error whose words name the complaint it is
// about ("committing change to C-1: …"), so that the router, saying what it
// was doing, does not name it again. Its text is the store's.
type ComplaintError struct {
	ID  string
	Err error
}

func (e *ComplaintError) Error() string { return e.Err.Error() }

func (e *ComplaintError) Unwrap() error { return e.Err }

// NamesComplaint marks err, whose words name complaint id, as being about
// it (nil stays nil).
func NamesComplaint(id string, err error) error {
	if err == nil {
		return nil
	}
	return &ComplaintError{ID: id, Err: err}
}

// AppliedError is the ErrDuplicate a Store returns when it knows which
// complaint the change was applied to before.
type AppliedError struct{ ComplaintID string }

func (e *AppliedError) Error() string { return "already applied to " + e.ComplaintID }

// Is makes an AppliedError an ErrDuplicate.
func (e *AppliedError) Is(target error) bool { return target == ErrDuplicate }

// ValidationError names the input field that is wrong and why.
type ValidationError struct {
	Field   string
	Problem string
	// Code, where set, names the problem for callers that word it in the
	// customer's language (the satisfaction page): one of the Problem…
	// constants.
	Code string
}

// Codes of the problems a customer can meet, worded by the pages they see.
const (
	ProblemCSATScore     = "csat_score"     // not one of the five answers
	ProblemCSATSignature = "csat_signature" // the link was altered
	ProblemCSATReopened  = "csat_reopened"  // the complaint is open again
	ProblemCSATExpired   = "csat_expired"   // asked too long after the close
	ProblemCSATChanged   = "csat_changed"   // changed too often already
)

// invalidAs is invalid with the problem's code.
func invalidAs(code, field, format string, args ...any) error {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...), Code: code}
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Problem }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks an error that no retry can fix (malformed payload, unknown
// recipient). Queues dead-letter such work at once instead of retrying it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// RetryAfterError asks for a retry no sooner than After (for example a rate
// limit's Retry-After).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err with the earliest moment a retry makes sense.
func RetryAfter(err error, after time.Duration) error {
	return &RetryAfterError{Err: err, After: after}
}

type lastAttemptKey struct{}

// WithLastAttempt marks ctx as the last attempt at a piece of work: no retry
// follows a failure. A handler that would leave a passing failure to a retry
// (Slack down for a while) must then do what it does when it fails for good
// (try another route, raise the alarm), or the failure goes unnoticed.
func WithLastAttempt(ctx context.Context) context.Context {
	return context.WithValue(ctx, lastAttemptKey{}, true)
}

// LastAttempt reports whether ctx is the last attempt at its work.
func LastAttempt(ctx context.Context) bool {
	last, _ := ctx.Value(lastAttemptKey{}).(bool)
	return last
}
