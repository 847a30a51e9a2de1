// Package texts words what forgetmenot says to customers on a channel from
// editable templates: one text/template file per kind and language,
// "<kind>.<lang>.tmpl" (acknowledgement.nl.tmpl, reply.en.tmpl, …). A set
// ships embedded with its channel's defaults; a directory given by the
// operator replaces single files or adds languages, so a shop edits only the
// texts it wants different.
//
// Templates format dates with {{date .PromisedBy "Monday 2 January 15:04"}}:
// Go's layout, with day and month names in the template's own language. The
// moment is already in the zone the caller chose (the business calendar's).
package texts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/goodsign/monday"
)

// Data is what a template may use. Every field may be empty except
// Reference and Owner.
type Data struct {
	// Reference is the complaint id ("C-1042").
	Reference string
	// Owner is the owner's name ("Anna de Vries"); OwnerFirstName "Anna".
	Owner          string
	OwnerFirstName string
	// Author signs what staff wrote: "Anna de Vries", or "Bas Jansen for
	// Anna de Vries" when a colleague answers.
	Author       string
	CustomerName string
	// Username is the customer's handle on the channel (a forum @mention).
	Username string
	Subject  string
	// Body is what staff wrote (reply, promise, satisfaction question).
	Body string
	// PromisedBy is the promised follow-up, in the customer's zone.
	PromisedBy time.Time
}

// Set holds the templates of one channel.
type Set struct {
	byName   map[string]*template.Template
	langs    []string
	fallback string
}

// locales maps a template's language to the day and month names of its dates.
var locales = map[string]monday.Locale{
	"nl": monday.LocaleNlNL, "en": monday.LocaleEnGB, "de": monday.LocaleDeDE, "fr": monday.LocaleFrFR,
	"es": monday.LocaleEsES, "it": monday.LocaleItIT, "pt": monday.LocalePtPT, "da": monday.LocaleDaDK,
	"sv": monday.LocaleSvSE, "nb": monday.LocaleNbNO, "fi": monday.LocaleFiFI, "pl": monday.LocalePlPL,
}

func funcs(lang string) template.FuncMap {
	locale, ok := locales[lang]
	return template.FuncMap{
		"date": func(t time.Time, layout string) string {
			if !ok {
				return t.Format(layout)
			}
			return monday.Format(t, layout, locale)
		},
	}
}

// sample exercises every field at load, so a template naming a field that
// does not exist fails at start rather than when a customer is waiting.
var sample = Data{Reference: "C-1", Owner: "Anna de Vries", OwnerFirstName: "Anna", Author: "Anna de Vries",
	CustomerName: "Marloes", Username: "marloes", Subject: "Order", Body: "x", PromisedBy: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}

// Load reads the templates of defaults (the channel's embedded set), then
// those of overrideDir when it is not empty, which replace same-named ones.
// fallback is the language used when the customer's has no template; it must
// have every kind.
func Load(defaults fs.FS, overrideDir, fallback string, kinds ...string) (*Set, error) {
	s := &Set{byName: map[string]*template.Template{}, fallback: fallback}
	if defaults != nil {
		if err := s.add(defaults, "embedded templates"); err != nil {
			return nil, err
		}
	}
	if overrideDir != "" {
		if st, err := os.Stat(overrideDir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%s: not a directory of <kind>.<lang>.tmpl templates", overrideDir)
		}
		if err := s.add(os.DirFS(overrideDir), overrideDir); err != nil {
			return nil, err
		}
	}
	if len(s.byName) == 0 {
		return nil, errors.New("no *.tmpl templates found")
	}
	for _, k := range kinds {
		if s.byName[k+"."+fallback] == nil {
			return nil, fmt.Errorf("%s.%s.tmpl is missing (the %s templates are the fallback and must be complete)", k, fallback, fallback)
		}
	}
	for name := range s.byName {
		kind, _, _ := strings.Cut(name, ".")
		if !slices.Contains(kinds, kind) {
			return nil, fmt.Errorf("%s.tmpl: unknown kind %q (known: %s)", name, kind, strings.Join(kinds, ", "))
		}
	}
	return s, nil
}

func (s *Set) add(fsys fs.FS, where string) error {
	files, err := fs.Glob(fsys, "*.tmpl")
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(f, ".tmpl")
		kind, lang, ok := strings.Cut(name, ".")
		if !ok || kind == "" || len(lang) != 2 || strings.ToLower(lang) != lang {
			return fmt.Errorf("%s: %s: name a template <kind>.<lang>.tmpl with a two-letter language (reply.nl.tmpl)", where, f)
		}
		raw, err := fs.ReadFile(fsys, f)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		tpl, err := template.New(name).Option("missingkey=error").Funcs(funcs(lang)).Parse(string(raw))
		if err != nil {
			return fmt.Errorf("%s: %w", path.Join(where, f), err)
		}
		if _, err := execute(tpl, sample); err != nil {
			return fmt.Errorf("%s: %w", path.Join(where, f), err)
		}
		s.byName[name] = tpl
		if !slices.Contains(s.langs, lang) {
			s.langs = append(s.langs, lang)
			slices.Sort(s.langs)
		}
	}
	return nil
}

// Languages lists the languages that have at least one template.
func (s *Set) Languages() []string { return slices.Clone(s.langs) }

// Has reports whether lang has a template of kind (no fallback).
func (s *Set) Has(kind, lang string) bool { return s.byName[kind+"."+lang] != nil }

// Render words kind in lang, or in the fallback language when lang has no
// such template, and says which language it used.
func (s *Set) Render(kind, lang string, d Data) (text, used string, err error) {
	used = lang
	tpl := s.byName[kind+"."+lang]
	if tpl == nil {
		used = s.fallback
		tpl = s.byName[kind+"."+used]
	}
	if tpl == nil {
		return "", "", fmt.Errorf("no template for %s messages", kind)
	}
	text, err = execute(tpl, d)
	return text, used, err
}

func execute(tpl *template.Template, d Data) (string, error) {
	var b strings.Builder
	if err := tpl.Execute(&b, d); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.String()), nil
}

// FirstName is the first word of a name ("Anna" of "Anna de Vries").
func FirstName(name string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(name), " ")
	return first
}
