package forum

import (
	"strings"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/texts"
	"github.com/forgetmenot/forgetmenot/router"
)

// TemplateKinds are the forum texts a template set must have in its fallback
// language, and the only ones it may define.
var TemplateKinds = []string{
	string(router.ToCustomerAcknowledgement), string(router.ToCustomerReply),
	string(router.ToCustomerPromise), string(router.ToCustomerCSAT),
}

// TextData is what a forum text may use. Every field may be empty except
// Reference and Owner.
type TextData struct {
	// Reference is the complaint id ("C-1042").
	Reference string
	// Owner is the owner's name ("Anna de Vries"); OwnerFirstName "Anna".
	Owner          string
	OwnerFirstName string
	// Author signs what staff wrote: "Anna de Vries", or "Bas Jansen for
	// Anna de Vries" when a colleague answers.
	Author       string
	CustomerName string
	// Username is the customer's forum handle, to @mention them.
	Username string
	Subject  string
	// Body is what staff wrote (reply, promise, satisfaction question).
	Body string
	// PromisedBy is the promised follow-up, in the business calendar's zone
	// and the post's language ({{date .PromisedBy "Monday 2 January"}}).
	PromisedBy texts.Moment
}

// SampleTextData tries every forum text at load, so a misspelt field fails
// at start rather than when a customer is waiting.
func SampleTextData(string) any {
	return TextData{Reference: "C-1", Owner: "Anna de Vries", OwnerFirstName: "Anna", Author: "Anna de Vries",
		CustomerName: "Marloes", Username: "marloes", Subject: "Order", Body: "x",
		PromisedBy: texts.At(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), "en", time.UTC)}
}

// TextOptions are the load options of the forum texts.
var TextOptions = texts.Options{Fallback: "en", Required: TemplateKinds, Known: TemplateKinds, Sample: SampleTextData}

func firstName(name string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(name), " ")
	return first
}
