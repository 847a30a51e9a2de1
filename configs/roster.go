package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/forgetmenot/forgetmenot/internal/mailaddr"
	"github.com/forgetmenot/forgetmenot/router"
	"go.yaml.in/yaml/v3"
)

var (
	idPattern       = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	slackUserID     = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	languagePattern = regexp.MustCompile(`^[a-z]{2}$`)
	// discourseUsername: Discourse allows letters (any script), digits, '_',
	// '.' and '-', at most 60 characters.
	discourseUsername = regexp.MustCompile(`^[\p{L}\p{N}_.-]{1,60}$`)
)

type ownersFile struct {
	Teams  []teamYAML  `yaml:"teams"`
	Owners []ownerYAML `yaml:"owners"`
}

type teamYAML struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	Lead string `yaml:"lead"`
}

type ownerYAML struct {
	ID          string `yaml:"id"`
	Name        string `yaml:"name"`
	Email       string `yaml:"email"`
	SlackUserID string `yaml:"slack_user_id"`
	// DiscourseUsername links the owner to their forum account (optional).
	DiscourseUsername string   `yaml:"discourse_username"`
	Teams             []string `yaml:"teams"`
	Languages         []string `yaml:"languages"`
	Capacity          int      `yaml:"capacity"`
	Active            *bool    `yaml:"active"`
	// Calendar and Away are read by LoadTargets (accountability).
	Calendar string     `yaml:"calendar"`
	Away     []awayYAML `yaml:"away"`
}

type awayYAML struct {
	From  string `yaml:"from"`
	Until string `yaml:"until"`
	Cover string `yaml:"cover"`
	Note  string `yaml:"note"`
}

// fileError locates a problem in a configuration file.
type fileError struct {
	path string
	line int
	msg  string
}

func (e *fileError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.path, e.line, e.msg)
	}
	return e.path + ": " + e.msg
}

// decodeStrict parses YAML into v, refusing unknown fields (typos fail at
// start instead of being ignored), and returns the document for line lookups.
func decodeStrict(path string, v any) (*yaml.Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &fileError{path: path, msg: "file is empty"}
		}
		var doc yaml.Node
		if yaml.Unmarshal(data, &doc) != nil {
			return nil, yamlError(path, nil, v, err)
		}
		return nil, yamlError(path, &doc, v, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(path, nil, v, err)
	}
	return &doc, nil
}

// itemLines returns the line of each item of the top-level sequence key, and
// the line of the key itself.
func itemLines(doc *yaml.Node, key string) (lines []int, keyLine int) {
	if doc == nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, 0
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			for _, item := range m.Content[i+1].Content {
				lines = append(lines, item.Line)
			}
			return lines, m.Content[i].Line
		}
	}
	return nil, 0
}

func lineAt(lines []int, i int) int {
	if i < len(lines) {
		return lines[i]
	}
	return 0
}

// LoadRoster reads and checks the owners file.
func LoadRoster(path string) (*router.Roster, error) {
	var f ownersFile
	doc, err := decodeStrict(path, &f)
	if err != nil {
		return nil, err
	}
	teamLines, teamsKey := itemLines(doc, "teams")
	ownerLines, ownersKey := itemLines(doc, "owners")
	errAt := func(line int, format string, args ...any) error {
		return &fileError{path: path, line: line, msg: fmt.Sprintf(format, args...)}
	}
	if len(f.Teams) == 0 {
		return nil, errAt(teamsKey, "no teams declared (teams: [{id: support, name: Support}])")
	}
	if len(f.Owners) == 0 {
		return nil, errAt(ownersKey, "no owners declared")
	}

	teams := make([]router.Team, 0, len(f.Teams))
	teamLine := map[string]int{}
	for i, t := range f.Teams {
		line := lineAt(teamLines, i)
		switch {
		case !idPattern.MatchString(t.ID):
			return nil, errAt(line, "team id %q: use lower-case letters, digits, '.', '_' or '-'", t.ID)
		case teamLine[t.ID] != 0:
			return nil, errAt(line, "team %q is declared twice (first on line %d)", t.ID, teamLine[t.ID])
		}
		teamLine[t.ID] = line
		name := t.Name
		if name == "" {
			name = t.ID
		}
		teams = append(teams, router.Team{ID: t.ID, Name: name, Lead: t.Lead})
	}

	owners := make([]router.Owner, 0, len(f.Owners))
	ownerLine := map[string]int{}
	members := map[string]int{}
	forumUser := map[string]string{}
	for i, o := range f.Owners {
		line := lineAt(ownerLines, i)
		who := fmt.Sprintf("owner %q", o.ID)
		switch {
		case !idPattern.MatchString(o.ID):
			return nil, errAt(line, "owner id %q: use lower-case letters, digits, '.', '_' or '-'", o.ID)
		case ownerLine[o.ID] != 0:
			return nil, errAt(line, "%s is declared twice (first on line %d)", who, ownerLine[o.ID])
		case strings.TrimSpace(o.Name) == "":
			return nil, errAt(line, "%s: name is required", who)
		case !mailaddr.Valid(o.Email):
			return nil, errAt(line, "%s: email %q is not a valid address", who, o.Email)
		case o.SlackUserID != "" && !slackUserID.MatchString(o.SlackUserID):
			return nil, errAt(line, "%s: slack_user_id %q is not a Slack user id (like U012AB3CD)", who, o.SlackUserID)
		case o.DiscourseUsername != "" && !discourseUsername.MatchString(o.DiscourseUsername):
			return nil, errAt(line, "%s: discourse_username %q is not a Discourse username (letters, digits, '_', '.', '-', at most 60; without the @)", who, o.DiscourseUsername)
		case o.DiscourseUsername != "" && forumUser[strings.ToLower(o.DiscourseUsername)] != "":
			return nil, errAt(line, "%s: discourse_username %q is already owner %q's (Discourse usernames ignore case)", who, o.DiscourseUsername, forumUser[strings.ToLower(o.DiscourseUsername)])
		case len(o.Teams) == 0:
			return nil, errAt(line, "%s: belongs to no team (teams: [...])", who)
		case o.Capacity < 1:
			return nil, errAt(line, "%s: capacity must be at least 1 (the open complaints they can carry)", who)
		}
		for _, t := range o.Teams {
			if teamLine[t] == 0 {
				return nil, errAt(line, "%s: team %q is not declared (known: %s)", who, t, strings.Join(slices.Sorted(maps.Keys(teamLine)), ", "))
			}
			members[t]++
		}
		for _, l := range o.Languages {
			if !languagePattern.MatchString(l) {
				return nil, errAt(line, "%s: language %q is not a two-letter ISO 639-1 code (like nl or en)", who, l)
			}
		}
		if o.DiscourseUsername != "" {
			forumUser[strings.ToLower(o.DiscourseUsername)] = o.ID
		}
		ownerLine[o.ID] = line
		active := o.Active == nil || *o.Active
		owners = append(owners, router.Owner{
			ID: o.ID, Name: strings.TrimSpace(o.Name), Email: o.Email, SlackUserID: o.SlackUserID, DiscourseUsername: o.DiscourseUsername,
			Teams: o.Teams, Languages: o.Languages, Capacity: o.Capacity, Active: active,
		})
	}
	for _, t := range f.Teams {
		if t.Lead != "" && ownerLine[t.Lead] == 0 {
			return nil, errAt(teamLine[t.ID], "team %q: lead %q is not an owner", t.ID, t.Lead)
		}
		if members[t.ID] == 0 {
			return nil, errAt(teamLine[t.ID], "team %q has no owners", t.ID)
		}
	}
	roster, err := router.NewRoster(teams, owners)
	if err != nil {
		return nil, &fileError{path: path, msg: err.Error()}
	}
	return roster, nil
}
