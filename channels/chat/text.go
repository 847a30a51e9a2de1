package chat

import (
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/texts"
	"github.com/forgetmenot/forgetmenot/router"
)

// TextData is what a chat text may use ({{.Owner}}, …); configs/chat-templates
// says which text has which fields.
type TextData struct {
	Owner          string // "Anna de Vries"
	OwnerFirstName string // "Anna"
	Reference      string // "C-1042"
	CustomerName   string
	Body           string // what staff wrote
	Author         string // "Anna de Vries", or "Bas Jansen for Anna de Vries" (in the visitor's language)
	// PromisedBy and Back are moments in the visitor's time zone and
	// language: {{date .PromisedBy "Monday 2 January 15:04"}}.
	PromisedBy texts.Moment
	Back       texts.Moment
	// Days, Hours and Minutes are the first-response target.
	Days, Hours, Minutes int
	Max                  int // the longest message, in bytes
}

// SampleTextData is data to try every chat text with at load.
func SampleTextData(string) any {
	at := texts.At(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), "en", time.UTC)
	return TextData{Owner: "Anna de Vries", OwnerFirstName: "Anna", Reference: "C-1001", CustomerName: "Jan",
		Body: "x", Author: "Anna de Vries", PromisedBy: at, Back: at, Hours: 2, Max: 4000}
}

// RequiredTexts are the texts the fallback language must have.
var RequiredTexts = []string{
	"acknowledgement", "reply", "promise", "greeting", "expect.within", "expect.back",
	"widget.open", "widget.title", "widget.close", "widget.name", "widget.email", "widget.details",
	"widget.message", "widget.send", "widget.connecting", "widget.offline", "widget.paused", "widget.busy",
	"widget.not_enabled", "widget.sending", "widget.waiting", "widget.not_sent", "widget.too_long",
	"widget.new_message", "widget.unread",
}

// said is something said to the visitor, before it is worded: live lines and
// the history carry it, and each socket words it in its visitor's language
// and time zone.
type said struct {
	Kind      router.CustomerMessageKind `json:"kind"`
	At        time.Time                  `json:"at"`
	Complaint string                     `json:"complaint"`
	// Language is the complaint's, for a visitor whose page language has
	// no texts.
	Language string `json:"language,omitempty"`
	Owner    string `json:"owner,omitempty"`
	Author   string `json:"author,omitempty"`
	// Cover is the colleague who wrote for the owner (Owner), if one did:
	// the line is then signed "Cover for Owner" in the visitor's language.
	Cover        string    `json:"cover,omitempty"`
	CustomerName string    `json:"customer_name,omitempty"`
	Body         string    `json:"body,omitempty"`
	PromisedBy   time.Time `json:"promised_by,omitzero"`
}

// line words what was said for one socket.
func (s *Server) line(c *client, sd said) Line {
	lang := s.cfg.Texts.Lang(c.lang, sd.Language)
	first, _, _ := strings.Cut(sd.Owner, " ")
	author := sd.Author
	if sd.Cover != "" && sd.Owner != "" {
		author = sd.Cover + " " + texts.OnBehalfOf(lang) + " " + sd.Owner
	}
	data := TextData{Owner: sd.Owner, OwnerFirstName: first, Reference: sd.Complaint, CustomerName: sd.CustomerName,
		Body: sd.Body, Author: author, PromisedBy: texts.At(sd.PromisedBy, lang, c.zone), Max: s.cfg.MaxMessageBytes}
	l := Line{ID: router.SaidRef(sd.Kind, sd.At), From: "staff", Author: author, At: sd.At, Text: sd.Body}
	name := ""
	switch sd.Kind {
	case router.ToCustomerAcknowledgement:
		l.From, l.Author, name = "system", "", "acknowledgement"
	case router.ToCustomerReply:
		name = "reply"
	case router.ToCustomerPromise:
		if !sd.PromisedBy.IsZero() {
			name = "promise"
		}
	}
	if name != "" {
		text, err := s.cfg.Texts.Render(name, lang, data)
		if err != nil {
			s.log.Error("chat: a chat text cannot be worded; the visitor gets the plain text", "text", name, "lang", lang, "err", err)
		} else {
			l.Text = text
		}
	}
	return l
}

// deliver sends a live line to one socket, and lets it be marked seen.
func (s *Server) deliver(c *client, sd said) {
	l := s.line(c, sd)
	if watched(sd.Kind) {
		c.watchLine(l.ID, sd.Complaint)
	}
	c.send(outFrame{Type: "line", Line: &l})
}

// watched kinds are staff's own words: their seen receipts are recorded.
func watched(k router.CustomerMessageKind) bool {
	return k == router.ToCustomerReply || k == router.ToCustomerPromise
}

// greeting words the welcome: a greeting line and what the visitor can
// expect now, from the business calendar and the chat's response target.
func (s *Server) greeting(c *client) (greeting, expect string) {
	lang := s.cfg.Texts.Lang(c.lang)
	greeting, _ = s.cfg.Texts.Render("greeting", lang, TextData{})
	if s.cfg.Expect == nil {
		return greeting, ""
	}
	e := s.cfg.Expect()
	var err error
	switch {
	case !e.Working && !e.Back.IsZero():
		expect, err = s.cfg.Texts.Render("expect.back", lang, TextData{Back: texts.At(e.Back, lang, c.zone)})
	case !e.FirstResponse.IsZero():
		d := TextData{Days: e.FirstResponse.Days, Hours: int(e.FirstResponse.Hours / time.Hour), Minutes: int(e.FirstResponse.Hours % time.Hour / time.Minute)}
		expect, err = s.cfg.Texts.Render("expect.within", lang, d)
	}
	if err != nil {
		s.log.Error("chat: the greeting cannot be worded", "lang", lang, "err", err)
	}
	return greeting, expect
}
