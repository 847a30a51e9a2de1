package router

import (
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
