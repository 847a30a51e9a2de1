package texts_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/texts"
)

var forumKinds = []string{"acknowledgement", "reply", "promise", "csat"}

func TestShippedForumTemplatesCoverEveryKindInNlEnDeFr(t *testing.T) {
	set, err := texts.Load(configs.ForumTemplates(), "", "en", forumKinds...)
	if err != nil {
		t.Fatal(err)
	}
	amsterdam, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	by := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC).In(amsterdam) // Monday 15:00 in Amsterdam
	want := map[string]string{"en": "Monday 30 November at 15:00 (CET)", "nl": "maandag 30 november om 15:00 (CET)",
		"de": "Montag, 30. November um 15:00 Uhr (CET)", "fr": "lundi 30 novembre à 15:00 (CET)"}
	for _, lang := range []string{"nl", "en", "de", "fr"} {
		for _, kind := range forumKinds {
			if !set.Has(kind, lang) {
				t.Errorf("%s.%s.tmpl is missing", kind, lang)
			}
		}
		text, used, err := set.Render("promise", lang, texts.Data{Reference: "C-1", Owner: "Anna", Author: "Anna", Body: "We check it.", PromisedBy: by})
		if err != nil || used != lang {
			t.Fatalf("%s: %q %s %v", lang, text, used, err)
		}
		if !strings.Contains(text, want[lang]) {
			t.Errorf("%s promise %q: want the time worded %q, in the business zone and the customer's language", lang, text, want[lang])
		}
	}
}

func TestOverridesReplaceSingleFilesAndBadTemplatesFailAtLoad(t *testing.T) {
	defaults := fstest.MapFS{
		"reply.en.tmpl": {Data: []byte("{{.Body}}\n\n— {{.Author}}")},
		"reply.nl.tmpl": {Data: []byte("{{.Body}}\n\nGroet, {{.Author}}")},
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "reply.nl.tmpl"), []byte("{{.Body}}\n\nMet vriendelijke groet,\n{{.Author}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := texts.Load(defaults, dir, "en", "reply")
	if err != nil {
		t.Fatal(err)
	}
	d := texts.Data{Reference: "C-1", Owner: "Anna", Author: "Anna", Body: "Hallo"}
	if got, _, _ := set.Render("reply", "nl", d); !strings.Contains(got, "Met vriendelijke groet") {
		t.Errorf("nl reply %q: the operator's file must replace the shipped one", got)
	}
	if got, used, _ := set.Render("reply", "fr", d); used != "en" || !strings.HasSuffix(got, "— Anna") {
		t.Errorf("fr reply %q in %s: a language without templates falls back to en", got, used)
	}
	for name, tc := range map[string]struct {
		files fstest.MapFS
		want  string
	}{
		"unknown field":    {fstest.MapFS{"reply.en.tmpl": {Data: []byte("{{.Bdy}}")}}, "Bdy"},
		"syntax":           {fstest.MapFS{"reply.en.tmpl": {Data: []byte("{{if .Body}")}}, "reply.en.tmpl"},
		"fallback missing": {fstest.MapFS{"reply.nl.tmpl": {Data: []byte("{{.Body}}")}}, "reply.en.tmpl is missing"},
		"bad name":         {fstest.MapFS{"reply.tmpl": {Data: []byte("x")}, "reply.en.tmpl": {Data: []byte("x")}}, "<kind>.<lang>.tmpl"},
		"unknown kind":     {fstest.MapFS{"replay.en.tmpl": {Data: []byte("x")}, "reply.en.tmpl": {Data: []byte("x")}}, `unknown kind "replay"`},
	} {
		if _, err := texts.Load(tc.files, "", "en", "reply"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to mention %q", name, err, tc.want)
		}
	}
	if _, err := texts.Load(defaults, filepath.Join(dir, "nope"), "en", "reply"); err == nil {
		t.Error("a missing override directory must fail at start")
	}
}
