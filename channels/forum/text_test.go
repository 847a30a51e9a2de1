package forum_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/forgetmenot/forgetmenot/channels/forum"
	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/texts"
)

func TestShippedForumTemplatesCoverEveryKindInNlEnDeFr(t *testing.T) {
	set, err := texts.Load(configs.ForumTemplates(), forum.TextOptions)
	if err != nil {
		t.Fatal(err)
	}
	amsterdam, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	by := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC) // Monday 15:00 in Amsterdam
	want := map[string]string{"en": "Monday 30 November at 15:00 (CET)", "nl": "maandag 30 november om 15:00 (CET)",
		"de": "Montag, 30. November um 15:00 Uhr (CET)", "fr": "lundi 30 novembre à 15:00 (CET)"}
	for _, lang := range []string{"nl", "en", "de", "fr"} {
		if got := set.Lang(lang); got != lang {
			t.Errorf("%s texts missing: the set speaks %s", lang, got)
		}
		for _, kind := range forum.TemplateKinds {
			if !set.Has(kind, lang) {
				t.Errorf("%s.%s.tmpl is missing", kind, lang)
			}
		}
		text, err := set.Render("promise", lang, forum.TextData{Reference: "C-1", Owner: "Anna", Author: "Anna", Body: "We check it.",
			PromisedBy: texts.At(by, lang, amsterdam)})
		if err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		if !strings.Contains(text, want[lang]) {
			t.Errorf("%s promise %q: want the time worded %q, in the business zone and the customer's language", lang, text, want[lang])
		}
	}
}

func TestForumTextOverridesReplaceSingleFilesAndBadOnesFailAtLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "reply.nl.tmpl"), []byte("{{.Body}}\n\nMet vriendelijke groet,\n{{.Author}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := texts.LoadWithOverrides(configs.ForumTemplates(), dir, forum.TextOptions)
	if err != nil {
		t.Fatal(err)
	}
	d := forum.TextData{Reference: "C-1", Owner: "Anna", Author: "Anna", Body: "Hallo"}
	if got, _ := set.Render("reply", "nl", d); !strings.Contains(got, "Met vriendelijke groet") {
		t.Errorf("nl reply %q: the operator's file must replace the shipped one", got)
	}
	if got, _ := set.Render("acknowledgement", "nl", d); !strings.Contains(got, "C-1") {
		t.Errorf("nl acknowledgement %q: files the operator did not replace stay", got)
	}
	if got := set.Lang("pt"); got != "en" {
		t.Errorf("a language without texts speaks %s, want the en fallback", got)
	}
	for name, tc := range map[string]struct {
		files fstest.MapFS
		want  string
	}{
		"unknown field": {fstest.MapFS{"reply.en.tmpl": {Data: []byte("{{.Bdy}}")}}, "Bdy"},
		"syntax":        {fstest.MapFS{"reply.en.tmpl": {Data: []byte("{{if .Body}")}}, "reply.en.tmpl"},
		"unknown kind":  {fstest.MapFS{"replay.en.tmpl": {Data: []byte("x")}}, `unknown text "replay"`},
	} {
		opts := forum.TextOptions
		opts.Overrides = tc.files
		if _, err := texts.Load(configs.ForumTemplates(), opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to mention %q", name, err, tc.want)
		}
	}
	if _, err := texts.LoadWithOverrides(configs.ForumTemplates(), filepath.Join(dir, "nope"), forum.TextOptions); err == nil {
		t.Error("a missing override directory must fail at start")
	}
	incomplete := forum.TextOptions
	if _, err := texts.Load(fstest.MapFS{"reply.nl.tmpl": {Data: []byte("{{.Body}}")}}, incomplete); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a set without its en fallback: %v", err)
	}
}
