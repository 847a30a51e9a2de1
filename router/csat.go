package router

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CSAT asks customers after the close how satisfied they are, with one
// signed link per answer: the link is the answer, so one click records it,
// and the signature keeps anyone from answering for another complaint.
type CSAT struct {
	// BaseURL is the daemon's public address (https://support.example.com).
	BaseURL string
	// Secret signs the links; keep it long and private.
	Secret []byte
	// ValidFor is how long after the close a link still records an answer;
	// 0 means DefaultCSATValidity.
	ValidFor time.Duration
}

// DefaultCSATValidity is how long satisfaction links work after the close.
const DefaultCSATValidity = 30 * 24 * time.Hour

// MaxCSATChanges bounds how often a customer may change their answer (a
// misclick corrected): each change is a timeline line, and a link held for
// ever must not grow a timeline for ever.
const MaxCSATChanges = 3

func (c *CSAT) validity() time.Duration {
	if c.ValidFor > 0 {
		return c.ValidFor
	}
	return DefaultCSATValidity
}

// CSATScores are the answers, best first, with their wording.
var CSATScores = []struct {
	Score int
	Label string
}{{5, "Very satisfied"}, {4, "Satisfied"}, {3, "Neutral"}, {2, "Dissatisfied"}, {1, "Very dissatisfied"}}

func (c *CSAT) validate() error {
	if c == nil {
		return nil
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("CSAT base URL %q is not an http(s) URL", c.BaseURL)
	}
	if len(c.Secret) < 16 {
		return errors.New("CSAT secret is shorter than 16 bytes")
	}
	return nil
}

// Sign returns the signature of an answer for a complaint.
func (c *CSAT) Sign(complaintID string, score int) string {
	m := hmac.New(sha256.New, c.Secret)
	m.Write([]byte("csat\x00" + complaintID + "\x00" + strconv.Itoa(score)))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// Link is the one-click answer link.
func (c *CSAT) Link(complaintID string, score int) string {
	return strings.TrimRight(c.BaseURL, "/") + "/v1/csat/" + url.PathEscape(complaintID) + "/" + strconv.Itoa(score) + "?sig=" + c.Sign(complaintID, score)
}

// csatQuestion is the question queued with the close, when CSAT is on and
// the customer can be written to. tl places it in the customer's
// conversation, like a reply.
func (r *Router) csatQuestion(c Complaint, tl []Entry, now time.Time) []CustomerMessage {
	if r.csat == nil || r.reachability == nil {
		return nil
	}
	if _, err := r.reach(c); err != nil {
		return nil
	}
	words := csatWords["en"]
	if w, ok := csatWords[c.Language]; ok {
		words = w
	}
	var b strings.Builder
	fmt.Fprintf(&b, words.question+"\n\n", c.ID)
	link := func(score int) string { return r.csat.Link(c.ID, score) }
	if _, ok := csatWords[c.Language]; ok && c.Language != "en" {
		// The page the link opens speaks the customer's language too (the
		// parameter is not signed: it changes nothing but the words).
		link = func(score int) string { return r.csat.Link(c.ID, score) + "&lang=" + c.Language }
	}
	for i, s := range CSATScores {
		fmt.Fprintf(&b, "%d - %s: %s\n", s.Score, words.labels[i], link(s.Score))
	}
	m := r.customerMessage(ToCustomerCSAT, c, tl, ActorRouter, strings.TrimSpace(b.String()), now)
	return []CustomerMessage{m}
}

// CSATLabel words a score in lang (English when lang has no words).
func CSATLabel(lang string, score int) string {
	words, ok := csatWords[lang]
	if !ok {
		words = csatWords["en"]
	}
	for i, s := range CSATScores {
		if s.Score == score {
			return words.labels[i]
		}
	}
	return ""
}

// csatWords words the question per language, labels in CSATScores' order.
var csatWords = map[string]struct {
	question string
	labels   [5]string
}{
	"en": {"Your complaint %s is resolved. How satisfied are you with how we handled it? One click answers:",
		[5]string{"Very satisfied", "Satisfied", "Neutral", "Dissatisfied", "Very dissatisfied"}},
	"nl": {"Uw klacht %s is afgehandeld. Hoe tevreden bent u over hoe wij die hebben behandeld? Eén klik is genoeg:",
		[5]string{"Zeer tevreden", "Tevreden", "Neutraal", "Ontevreden", "Zeer ontevreden"}},
	"de": {"Ihre Beschwerde %s ist erledigt. Wie zufrieden sind Sie damit, wie wir sie bearbeitet haben? Ein Klick genügt:",
		[5]string{"Sehr zufrieden", "Zufrieden", "Neutral", "Unzufrieden", "Sehr unzufrieden"}},
	"fr": {"Votre réclamation %s est résolue. Dans quelle mesure êtes-vous satisfait de la façon dont nous l'avons traitée ? Un clic suffit :",
		[5]string{"Très satisfait", "Satisfait", "Neutre", "Insatisfait", "Très insatisfait"}},
}

// CSATLanguages are the languages the satisfaction question is worded in
// (others get it in English).
func CSATLanguages() []string { return slices.Sorted(maps.Keys(csatWords)) }

// RecordCSAT records the customer's answer from a signed link. The same
// answer again changes nothing; a different one replaces it (a misclick
// corrected).
func (r *Router) RecordCSAT(ctx context.Context, id string, score int, sig string) (Complaint, error) {
	if r.csat == nil {
		return Complaint{}, fmt.Errorf("satisfaction questions are not configured: %w", ErrNotFound)
	}
	id = CanonicalComplaintID(id) // a link retyped as c-1042 is C-1042's, as everywhere
	if score < 1 || score > 5 {
		return Complaint{}, invalidAs(ProblemCSATScore, "score", "must be 1-5")
	}
	if !hmac.Equal([]byte(sig), []byte(r.csat.Sign(id, score))) {
		return Complaint{}, invalidAs(ProblemCSATSignature, "sig", "the link is not valid (signature mismatch)")
	}
	return r.update(ctx, id, func(c Complaint, now time.Time) (Change, error) {
		switch {
		case c.Status != StatusClosed:
			return Change{}, invalidAs(ProblemCSATReopened, "complaint", "%s is not closed; satisfaction is asked after the close", id)
		case now.Sub(c.ClosedAt) > r.csat.validity():
			return Change{}, invalidAs(ProblemCSATExpired, "sig", "the link expired %s after the close", roundDuration(r.csat.validity()))
		case c.CSAT == score:
			return Change{}, errUnchanged
		case c.CSAT != 0 && c.CSATChanges >= MaxCSATChanges:
			return Change{}, invalidAs(ProblemCSATChanged, "score", "the answer was already changed %d times", MaxCSATChanges)
		}
		after := c
		if c.CSAT != 0 {
			after.CSATChanges++
		}
		after.CSAT, after.CSATAt, after.UpdatedAt = score, now, now
		ev := Event{Type: EventCSAT, Actor: "customer", Owner: c.Owner, Details: map[string]string{"score": strconv.Itoa(score)}}
		if c.CSAT != 0 {
			ev.Details["replaces"] = strconv.Itoa(c.CSAT)
		}
		ch := newChange(&c, after)
		ch.Entries = []Entry{{At: now, Event: &ev}}
		return ch, nil
	})
}
