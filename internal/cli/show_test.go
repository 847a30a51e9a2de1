package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/router"
)

// What must hold: when the customer wrote again after the first answer, the
// answer now due is shown (it was hidden behind "Answered").
func TestShowNamesTheAnswerDueNow(t *testing.T) {
	first := time.Date(2026, 12, 2, 12, 55, 0, 0, time.UTC)
	due := time.Date(2026, 12, 2, 17, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printComplaint(&b, api.ComplaintDetail{Complaint: router.Complaint{ID: "C-1021", Status: router.StatusOpen, Owner: "anna", Team: "support",
		FirstResponseAt: first, RespondBy: due}})
	out := b.String()
	if !strings.Contains(out, "Respond by: "+stamp(due)) || !strings.Contains(out, "Answered:  "+stamp(first)) {
		t.Errorf("show:\n%s\nwant the answer due at %s and the first answer", out, stamp(due))
	}
}
