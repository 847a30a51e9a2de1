// Package parsefuzz fuzzes the e-mail parser. It lives apart from
// channels/email so that its test binary holds the parser and little else:
// the fuzz engine scans the coverage counters of everything linked after
// every input, and the e-mail package's own tests link Redis, IMAP and SMTP
// servers and Dovecot's harness, which made fuzzing ~8 times slower.
package parsefuzz

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/channels/email"
	"github.com/forgetmenot/forgetmenot/router"
)

// FuzzParse: no input panics the parser, whatever it accepts is a message
// the router can take (a source id and a body), and it says whether the
// customer can be written to exactly when there is no deliverable address. Seeds are the real
// mails of channels/email/testdata.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("../testdata/*.eml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed mails in ../testdata (%v)", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	opts := email.ParseOptions{OwnAddresses: []string{"support@winkel.example"}, PlusAddressing: true}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := email.Parse(raw, opts)
		if err != nil {
			if !errors.Is(err, email.ErrUnparseable) {
				t.Fatalf("error not marked unparseable: %v", err)
			}
			return
		}
		if m.SourceID == "" || strings.TrimSpace(m.Body) == "" || m.Channel != router.ChannelEmail {
			t.Fatalf("unroutable message: %+v", m)
		}
		// Either there is an address we can write to, or the message says
		// why not: never an acknowledgement that can only fail.
		reachable := email.Deliverable(m.Customer.Email) || email.Deliverable(m.Metadata[email.MetaReplyTo])
		if reachable == (m.Unreachable != "") {
			t.Fatalf("reachable=%v but Unreachable=%q (from %q, reply-to %q)", reachable, m.Unreachable, m.Customer.Email, m.Metadata[email.MetaReplyTo])
		}
	})
}
