package texts_test

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/texts"
)

type data struct {
	Name string
	When texts.Moment
}

func opts(required ...string) texts.Options {
	return texts.Options{Fallback: "en", Required: required, Sample: func(string) any {
		return data{Name: "Jan", When: texts.At(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), "en", nil)}
	}}
}

func TestLoadRefusesBrokenTextsAtStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"misspelt field", map[string]string{"en.tmpl": `{{define "hi"}}Hi {{.Nmae}}{{end}}`}, "Nmae"},
		{"fallback incomplete", map[string]string{"en.tmpl": `{{define "hi"}}Hi{{end}}`}, "missing: bye"},
		{"defined twice", map[string]string{"en.tmpl": `{{define "hi"}}Hi{{end}}{{define "bye"}}x{{end}}`, "hi.en.tmpl": `Hello`}, "also defined"},
		{"bad file name", map[string]string{"en.tmpl": `{{define "hi"}}Hi{{end}}{{define "bye"}}x{{end}}`, "Dutch.tmpl": `x`}, "name a file"},
		{"text outside blocks", map[string]string{"en.tmpl": `Hi {{define "hi"}}Hi{{end}}{{define "bye"}}x{{end}}`}, "outside"},
		{"syntax", map[string]string{"en.tmpl": `{{define "hi"}}Hi {{.Name{{end}}`}, "en.tmpl"},
		{"none", map[string]string{"README": "x"}, "no *.tmpl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for n, c := range tc.files {
				fsys[n] = &fstest.MapFile{Data: []byte(c)}
			}
			_, err := texts.Load(fsys, opts("hi", "bye"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestRenderPicksTheLanguageAndFallsBackPerText(t *testing.T) {
	fsys := fstest.MapFS{
		"en.tmpl":     {Data: []byte("{{/* comments are fine */}}\n{{define \"hi\"}}\n  Hello {{.Name}}\n{{end}}\n{{define \"when\"}}{{date .When \"Monday 15:04\"}}{{end}}")},
		"nl.tmpl":     {Data: []byte(`{{define "when"}}{{date .When "Monday 15:04"}}{{end}}`)},
		"bye.de.tmpl": {Data: []byte(`Tschüss {{.Name}}`)},
	}
	s, err := texts.Load(fsys, opts("hi", "when"))
	if err != nil {
		t.Fatal(err)
	}
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ name, lang, want string }{
		{"hi", "nl", "Hello Jan"},          // missing in nl: the fallback's
		{"when", "nl-BE", "maandag 10:00"}, // region dropped, zone and day name applied
		{"when", "xx", "Monday 10:00"},     // unknown language: the fallback
		{"bye", "de", "Tschüss Jan"},       // a <name>.<lang>.tmpl file
	} {
		got, err := s.Render(tc.name, tc.lang, data{Name: "Jan", When: texts.At(at, texts.Primary(tc.lang), ams)})
		if err != nil || got != tc.want {
			t.Errorf("%s/%s = %q %v, want %q", tc.name, tc.lang, got, err, tc.want)
		}
	}
	if got := s.Lang("fr-FR", "de", "en"); got != "de" {
		t.Errorf("Lang = %s, want the first candidate with texts", got)
	}
	if strings.Join(s.Languages(), ",") != "de,en,nl" {
		t.Errorf("languages %v", s.Languages())
	}
}

func TestZoneAcceptsOnlyIANANames(t *testing.T) {
	for name, ok := range map[string]bool{
		"Europe/Amsterdam": true, "America/Argentina/Buenos_Aires": true, "UTC": true,
		"": false, "Local": false, "../../etc/passwd": false, "Europe/../../x": false, "Nowhere/City": false,
		strings.Repeat("A", 100): false,
	} {
		if (texts.Zone(name) != nil) != ok {
			t.Errorf("Zone(%q) accepted=%v, want %v", name, !ok, ok)
		}
	}
}
