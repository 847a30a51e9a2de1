package email

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/router"
)

var testOpts = ParseOptions{OwnAddresses: []string{"support@winkel.example"}, PlusAddressing: true}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestParseRealWorldMail: every fixture becomes a message with the right
// sender, decoded subject and text, and nothing the customer wrote is lost.
func TestParseRealWorldMail(t *testing.T) {
	tests := []struct {
		file        string
		email, name string
		subject     string
		bodyHas     []string
		bodyLacks   []string
		quotedHas   string
		sourceID    string // "" = just non-empty; "sha256:" prefix checked as such
		threadKeys  []string
		complaintID string
		language    string
		noAutoReply string // substring of the reason, "" = acknowledgement allowed
		attachments []Attachment
		notesHas    string
	}{
		{
			file: "nl_iso8859_qp.eml", email: "jan.deboer@voorbeeld.nl", name: "Jan de Boër",
			subject:    "Re: Bestelling #104-2233 nog niet ontvangen - waar blijft mijn pakket? (één week te laat)",
			bodyHas:    []string{"er één keer voor thuisgebleven, dat doe ik niet nóg een keer.", "Tel. 06-12345678"},
			bodyLacks:  []string{"Op ma 3 nov.", "Bedankt voor uw bestelling"},
			quotedHas:  "> Bedankt voor uw bestelling.",
			sourceID:   "AM0PR07MB4412C1D2E3F4A5B6@AM0PR07MB4412.eurprd07.prod.outlook.com",
			threadKeys: []string{"email:ack-77812@winkel.example", "email:AM0PR07MB4412C1D2E3F4A5B6@AM0PR07MB4412.eurprd07.prod.outlook.com"},
			language:   "nl",
		},
		{
			file: "windows1252.eml", email: "m.oneill@example.ie", name: "Margaret O'Neill", subject: "Where is my table?",
			bodyHas: []string{"the “Nordic” oak table (€ 649,00)", "a week – it has not", "what’s going on?"},
		},
		{
			file: "utf8_base64.eml", email: "eline.janssens@voorbeeld.be", name: "Eline Jansséns", subject: "Lamp kapot aangekomen 😞",
			bodyHas: []string{"kapot aangekomen 😞 — het glas is gebroken"},
		},
		{
			file: "outlook_html_only.eml", email: "priya.raman@contoso.example", name: "Priya Raman", subject: "RE: Your invoice INV-2025-0912",
			bodyHas:   []string{"The invoice INV-2025-0912 charges us for 12 chairs", "corrected invoice & credit", "customer portal (https://portal.example.com/orders/5531)", "Kind regards,\nPriya Raman"},
			bodyLacks: []string{"<div", "P {margin-top", "please find your invoice attached"},
			quotedHas: "From: Billing <billing@winkel.example>\nSent: Monday, November 3, 2025 16:20",
			language:  "en",
		},
		{
			file: "alternative_inline_image.eml", email: "sophie.visser@gmail.example", subject: "Krassen op de kast",
			bodyHas:     []string{"diepe krassen op de zijkant (zie\nfoto)"},
			bodyLacks:   []string{"<div"},
			attachments: []Attachment{{Name: "krassen.png", Type: "image/png", Size: 1032, Inline: true}},
		},
		{
			file: "attachments.eml", email: "k.bakker@voorbeeld.nl", subject: "Factuur klopt niet + foto van de schade",
			bodyHas: []string{"dubbel is afgeschreven"}, language: "nl",
			attachments: []Attachment{{Name: "factuur 2025-118.pdf", Type: "application/pdf", Size: 3016}, {Name: "schade verpakkingé.jpg", Type: "image/jpeg", Size: 5124}},
		},
		{
			file: "forwarded.eml", email: "pieter.smit@gmail.example", subject: "Fwd: Levering bank Oslo",
			// A forward is all content: the forwarded text is the complaint.
			bodyHas: []string{"Wilt u mij\nantwoorden?", "From: Ria Smit <ria.smit@voorbeeld.nl>", "De bank Oslo is nog steeds niet geleverd"},
		},
		{
			file: "autoresponder.eml", email: "t.devries@bedrijf.example", subject: "Automatisch antwoord: Your complaint C-1001 is with Anna [#C-1001]",
			bodyHas: []string{"Ik ben afwezig"}, complaintID: "C-1001", noAutoReply: "Auto-Submitted: auto-replied",
			threadKeys: []string{"email:fmn.C-1001.v1.acknowledgement@winkel.example", "email:oof-8812@bedrijf.example"},
		},
		{
			file: "bounce_dsn.eml", email: "mailer-daemon@mail.winkel.example", subject: "Undelivered Mail Returned to Sender",
			bodyHas: []string{"Recipient address rejected: User unknown"}, noAutoReply: "automatic",
			attachments: []Attachment{{Name: "unnamed message/delivery-status", Type: "message/delivery-status", Size: 115}, {Name: "unnamed text/rfc822-headers", Type: "text/rfc822-headers", Size: 177}},
		},
		{
			file: "mailing_list.eml", email: "news@leverancier.example", subject: "Nieuwsbrief november",
			bodyHas: []string{"collectie"}, noAutoReply: "Precedence: bulk",
		},
		{
			file: "malformed_headers.eml", email: "henk.degroot@voorbeeld.nl", subject: "Klacht over bezorging één week te laat",
			bodyHas:  []string{"Het pakket kwam één week te laat"},
			notesHas: `unknown charset "x-unknown-legacy"`,
			sourceID: "20251112133600.pc01.henk",
		},
		{
			file: "missing_message_id.eml", email: "info@kapsalon-lisa.example", name: "Lisa", subject: "Spiegel besteld, verkeerde maat geleverd",
			bodyHas: []string{"80x120"}, sourceID: "sha256:", notesHas: "no Message-ID",
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m, err := Parse(readFixture(t, tc.file), testOpts)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if m.Channel != router.ChannelEmail {
				t.Errorf("channel %q", m.Channel)
			}
			if m.Customer.Email != tc.email || (tc.name != "" && m.Customer.Name != tc.name) {
				t.Errorf("customer = %+v, want %s %s", m.Customer, tc.name, tc.email)
			}
			if m.Subject != tc.subject {
				t.Errorf("subject = %q\nwant      %q", m.Subject, tc.subject)
			}
			for _, s := range tc.bodyHas {
				if !strings.Contains(m.Body, s) {
					t.Errorf("body lacks %q:\n%s", s, m.Body)
				}
			}
			for _, s := range tc.bodyLacks {
				if strings.Contains(m.Body, s) {
					t.Errorf("body has %q:\n%s", s, m.Body)
				}
			}
			if tc.quotedHas != "" && !strings.Contains(m.Metadata[MetaQuoted], tc.quotedHas) {
				t.Errorf("quoted history lacks %q: %q", tc.quotedHas, m.Metadata[MetaQuoted])
			}
			switch {
			case m.SourceID == "":
				t.Error("no source id: the message could not be deduplicated")
			case strings.HasSuffix(tc.sourceID, ":") && !strings.HasPrefix(m.SourceID, tc.sourceID):
				t.Errorf("source id %q, want prefix %q", m.SourceID, tc.sourceID)
			case tc.sourceID != "" && !strings.HasSuffix(tc.sourceID, ":") && (!strings.HasPrefix(m.SourceID, tc.sourceID+"#") || m.Metadata[MetaMessageID] != tc.sourceID):
				t.Errorf("source id %q (message id %q), want the Message-ID %q and a header hash", m.SourceID, m.Metadata[MetaMessageID], tc.sourceID)
			}
			if tc.threadKeys != nil && strings.Join(m.ThreadKeys, " ") != strings.Join(tc.threadKeys, " ") {
				t.Errorf("thread keys %v, want %v", m.ThreadKeys, tc.threadKeys)
			}
			if m.ComplaintID != tc.complaintID {
				t.Errorf("complaint id %q, want %q", m.ComplaintID, tc.complaintID)
			}
			if m.Language != tc.language {
				t.Errorf("language %q, want %q", m.Language, tc.language)
			}
			why := m.NoAutoReply
			if (tc.noAutoReply == "") != (why == "") || !strings.Contains(why, tc.noAutoReply) {
				t.Errorf("no_auto_reply = %q, want %q", why, tc.noAutoReply)
			}
			var atts []Attachment
			if s := m.Metadata[MetaAttachments]; s != "" {
				if err := json.Unmarshal([]byte(s), &atts); err != nil {
					t.Fatal(err)
				}
			}
			if len(atts) != len(tc.attachments) {
				t.Errorf("attachments %+v, want %+v", atts, tc.attachments)
			} else {
				for i := range atts {
					if atts[i] != tc.attachments[i] {
						t.Errorf("attachment %d = %+v, want %+v", i, atts[i], tc.attachments[i])
					}
				}
			}
			if tc.notesHas != "" && !strings.Contains(m.Metadata[MetaNotes], tc.notesHas) {
				t.Errorf("notes %q lack %q", m.Metadata[MetaNotes], tc.notesHas)
			}
		})
	}
}

// TestReusedMessageIDIsNotADuplicate: a mailer that gives every mail the
// same Message-ID must not make the second mail look like a duplicate.
func TestReusedMessageIDIsNotADuplicate(t *testing.T) {
	a, _ := Parse([]byte("From: form@shop.example\r\nSubject: Contact form\r\nDate: Mon, 10 Nov 2025 10:00:00 +0100\r\nMessage-ID: <contact@shop.example>\r\n\r\nVraag 1\r\n"), ParseOptions{})
	b, _ := Parse([]byte("From: form@shop.example\r\nSubject: Contact form\r\nDate: Mon, 10 Nov 2025 11:30:00 +0100\r\nMessage-ID: <contact@shop.example>\r\n\r\nVraag 2\r\n"), ParseOptions{})
	if a.SourceID == b.SourceID {
		t.Errorf("two different mails share source id %q: the second would be dropped as a duplicate", a.SourceID)
	}
	if a.ThreadKeys[0] != b.ThreadKeys[0] {
		t.Errorf("the thread keys still follow the Message-ID: %v %v", a.ThreadKeys, b.ThreadKeys)
	}
}

// TestParseIsStable: the same mail read twice (a restart, a UIDVALIDITY
// resync) has the same source id, also without a Message-ID.
func TestParseIsStable(t *testing.T) {
	for _, f := range []string{"missing_message_id.eml", "nl_iso8859_qp.eml"} {
		raw := readFixture(t, f)
		a, _ := Parse(raw, ParseOptions{Now: func() time.Time { return time.Unix(1, 0) }})
		b, _ := Parse(raw, ParseOptions{})
		if a.SourceID != b.SourceID || a.SourceID == "" {
			t.Errorf("%s: source ids %q and %q differ", f, a.SourceID, b.SourceID)
		}
	}
}

func TestComplaintReferences(t *testing.T) {
	mail := func(to, subject string) []byte {
		return []byte("From: Jan <jan@voorbeeld.nl>\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nMessage-ID: <x1@voorbeeld.nl>\r\n\r\nHallo\r\n")
	}
	tests := []struct {
		name, to, subject string
		opts              ParseOptions
		want              string
	}{
		{"subject token", "support@winkel.example", "Re: Uw klacht [#C-1042] is bij Anna", testOpts, "C-1042"},
		{"subject token, lower case and spaces", "support@winkel.example", "Re: [# c-77 ]", testOpts, "C-77"},
		{"plus address on our address", "Support <support+c-1042@winkel.example>", "Re: pakket", testOpts, "C-1042"},
		{"plus address, plus-addressing off", "support+c-1042@winkel.example", "Re: pakket", ParseOptions{OwnAddresses: testOpts.OwnAddresses}, ""},
		{"plus address on a stranger's address", "info+c-1042@elders.example", "Re: pakket", testOpts, ""},
		{"subject wins over plus address", "support+c-1042@winkel.example", "[#C-7]", testOpts, "C-7"},
		{"no reference", "support@winkel.example", "C-1042 zonder haken", testOpts, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(mail(tc.to, tc.subject), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if m.ComplaintID != tc.want {
				t.Errorf("complaint id %q, want %q", m.ComplaintID, tc.want)
			}
		})
	}
}

// TestLoopGuard: each RFC 3834 signal (and our own address) holds back the
// acknowledgement, with its reason; a plain customer mail does not.
func TestLoopGuard(t *testing.T) {
	tests := []struct{ name, headers, from, want string }{
		{"plain mail", "", "jan@voorbeeld.nl", ""},
		{"Auto-Submitted: no", "Auto-Submitted: no\r\n", "jan@voorbeeld.nl", ""},
		{"auto-generated", "Auto-Submitted: auto-generated\r\n", "jan@voorbeeld.nl", "Auto-Submitted: auto-generated"},
		{"precedence list", "Precedence: list\r\n", "jan@voorbeeld.nl", "Precedence: list"},
		{"precedence junk", "Precedence: junk\r\n", "jan@voorbeeld.nl", "Precedence: junk"},
		{"Exchange suppress", "X-Auto-Response-Suppress: DR, OOF, AutoReply\r\n", "jan@voorbeeld.nl", "X-Auto-Response-Suppress"},
		{"mailing list", "List-Id: <klanten.lists.example>\r\n", "jan@voorbeeld.nl", "List-Id"},
		{"empty return path", "Return-Path: <>\r\n", "jan@voorbeeld.nl", "empty return path"},
		{"our own address", "", "Support@Winkel.example", "our own address"},
		{"our own plus-address (a reply we sent, bounced back)", "", "support+c-1001@winkel.example", "our own address"},
		{"someone else's plus-address", "", "jan+shop@voorbeeld.nl", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := "From: " + tc.from + "\r\nTo: support@winkel.example\r\nSubject: x\r\nMessage-ID: <a@b>\r\n" + tc.headers + "\r\nHallo\r\n"
			m, err := Parse([]byte(raw), testOpts)
			if err != nil {
				t.Fatal(err)
			}
			got := m.NoAutoReply
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("no_auto_reply = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestParseLimits: a bomb of parts or nesting is cut off with a note, and the
// text that was reachable is kept.
func TestParseLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@b.example\r\nSubject: many\r\nMessage-ID: <m@b>\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n")
	b.WriteString("--B\r\nContent-Type: text/plain\r\n\r\nthe real text\r\n")
	for i := range 300 {
		b.WriteString("--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=f" + string(rune('a'+i%26)) + ".bin\r\n\r\nxx\r\n")
	}
	b.WriteString("--B--\r\n")
	m, err := Parse([]byte(b.String()), ParseOptions{MaxParts: 50})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Body, "the real text") || !strings.Contains(m.Metadata[MetaNotes], "more than 50 MIME parts") {
		t.Errorf("body %q notes %q", m.Body, m.Metadata[MetaNotes])
	}

	var n strings.Builder
	n.WriteString("From: a@b.example\r\nSubject: deep\r\nMessage-ID: <d@b>\r\n")
	depth := 40
	for i := range depth {
		n.WriteString("Content-Type: multipart/mixed; boundary=L" + string(rune('A'+i%26)) + string(rune('0'+i/26)) + "\r\n\r\n--L" + string(rune('A'+i%26)) + string(rune('0'+i/26)) + "\r\n")
	}
	n.WriteString("Content-Type: text/plain\r\n\r\ntoo deep to read\r\n")
	m, err = Parse([]byte(n.String()), ParseOptions{MaxDepth: 5})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Metadata[MetaNotes], "nested deeper than 5") || m.Body == "" {
		t.Errorf("body %q notes %q", m.Body, m.Metadata[MetaNotes])
	}
}

// What must hold: a malformed Content-Type never costs the customer's
// text. The part is read by the type it names (text/plain when it names
// none), its charset kept where it can be read, and a note says so.
func TestMalformedContentTypeKeepsTheText(t *testing.T) {
	for _, ct := range []string{
		`text/plain; charset=utf-8; name=`,
		`text/plain charset=utf-8`,
		`text/plain; charset="utf-8"; ;;;===`,
		`textplain; charset=utf-8`,
	} {
		t.Run(ct, func(t *testing.T) {
			raw := "From: jan@voorbeeld.nl\r\nSubject: Kapotte ketel\r\nMessage-ID: <ct@voorbeeld.nl>\r\nMIME-Version: 1.0\r\nContent-Type: " + ct +
				"\r\nContent-Transfer-Encoding: 8bit\r\n\r\nDe ketel is stuk, graag een monteur. Groet, Jan\r\n"
			m, err := Parse([]byte(raw), ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m.Body, "De ketel is stuk, graag een monteur.") {
				t.Errorf("body %q, want the customer's text", m.Body)
			}
			if !strings.Contains(m.Metadata[MetaNotes], "Content-Type is malformed") {
				t.Errorf("notes %q, want one about the Content-Type", m.Metadata[MetaNotes])
			}
		})
	}
}

// The charset a malformed Content-Type names is used all the same.
func TestMalformedContentTypeKeepsItsCharset(t *testing.T) {
	koi8 := "\xf0\xd2\xc9\xd7\xc5\xd4" // "Привет" in KOI8-R
	for _, ct := range []string{`text/plain charset=koi8-r`, `text/plain; charset=koi8-r; name=`} {
		raw := "From: ivan@example.ru\r\nSubject: x\r\nMessage-ID: <k@example.ru>\r\nMIME-Version: 1.0\r\nContent-Type: " + ct +
			"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + koi8 + "\r\n"
		m, err := Parse([]byte(raw), ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(m.Body, "Привет") {
			t.Errorf("%s: body %q, want Привет", ct, m.Body)
		}
	}
}

func TestUnparseableMail(t *testing.T) {
	for name, raw := range map[string]string{
		"empty":             "",
		"only blank lines":  "\r\n\r\n",
		"folded first line": " continuation without a field\r\n\r\nbody",
	} {
		if _, err := Parse([]byte(raw), ParseOptions{}); !errors.Is(err, ErrUnparseable) {
			t.Errorf("%s: err = %v, want ErrUnparseable", name, err)
		}
	}
}

func TestTooLarge(t *testing.T) {
	raw := readFixture(t, "attachments.eml")
	header := raw[:strings.Index(string(raw), "\r\n\r\n")+4]
	m, err := ParseTooLarge(header, 31<<20, 25<<20, "mailbox support (INBOX), UID 7", testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if m.Metadata[MetaTooLarge] != "true" || !strings.Contains(m.Body, "too large") || !strings.Contains(m.Body, "UID 7") || m.Customer.Email != "k.bakker@voorbeeld.nl" || m.SourceID == "" {
		t.Errorf("too-large message = %+v", m)
	}
}

func TestSplitQuoted(t *testing.T) {
	tests := []struct{ name, in, fresh, quoted string }{
		{"gmail english", "Thanks, that works.\n\nOn Mon, 3 Nov 2025 at 10:12, Support <s@x> wrote:\n> old", "Thanks, that works.", "On Mon, 3 Nov 2025 at 10:12, Support <s@x> wrote:\n> old"},
		{"wrapped attribution", "Ok.\n\nOn Mon, 3 Nov 2025 at 10:12, Klantenservice Winkel\n<support@winkel.example> wrote:\n> old", "Ok.", "On Mon, 3 Nov 2025 at 10:12, Klantenservice Winkel\n<support@winkel.example> wrote:\n> old"},
		{"outlook dutch", "Prima.\n\n________________________________\nVan: Klantenservice <s@x>\nVerzonden: maandag 3 november 2025 10:12\nAan: Jan\nOnderwerp: Re: x\n\nold", "Prima.", "________________________________\nVan: Klantenservice <s@x>\nVerzonden: maandag 3 november 2025 10:12\nAan: Jan\nOnderwerp: Re: x\n\nold"},
		{"original message", "Zie hieronder.\n-----Oorspronkelijk bericht-----\nVan: x", "Zie hieronder.", "-----Oorspronkelijk bericht-----\nVan: x"},
		{"interleaved answers are all content", "> vraag 1\nantwoord 1\n> vraag 2\nantwoord 2", "> vraag 1\nantwoord 1\n> vraag 2\nantwoord 2", ""},
		{"bottom quote", "Ja graag.\n\n> Wilt u een nieuwe?\n>", "Ja graag.", "> Wilt u een nieuwe?\n>"},
		{"only a quote keeps everything", "On Mon, 3 Nov 2025, S wrote:\n> old", "On Mon, 3 Nov 2025, S wrote:\n> old", ""},
		{"no quote", "Gewoon een vraag.", "Gewoon een vraag.", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, q := splitQuoted(tc.in)
			if f != tc.fresh || q != tc.quoted {
				t.Errorf("got\n%q\n%q\nwant\n%q\n%q", f, q, tc.fresh, tc.quoted)
			}
		})
	}
}

func TestHTMLToText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"paragraphs and breaks", "<p>Hallo,</p><p>regel 1<br>regel 2</p>", "Hallo,\n\nregel 1\nregel 2"},
		{"script, style and head dropped", "<html><head><title>x</title><style>p{}</style></head><body><script>alert(1)</script>Tekst</body></html>", "Tekst"},
		{"entities", "Prijs &euro;&nbsp;10 &amp; meer", "Prijs € 10 & meer"},
		{"link with its target", `Zie <a href="https://x.example/o/1">uw order</a>.`, "Zie uw order (https://x.example/o/1)."},
		{"mailto link shows its text", `Mail <a href="mailto:a@b.example">a@b.example</a>`, "Mail a@b.example"},
		{"list", "<ul><li>een</li><li>twee</li></ul>", "- een\n- twee"},
		{"gmail quote", `<div>Prima!</div><div class="gmail_quote"><div>On Mon, 3 Nov 2025 at 10:12 S &lt;s@x&gt; wrote:</div><blockquote>Oude tekst</blockquote></div>`, "Prima!\nOn Mon, 3 Nov 2025 at 10:12 S <s@x> wrote:\n> Oude tekst"},
		{"image alt", `<img src="cid:1" alt="foto.jpg">`, "[foto.jpg]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := normalizeText(htmlToText(tc.in)); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// TestEmptyPlainAlternativeFallsBackToHTML: an empty text/plain beside real
// HTML must not lose the customer's text.
func TestEmptyPlainAlternativeFallsBackToHTML(t *testing.T) {
	raw := "From: a@b.example\r\nSubject: x\r\nMessage-ID: <e@b>\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n--A\r\nContent-Type: text/plain\r\n\r\n\r\n--A\r\nContent-Type: text/html\r\n\r\n<p>Mijn stoel is kapot.</p>\r\n--A--\r\n"
	m, err := Parse([]byte(raw), ParseOptions{})
	if err != nil || m.Body != "Mijn stoel is kapot." {
		t.Errorf("body %q, err %v", m.Body, err)
	}
}

// A bounce of one of our mails names, for the router, the mail that did not
// arrive and why; a delay warning or a bounce without the original's headers
// does not.
func TestDeliveryReportNamesTheMailThatBounced(t *testing.T) {
	raw, err := os.ReadFile("testdata/bounce_dsn.eml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(raw, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if got := deliveryReportFor(m); got != "email:fmn.C-1002.v1.acknowledgement@winkel.example" {
		t.Errorf("delivery report for %q, want the bounced acknowledgement's thread key", got)
	}
	if got := m.DeliveryReport.Status; !strings.Contains(got, "weg@voorbeeld.nl") || !strings.Contains(got, "5.1.1") {
		t.Errorf("delivery status %q, want the recipient and the status", got)
	}

	delayed := strings.Replace(string(raw), "Action: failed", "Action: delayed", 1)
	if m, _ := Parse([]byte(delayed), testOpts); deliveryReportFor(m) != "" {
		t.Error("a delay warning is not a failed delivery")
	}
	headless := strings.Replace(string(raw), "Message-ID: <fmn.C-1002.v1.acknowledgement@winkel.example>\r\n", "", 1)
	if m, _ := Parse([]byte(headless), testOpts); deliveryReportFor(m) != "" {
		t.Error("without the original's Message-ID there is nothing to report on")
	}
}

func deliveryReportFor(m router.Message) string {
	if m.DeliveryReport == nil {
		return ""
	}
	return m.DeliveryReport.For
}
