package router

import (
	"strings"
	"unicode"
)

// stopwords are frequent function words: counting them tells the languages of
// a support team apart reliably, even in short messages, without a model.
var stopwords = map[string][]string{
	"nl": {"de", "het", "een", "en", "ik", "je", "niet", "dat", "is", "van", "mijn", "met", "voor", "op", "nog", "maar", "wel", "geen", "ook", "heb", "bij", "naar", "dit", "wat", "zijn", "u", "uw", "graag", "er", "om", "al", "dan", "kan", "moet", "hebben", "waarom", "heeft"},
	"en": {"the", "and", "i", "you", "not", "that", "is", "of", "my", "with", "for", "on", "still", "but", "no", "have", "it", "was", "this", "what", "are", "your", "please", "to", "a", "an", "me", "why", "has", "been", "can", "would", "ordered", "received"},
	"de": {"der", "die", "das", "und", "ich", "nicht", "ist", "mein", "meine", "mit", "für", "auf", "noch", "aber", "kein", "habe", "es", "ein", "eine", "bitte", "sie", "wurde", "warum"},
	"fr": {"le", "la", "les", "et", "je", "ne", "pas", "est", "mon", "ma", "avec", "pour", "sur", "encore", "mais", "ai", "une", "un", "vous", "votre", "merci", "pourquoi", "été"},
}

var stopwordIndex = func() map[string][]string {
	idx := map[string][]string{}
	for lang, words := range stopwords {
		for _, w := range words {
			idx[w] = append(idx[w], lang)
		}
	}
	return idx
}()

// DetectLanguage guesses the ISO 639-1 language of text among those forgetmenot
// knows (nl, en, de, fr). It returns "" rather than guess on weak evidence.
func DetectLanguage(text string) string {
	counts := map[string]int{}
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && r != '\''
	})
	for _, w := range words {
		for _, lang := range stopwordIndex[w] {
			counts[lang]++
		}
	}
	best, second, bestLang := 0, 0, ""
	for _, lang := range []string{"nl", "en", "de", "fr"} {
		switch n := counts[lang]; {
		case n > best:
			best, second, bestLang = n, best, lang
		case n > second:
			second = n
		}
	}
	if best < 2 || best*2 < second*3 {
		return ""
	}
	return bestLang
}
