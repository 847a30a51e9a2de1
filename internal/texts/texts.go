// Package texts words what customers read — chat lines, widget labels, forum
// posts — from editable template files, per language, like the e-mail
// templates: a shop changes the wording or adds a language without a build.
//
// A directory holds files named "<lang>.tmpl" or "<name>.<lang>.tmpl"
// (lang: an ISO 639-1 code such as nl, en, de, fr). In "<name>.<lang>.tmpl"
// the file's body is the text <name>; in any file, {{define "x"}}…{{end}}
// blocks define more texts of that language. Texts are text/template with
// missingkey=error; each is tried at load so a misspelt field fails at start,
// not in front of a customer. A text missing in the customer's language is
// taken from the fallback language, which must have them all.
//
// Functions: date formats a moment, in the customer's language and time zone
// when it is a Moment ({{date .By "Monday 2 January 15:04"}}), as Go's
// time.Format layout.
package texts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"time"
	_ "time/tzdata" // visitors' time zones also where the system has no zoneinfo

	"github.com/goodsign/monday"
)

// Set is a loaded directory of texts.
type Set struct {
	byLang   map[string]map[string]*template.Template
	fallback string
}

// Options configure Load.
type Options struct {
	// Fallback is the language used when the customer's lacks a text; it
	// must define every Required text.
	Fallback string
	Required []string
	// Known, when set, lists every text a channel words: a file defining
	// another (a misspelt "replay") fails at load instead of being ignored.
	Known []string
	// Sample returns data to try a text with at load (nil: no data).
	Sample func(name string) any
	// Overrides holds the operator's files; each replaces the shipped file of
	// the same name, and new files add texts or languages, so a shop edits
	// only what it wants different.
	Overrides fs.FS
}

var (
	langPattern = regexp.MustCompile(`^[a-z]{2,3}$`)
	namePattern = regexp.MustCompile(`^[a-z][a-z0-9_.-]*$`)
)

// LoadDir loads the texts in a directory.
func LoadDir(dir string, o Options) (*Set, error) {
	s, err := Load(os.DirFS(dir), o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return s, nil
}

// LoadWithOverrides loads the shipped texts with the operator's directory
// (if any) laid over them file by file.
func LoadWithOverrides(shipped fs.FS, overrideDir string, o Options) (*Set, error) {
	if overrideDir != "" {
		if st, err := os.Stat(overrideDir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%s: not a directory of *.tmpl texts", overrideDir)
		}
		o.Overrides = os.DirFS(overrideDir)
	}
	s, err := Load(shipped, o)
	if err != nil && overrideDir != "" {
		return nil, fmt.Errorf("%s: %w", overrideDir, err)
	}
	return s, err
}

// Load loads the *.tmpl texts at the root of fsys, and those of
// o.Overrides in place of same-named files.
func Load(fsys fs.FS, o Options) (*Set, error) {
	if o.Fallback == "" {
		o.Fallback = "en"
	}
	files, err := fs.Glob(fsys, "*.tmpl")
	if err != nil {
		return nil, err
	}
	source := map[string]fs.FS{}
	for _, f := range files {
		source[f] = fsys
	}
	if o.Overrides != nil {
		over, err := fs.Glob(o.Overrides, "*.tmpl")
		if err != nil {
			return nil, err
		}
		for _, f := range over {
			if source[f] == nil {
				files = append(files, f)
			}
			source[f] = o.Overrides
		}
		sort.Strings(files)
	}
	if len(files) == 0 {
		return nil, errors.New("no *.tmpl texts found")
	}
	s := &Set{byLang: map[string]map[string]*template.Template{}, fallback: o.Fallback}
	definedIn := map[string]string{} // lang/name → file, for duplicate errors
	for _, f := range files {
		stem := strings.TrimSuffix(f, ".tmpl")
		name, lang := "", stem
		if i := strings.LastIndexByte(stem, '.'); i >= 0 {
			name, lang = stem[:i], stem[i+1:]
		}
		if !langPattern.MatchString(lang) || (name != "" && !namePattern.MatchString(name)) {
			return nil, fmt.Errorf("%s: name a file <lang>.tmpl or <name>.<lang>.tmpl, with lang a lower-case language code such as nl", f)
		}
		raw, err := fs.ReadFile(source[f], f)
		if err != nil {
			return nil, err
		}
		root := name
		if root == "" {
			root = "file " + f
		}
		set, err := template.New(root).Option("missingkey=error").Funcs(funcs).Parse(string(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if name == "" && !onlyBlocks(set.Lookup(root)) {
			return nil, fmt.Errorf("%s: text outside {{define \"…\"}} blocks is ignored in a <lang>.tmpl file; put it in a block", f)
		}
		if s.byLang[lang] == nil {
			s.byLang[lang] = map[string]*template.Template{}
		}
		for _, t := range set.Templates() {
			n := t.Name()
			if n == root && name == "" {
				continue // a <lang>.tmpl file's own body is comments between blocks
			}
			if !namePattern.MatchString(n) {
				return nil, fmt.Errorf("%s: text name %q: use lower-case letters, digits, '.', '-' or '_'", f, n)
			}
			if t.Tree == nil || t.Tree.Root == nil {
				continue
			}
			if len(o.Known) > 0 && !slices.Contains(o.Known, n) {
				return nil, fmt.Errorf("%s: unknown text %q (known: %s)", f, n, strings.Join(o.Known, ", "))
			}
			if prev, dup := definedIn[lang+"/"+n]; dup {
				return nil, fmt.Errorf("%s: text %q (%s) is also defined in %s", f, n, lang, prev)
			}
			definedIn[lang+"/"+n] = f
			s.byLang[lang][n] = set.Lookup(n)
		}
	}
	for lang, names := range s.byLang {
		for n := range names {
			var data any
			if o.Sample != nil {
				data = o.Sample(n)
			}
			if _, err := s.render(n, lang, data); err != nil {
				return nil, fmt.Errorf("%s (%s): %w", n, lang, err)
			}
		}
	}
	var missing []string
	for _, n := range o.Required {
		if s.byLang[o.Fallback][n] == nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the %s texts are the fallback and must be complete; missing: %s", o.Fallback, strings.Join(missing, ", "))
	}
	return s, nil
}

// onlyBlocks reports whether a file's body holds nothing but white space
// (and the {{define}} blocks, which the parser lifts out).
func onlyBlocks(t *template.Template) bool {
	if t == nil || t.Tree == nil || t.Tree.Root == nil {
		return true
	}
	for _, n := range t.Tree.Root.Nodes {
		if tn, ok := n.(*parse.TextNode); !ok || strings.TrimSpace(string(tn.Text)) != "" {
			return false
		}
	}
	return true
}

// Lang picks the language to speak: the first candidate ("nl-BE", "de")
// whose language has texts, else the fallback.
func (s *Set) Lang(candidates ...string) string {
	for _, c := range candidates {
		if l := Primary(c); l != "" && s.byLang[l] != nil {
			return l
		}
	}
	return s.fallback
}

// Primary is the lower-case primary language subtag of a tag ("nl-BE" →
// "nl"), or "" when the tag is not one.
func Primary(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	if i := strings.IndexAny(tag, "-_"); i >= 0 {
		tag = tag[:i]
	}
	if !langPattern.MatchString(tag) {
		return ""
	}
	return tag
}

// Languages lists the languages that have texts, sorted.
func (s *Set) Languages() []string {
	out := make([]string, 0, len(s.byLang))
	for l := range s.byLang {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// Names lists the texts of a language (fallback texts included), sorted.
func (s *Set) Names(lang string) []string {
	seen := map[string]bool{}
	for _, l := range []string{s.fallback, Primary(lang)} {
		for n := range s.byLang[l] {
			seen[n] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Has reports whether a text exists in lang or the fallback.
func (s *Set) Has(name, lang string) bool {
	return s.byLang[Primary(lang)][name] != nil || s.byLang[s.fallback][name] != nil
}

// Render words text name in lang (or the fallback), with surrounding white
// space trimmed.
func (s *Set) Render(name, lang string, data any) (string, error) {
	return s.render(name, Primary(lang), data)
}

func (s *Set) render(name, lang string, data any) (string, error) {
	t := s.byLang[lang][name]
	if t == nil {
		t = s.byLang[s.fallback][name]
	}
	if t == nil {
		return "", fmt.Errorf("no text %q in %s or %s", name, lang, s.fallback)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.String()), nil
}

// Moment is a time shown to a customer: in their time zone and with the day
// and month names of their language.
type Moment struct {
	Time time.Time
	Zone *time.Location
	Lang string
}

// At makes a Moment; a nil zone is UTC.
func At(t time.Time, lang string, zone *time.Location) Moment {
	if zone == nil {
		zone = time.UTC
	}
	return Moment{Time: t, Zone: zone, Lang: lang}
}

// IsZero reports an unset moment (templates: {{if not .By.IsZero}}).
func (m Moment) IsZero() bool { return m.Time.IsZero() }

// Format formats the moment in its zone and language (Go layout).
func (m Moment) Format(layout string) string {
	return monday.Format(m.Time.In(m.Zone), layout, locale(m.Lang))
}

func (m Moment) String() string { return m.Format("2006-01-02 15:04") }

var funcs = template.FuncMap{
	"date": func(v any, layout string) (string, error) {
		switch t := v.(type) {
		case Moment:
			return t.Format(layout), nil
		case time.Time:
			return t.Format(layout), nil
		}
		return "", fmt.Errorf("date: %T is not a time", v)
	},
}

// locale maps a language to the locale whose day and month names it uses.
func locale(lang string) monday.Locale {
	lang = Primary(lang)
	if l, ok := preferredLocales[lang]; ok {
		return l
	}
	for _, l := range monday.ListLocales() {
		if strings.HasPrefix(string(l), lang+"_") {
			return l
		}
	}
	return monday.LocaleEnGB
}

var preferredLocales = map[string]monday.Locale{
	"en": monday.LocaleEnGB, "nl": monday.LocaleNlNL, "de": monday.LocaleDeDE, "fr": monday.LocaleFrFR,
}

// Zone loads an IANA time zone name sent by a browser ("Europe/Amsterdam");
// anything else is nil. Names are checked before they reach the zone
// database, and loaded zones are cached.
func Zone(name string) *time.Location {
	if name == "" || len(name) > 64 || !zonePattern.MatchString(name) || strings.Contains(name, "..") {
		return nil
	}
	if z, ok := zones.Load(name); ok {
		return z.(*time.Location)
	}
	z, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		return nil
	}
	zones.Store(name, z)
	return z
}

var (
	zonePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$`)
	zones       sync.Map
)

// OnBehalfOf words the "for" of "Bas for Anna" (a colleague answering for
// the owner) in lang; English for languages without it.
func OnBehalfOf(lang string) string {
	switch Primary(lang) {
	case "nl":
		return "namens"
	case "de":
		return "im Auftrag von"
	case "fr":
		return "pour"
	}
	return "for"
}
