package api

import (
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/router"
)

// What must hold: every language the satisfaction question is asked in has
// its page and every refusal worded too, so a German customer is not sent
// to an English page (or an English reason from the router).
func TestEveryCSATLanguageHasItsPageAndRefusals(t *testing.T) {
	codes := []string{router.ProblemCSATScore, router.ProblemCSATSignature, router.ProblemCSATReopened, router.ProblemCSATExpired, router.ProblemCSATChanged}
	english := csatPageWords["en"]
	for _, lang := range router.CSATLanguages() {
		words, ok := csatPageWords[lang]
		if !ok {
			t.Errorf("%s: the question is asked in it, the page is not worded", lang)
			continue
		}
		if lang != "en" && (words.thanks == english.thanks || words.cannot == english.cannot) {
			t.Errorf("%s: the page is worded in English", lang)
		}
		for _, code := range codes {
			if strings.TrimSpace(csatProblems[lang][code]) == "" {
				t.Errorf("%s: no words for the refusal %q", lang, code)
			}
		}
	}
	for _, lang := range []string{"de", "fr"} {
		if !strings.Contains(router.CSATLabel(lang, 5), map[string]string{"de": "zufrieden", "fr": "satisfait"}[lang]) {
			t.Errorf("%s: score 5 is labelled %q", lang, router.CSATLabel(lang, 5))
		}
	}
}
