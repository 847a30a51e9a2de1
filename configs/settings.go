package configs

import (
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Where a setting's value comes from.
const (
	SourceEnvironment = "environment" // set (not blank) in the environment
	SourceDefault     = "default"     // not set: the built-in default applies
	SourceUnset       = "unset"       // not set and without a default
)

// Redacted stands for a secret's value wherever settings are shown.
const Redacted = "[redacted]"

// Setting is one environment variable as `forgetmenot config` shows it.
type Setting struct {
	Name        string `json:"name"`
	Value       string `json:"value"` // Redacted for a secret that is set
	Default     string `json:"default"`
	Source      string `json:"source"`
	Secret      bool   `json:"secret"`
	Description string `json:"description"`
}

// Settings lists every variable of Config in declaration order, with the
// value lookup finds for it (os.LookupEnv; a blank value counts as unset, as
// in FromEnv). Secrets are redacted here, so no caller can print one by
// mistake.
func Settings(lookup func(string) (string, bool)) []Setting {
	t := reflect.TypeOf(Config{})
	out := make([]Setting, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("envconfig")
		if key == "" {
			continue
		}
		s := Setting{Name: Var(key), Default: f.Tag.Get("default"), Secret: isSecret(key), Description: f.Tag.Get("desc")}
		v, set := lookup(s.Name)
		switch {
		case set && strings.TrimSpace(v) != "":
			s.Value, s.Source = redact(key, v), SourceEnvironment
		case s.Default != "":
			s.Value, s.Source = s.Default, SourceDefault
		default:
			s.Source = SourceUnset
		}
		out = append(out, s)
	}
	return out
}

// isSecret tells the variables whose value must never be shown. It goes by
// the name rather than by a list, so that a secret added later is hidden
// without anyone remembering to say so.
func isSecret(key string) bool {
	for _, suffix := range []string{"_SECRET", "_TOKEN", "_PASSWORD", "_KEY"} {
		if strings.HasSuffix(key, suffix) {
			return true
		}
	}
	return false
}

// redact hides a secret's value, and the credentials in a URL (a Redis
// password in REDIS_URL).
func redact(key, v string) string {
	switch {
	case isSecret(key):
		return Redacted
	case strings.HasSuffix(key, "_URL"):
		return RedactURL(v)
	}
	return v
}

// RedactURL drops the credentials from a URL before it is logged or shown.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	u.User = nil
	return u.String()
}

// settingsWidth is where descriptions wrap: readable in an 80-column
// terminal, and no line but an unbreakable value is wider.
const settingsWidth = 80

// WriteSettings writes settings as text: one block per variable, its name
// and source, its value (and the default it replaces), and the description
// wrapped below.
func WriteSettings(w io.Writer, settings []Setting) error {
	for i, s := range settings {
		if i > 0 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if _, err := io.WriteString(w, settingBlock(s)); err != nil {
			return err
		}
	}
	return nil
}

func settingBlock(s Setting) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s)\n", s.Name, sourceWords[s.Source])
	writeValue(&b, "value:   ", s.Value)
	// Otherwise the value is the default, or there is none.
	if s.Source == SourceEnvironment {
		writeValue(&b, "default: ", s.Default)
	}
	for _, line := range wrap(s.Description, settingsWidth-4) {
		fmt.Fprintf(&b, "    %s\n", line)
	}
	return b.String()
}

// writeValue writes an indented, labelled value. A long comma-separated
// list breaks after its commas, aligned under its start; a break at a space
// would read as a different value, so any other long value stays whole.
func writeValue(b *strings.Builder, label, v string) {
	const indent = "    "
	lines := wrapAfterCommas(shown(v), settingsWidth-len(indent)-len(label))
	for i, line := range lines {
		if i == 0 {
			fmt.Fprintf(b, "%s%s%s\n", indent, label, line)
		} else {
			fmt.Fprintf(b, "%s%s%s\n", indent, strings.Repeat(" ", len(label)), line)
		}
	}
}

// wrapAfterCommas breaks v after commas into lines of at most width
// characters where it can.
func wrapAfterCommas(v string, width int) []string {
	var lines []string
	line := ""
	for _, part := range strings.SplitAfter(v, ",") {
		if line != "" && utf8.RuneCountInString(line)+utf8.RuneCountInString(part) > width {
			lines = append(lines, line)
			line = ""
		}
		line += part
	}
	return append(lines, line)
}

var sourceWords = map[string]string{
	SourceEnvironment: "set in the environment",
	SourceDefault:     "default",
	SourceUnset:       "not set",
}

// shown is a value as text: visibly empty, and quoted when it holds control
// characters that would break the layout.
func shown(v string) string {
	if v == "" {
		return "(empty)"
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return strconv.Quote(v)
	}
	return v
}

// wrap breaks text into lines of at most width characters at spaces; a
// word longer than width gets a line of its own.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
