package router

import (
	"errors"
	"fmt"
	"testing"
)

// Every error about one complaint names it once, and a missing one stays
// an ErrNotFound (the API's 404, the CLI's exit 1) whatever the store said.
func TestComplaintErrorsNameTheComplaintOnce(t *testing.T) {
	storeNotFound := fmt.Errorf("complaint %s: %w", "C-9999", ErrNotFound)
	redisDown := errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	cases := []struct {
		name     string
		err      error
		want     string
		notFound bool
	}{
		{"store says not found", loadErr("C-9999", storeNotFound), "complaint C-9999: not found", true},
		{"bare not found", loadErr("C-9999", ErrNotFound), "complaint C-9999: not found", true},
		{"load fails", loadErr("C-1", redisDown), "loading complaint C-1: " + redisDown.Error(), false},
		{"commit names it", complaintErr(NamesComplaint("C-1", fmt.Errorf("committing change to C-1: %w", redisDown)), "C-1", "updating complaint C-1", "updating complaint"),
			"updating complaint: committing change to C-1: " + redisDown.Error(), false},
		{"conflict names it", complaintErr(NamesComplaint("C-1", fmt.Errorf("C-1 changed meanwhile (7): %w", ErrConflict)), "C-1", "updating complaint C-1", "updating complaint"),
			"updating complaint: C-1 changed meanwhile (7): concurrent change", false},
		{"another complaint named", complaintErr(NamesComplaint("C-10", errors.New("C-10 changed meanwhile")), "C-1", "updating complaint C-1", "updating complaint"),
			"updating complaint C-1: C-10 changed meanwhile", false},
		// Text is not a fact: the id in words nobody vouched for (a
		// server's message echoing data) does not stand for naming it.
		{"the id in unmarked words", complaintErr(errors.New("ERR script failed near C-1"), "C-1", "updating complaint C-1", "updating complaint"),
			"updating complaint C-1: ERR script failed near C-1", false},
		{"timeline entry names it", timelineErr("C-7", NamesComplaint("C-7", errors.New("decoding timeline entry 3 of C-7: unexpected end of JSON input"))),
			"loading the timeline: decoding timeline entry 3 of C-7: unexpected end of JSON input", false},
		{"a duplicate names where it went", complaintErr(fmt.Errorf("M-1: %w", &AppliedError{ComplaintID: "C-3"}), "C-3", "updating complaint C-3", "updating complaint"),
			"updating complaint: M-1: already applied to C-3", false},
		{"a wrapped wrap names it once", complaintErr(loadErr("C-1", redisDown), "C-1", "firing reminder of C-1", "firing reminder"),
			"firing reminder: loading complaint C-1: " + redisDown.Error(), false},
		{"timer of a missing complaint", complaintErr(loadErr("C-9999", storeNotFound), "C-9999", "firing reminder of C-9999", "firing reminder"),
			"firing reminder: complaint C-9999: not found", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("error = %q, want %q", got, tc.want)
			}
			if got := errors.Is(tc.err, ErrNotFound); got != tc.notFound {
				t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", got, tc.notFound)
			}
		})
	}
	var nf *NotFoundError
	if err := loadErr("C-9999", storeNotFound); !errors.As(err, &nf) || nf.ID != "C-9999" || !errors.Is(nf.Unwrap(), ErrNotFound) {
		t.Errorf("a missing complaint's error must be a *NotFoundError keeping the store's error: %#v", err)
	}
}
