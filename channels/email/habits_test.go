package email

import (
	"strings"
	"testing"
)

// TestEncodedWordsInQuotedDisplayNames: mail programs put RFC 2047 encoded
// words inside quotes (which the RFC does not allow) and every mail program
// decodes them anyway; so do we, or the acknowledgement says
// "Dear =?Windows-1252?B?…?=".
func TestEncodedWordsInQuotedDisplayNames(t *testing.T) {
	tests := []struct{ from, name string }{
		{`"=?Windows-1252?B?RnLpZOlyaXF1ZSBN/GxsZXI=?=" <f.muller@voorbeeld.fr>`, "Frédérique Müller"},
		{`"=?utf-8?Q?J=C3=A9r=C3=B4me?= Dupont" <jd@voorbeeld.fr>`, "Jérôme Dupont"},
		{`"=?iso-8859-1?q?Jan_de_Bo=EBr?=" <jan@voorbeeld.nl>`, "Jan de Boër"},
		{`=?utf-8?B?RWxpbmUgSmFuc3PDqW5z?= <eline@voorbeeld.be>`, "Eline Jansséns"},
		{`"Plain =? Name" <plain@voorbeeld.nl>`, "Plain =? Name"},
		{`"=?bogus-charset?B?SGFsbG8=?=" <bogus@voorbeeld.nl>`, "=?bogus-charset?B?SGFsbG8=?="},
	}
	for _, tc := range tests {
		raw := "From: " + tc.from + "\r\nTo: support@winkel.example\r\nSubject: Vraag\r\nMessage-ID: <n1@voorbeeld.nl>\r\n\r\nHallo.\r\n"
		m, err := Parse([]byte(raw), testOpts)
		if err != nil {
			t.Fatalf("%s: %v", tc.from, err)
		}
		if m.Customer.Name != tc.name {
			t.Errorf("From %s: name %q, want %q", tc.from, m.Customer.Name, tc.name)
		}
		if strings.Contains(m.Metadata[MetaFrom], "=?") != strings.Contains(tc.name, "=?") {
			t.Errorf("From %s: metadata from %q", tc.from, m.Metadata[MetaFrom])
		}
	}
}

// TestUnusableSenderIsMarkedUnreachable: a mail that gives no address we can
// write to says so (the router then neither acknowledges nor lets staff
// reply by e-mail); an unusable Reply-To is ignored for a usable From, and a
// usable Reply-To rescues an unusable From.
func TestUnusableSenderIsMarkedUnreachable(t *testing.T) {
	tests := []struct {
		name, headers string
		unreachable   string // substring; "" = reachable
		replyTo       string
	}{
		{"no From at all", "To: support@winkel.example\r\n", "no readable sender address", ""},
		{"From without a domain", "From: Bob <bob@extern>\r\n", `"bob@extern"`, ""},
		{"From that is no address", "From: undisclosed-recipients\r\n", "no readable sender address", ""},
		{"usable From", "From: Bob <bob@voorbeeld.nl>\r\n", "", ""},
		{"unusable Reply-To ignored", "From: Bob <bob@voorbeeld.nl>\r\nReply-To: bob@intern\r\n", "", ""},
		{"usable Reply-To rescues", "From: Bob <bob@extern>\r\nReply-To: bob@voorbeeld.nl\r\n", "", "bob@voorbeeld.nl"},
		{"Reply-To our own address ignored", "From: Bob <bob@voorbeeld.nl>\r\nReply-To: Support@Winkel.example\r\n", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.headers + "Subject: Hulp\r\nMessage-ID: <u1@voorbeeld.nl>\r\n\r\nIk heb hulp nodig.\r\n"
			m, err := Parse([]byte(raw), testOpts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.unreachable == "" && m.Unreachable != "" {
				t.Errorf("Unreachable = %q, want reachable", m.Unreachable)
			}
			if tc.unreachable != "" && !strings.Contains(m.Unreachable, tc.unreachable) {
				t.Errorf("Unreachable = %q, want it to say %q", m.Unreachable, tc.unreachable)
			}
			if m.Metadata[MetaReplyTo] != tc.replyTo {
				t.Errorf("reply-to %q, want %q", m.Metadata[MetaReplyTo], tc.replyTo)
			}
		})
	}
}
