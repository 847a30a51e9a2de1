package router

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Rule sends matching messages to a team. Every condition that is set must
// hold; within one condition any listed value suffices.
type Rule struct {
	Name     string
	Team     string
	Channels []Channel
	// Keywords match case-insensitively at the start of a word in the subject
	// or body: "refund" matches "Refunded" but not "prefund".
	Keywords []string
	// Pattern must match the subject or the body; SubjectPattern and
	// BodyPattern only their own field.
	Pattern        *regexp.Regexp
	SubjectPattern *regexp.Regexp
	BodyPattern    *regexp.Regexp
	// EmailDomains match the customer's address domain or any subdomain of it.
	EmailDomains []string
	Languages    []string
	// Priority is given to the complaints the rule opens (targets may depend
	// on it); empty means normal.
	Priority string
}

// Rules is the ordered routing table: the first matching rule wins, the
// default team takes the rest.
type Rules struct {
	Rules       []Rule
	DefaultTeam string
}

// Validate checks the table against the directory: every team must exist and
// the default team must have an active owner.
func (rs *Rules) Validate(dir Directory) error {
	if _, ok := dir.Team(rs.DefaultTeam); !ok {
		return fmt.Errorf("default team %q is not declared", rs.DefaultTeam)
	}
	active := false
	for _, o := range dir.Members(rs.DefaultTeam) {
		active = active || o.Active
	}
	if !active {
		return fmt.Errorf("default team %q has no active owner", rs.DefaultTeam)
	}
	for _, r := range rs.Rules {
		if _, ok := dir.Team(r.Team); !ok {
			return fmt.Errorf("rule %q: team %q is not declared", r.Name, r.Team)
		}
	}
	return nil
}

// match is the routing table's verdict for one message.
type match struct {
	team     string
	reason   string
	priority string
}

func (rs *Rules) match(msg Message, lang string) match {
	subject := strings.ToLower(msg.Subject)
	body := strings.ToLower(msg.Body)
	for _, r := range rs.Rules {
		if why, ok := r.matches(msg, lang, subject, body); ok {
			return match{team: r.Team, reason: fmt.Sprintf("rule %q (%s)", r.Name, why), priority: r.Priority}
		}
	}
	if msg.DefaultTeam != "" {
		return match{team: msg.DefaultTeam, reason: "no rule matched; the source's default team"}
	}
	return match{team: rs.DefaultTeam, reason: "no rule matched; default team"}
}

// matches tests one rule; lowerSubject and lowerBody are pre-lowered once per
// message for the keyword scan.
func (r Rule) matches(msg Message, lang, lowerSubject, lowerBody string) (string, bool) {
	var why []string
	if len(r.Channels) > 0 {
		if !slices.Contains(r.Channels, msg.Channel) {
			return "", false
		}
		why = append(why, "channel "+string(msg.Channel))
	}
	if len(r.Keywords) > 0 {
		kw, ok := firstKeyword(r.Keywords, lowerSubject, lowerBody)
		if !ok {
			return "", false
		}
		why = append(why, fmt.Sprintf("keyword %q", kw))
	}
	if r.Pattern != nil {
		if !r.Pattern.MatchString(msg.Subject) && !r.Pattern.MatchString(msg.Body) {
			return "", false
		}
		why = append(why, "pattern "+r.Pattern.String())
	}
	if r.SubjectPattern != nil {
		if !r.SubjectPattern.MatchString(msg.Subject) {
			return "", false
		}
		why = append(why, "subject pattern "+r.SubjectPattern.String())
	}
	if r.BodyPattern != nil {
		if !r.BodyPattern.MatchString(msg.Body) {
			return "", false
		}
		why = append(why, "body pattern "+r.BodyPattern.String())
	}
	if len(r.EmailDomains) > 0 {
		d, ok := matchDomain(r.EmailDomains, msg.Customer.Email)
		if !ok {
			return "", false
		}
		why = append(why, "domain "+d)
	}
	if len(r.Languages) > 0 {
		if !slices.Contains(r.Languages, lang) {
			return "", false
		}
		why = append(why, "language "+lang)
	}
	return strings.Join(why, ", "), true
}

func firstKeyword(keywords []string, texts ...string) (string, bool) {
	for _, kw := range keywords {
		for _, t := range texts {
			if containsWordPrefix(t, kw) {
				return kw, true
			}
		}
	}
	return "", false
}

// containsWordPrefix reports whether kw occurs in text at the start of a word.
// Both are lower case already.
func containsWordPrefix(text, kw string) bool {
	if kw == "" {
		return false
	}
	for from := 0; from < len(text); {
		i := strings.Index(text[from:], kw)
		if i < 0 {
			return false
		}
		i += from
		prev, _ := utf8.DecodeLastRuneInString(text[:i])
		if i == 0 || !(unicode.IsLetter(prev) || unicode.IsDigit(prev)) {
			return true
		}
		from = i + len(kw)
	}
	return false
}

func matchDomain(domains []string, email string) (string, bool) {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return "", false
	}
	host := strings.ToLower(strings.TrimSpace(email[at+1:]))
	for _, d := range domains {
		if host == d || strings.HasSuffix(host, "."+d) {
			return d, true
		}
	}
	return "", false
}
