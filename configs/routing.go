package configs

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/forgetmenot/forgetmenot/router"
)

type routingFile struct {
	DefaultTeam string     `yaml:"default_team"`
	Rules       []ruleYAML `yaml:"rules"`
}

type ruleYAML struct {
	Name           string   `yaml:"name"`
	Team           string   `yaml:"team"`
	Channels       []string `yaml:"channels"`
	Keywords       []string `yaml:"keywords"`
	Pattern        string   `yaml:"pattern"`
	SubjectPattern string   `yaml:"subject_pattern"`
	BodyPattern    string   `yaml:"body_pattern"`
	EmailDomains   []string `yaml:"email_domains"`
	Languages      []string `yaml:"languages"`
	Priority       string   `yaml:"priority"`
}

// LoadRouting reads the routing file and checks it against the roster.
func LoadRouting(path string, dir router.Directory) (*router.Rules, error) {
	var f routingFile
	doc, err := decodeStrict(path, &f)
	if err != nil {
		return nil, err
	}
	ruleLines, _ := itemLines(doc, "rules")
	errAt := func(line int, format string, args ...any) error {
		return &fileError{path: path, line: line, msg: fmt.Sprintf(format, args...)}
	}
	defaultLine := 0
	if doc != nil && len(doc.Content) > 0 {
		m := doc.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == "default_team" {
				defaultLine = m.Content[i].Line
			}
		}
	}
	if f.DefaultTeam == "" {
		return nil, errAt(0, "default_team is required: the team for messages no rule matches")
	}
	if _, ok := dir.Team(f.DefaultTeam); !ok {
		return nil, errAt(defaultLine, "default_team %q is not a team in the owners file", f.DefaultTeam)
	}

	rules := &router.Rules{DefaultTeam: f.DefaultTeam}
	seen := map[string]int{}
	for i, r := range f.Rules {
		line := lineAt(ruleLines, i)
		who := fmt.Sprintf("rule %q", r.Name)
		switch {
		case strings.TrimSpace(r.Name) == "":
			return nil, errAt(line, "rule %d has no name", i+1)
		case seen[r.Name] != 0:
			return nil, errAt(line, "%s is declared twice (first on line %d)", who, seen[r.Name])
		}
		seen[r.Name] = line
		if _, ok := dir.Team(r.Team); !ok {
			return nil, errAt(line, "%s: team %q is not a team in the owners file", who, r.Team)
		}
		if r.Priority != "" && !idPattern.MatchString(r.Priority) {
			return nil, errAt(line, "%s: priority %q: use a short lower-case word such as urgent or high", who, r.Priority)
		}
		rule := router.Rule{Name: r.Name, Team: r.Team, Priority: r.Priority}
		for _, c := range r.Channels {
			if !slices.Contains(router.KnownChannels, router.Channel(c)) {
				return nil, errAt(line, "%s: unknown channel %q (known: email, webhook, forum, chat)", who, c)
			}
			rule.Channels = append(rule.Channels, router.Channel(c))
		}
		for _, k := range r.Keywords {
			k = strings.ToLower(strings.TrimSpace(k))
			if k == "" {
				return nil, errAt(line, "%s: empty keyword", who)
			}
			rule.Keywords = append(rule.Keywords, k)
		}
		for _, p := range []struct {
			field string
			src   string
			dst   **regexp.Regexp
		}{{"pattern", r.Pattern, &rule.Pattern}, {"subject_pattern", r.SubjectPattern, &rule.SubjectPattern}, {"body_pattern", r.BodyPattern, &rule.BodyPattern}} {
			if p.src == "" {
				continue
			}
			re, err := regexp.Compile(p.src)
			if err != nil {
				return nil, errAt(line, "%s: %s is not a valid regular expression: %v", who, p.field, err)
			}
			*p.dst = re
		}
		for _, d := range r.EmailDomains {
			d = strings.TrimLeft(strings.ToLower(strings.TrimSpace(d)), "@.")
			if d == "" || strings.ContainsAny(d, "@ ") {
				return nil, errAt(line, "%s: email domain %q is not a domain", who, d)
			}
			rule.EmailDomains = append(rule.EmailDomains, d)
		}
		for _, l := range r.Languages {
			if !languagePattern.MatchString(l) {
				return nil, errAt(line, "%s: language %q is not a two-letter ISO 639-1 code", who, l)
			}
			rule.Languages = append(rule.Languages, l)
		}
		if len(rule.Channels)+len(rule.Keywords)+len(rule.EmailDomains)+len(rule.Languages) == 0 &&
			rule.Pattern == nil && rule.SubjectPattern == nil && rule.BodyPattern == nil {
			return nil, errAt(line, "%s has no conditions and would match everything; use default_team instead", who)
		}
		rules.Rules = append(rules.Rules, rule)
	}
	if err := rules.Validate(dir); err != nil {
		return nil, errAt(defaultLine, "%v", err)
	}
	return rules, nil
}
