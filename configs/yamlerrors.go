package configs

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlError turns a YAML decoding error into file:line messages in the
// file's own words: an unknown field is named with the fields allowed there
// (never a Go type such as configs.ownerYAML), a wrong value says what kind
// of value was expected.
func yamlError(path string, doc *yaml.Node, v any, err error) error {
	if doc != nil {
		if uerr := unknownField(path, doc, reflect.TypeOf(v)); uerr != nil {
			return uerr
		}
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return &fileError{path: path, line: line, msg: "not valid YAML: " + m[2]}
		}
		return &fileError{path: path, msg: "not valid YAML: " + msg}
	}
	var msgs []string
	for _, e := range te.Errors {
		msgs = append(msgs, friendlyTypeError(path, e))
	}
	return errors.New(strings.Join(msgs, "\n"))
}

var (
	yamlLineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
	unmarshalRE    = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+) (?:`(.*)` )?into (\\S+)$")
	fieldMissingRE = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+$`)
)

func friendlyTypeError(path, e string) string {
	if m := fieldMissingRE.FindStringSubmatch(e); m != nil {
		return fmt.Sprintf("%s:%s: unknown field %q", path, m[1], m[2])
	}
	if m := unmarshalRE.FindStringSubmatch(e); m != nil {
		got := m[3]
		if got == "" {
			got = map[string]string{"seq": "a list", "map": "a mapping"}[m[2]]
			if got == "" {
				got = "a " + m[2]
			}
		} else {
			got = strconv.Quote(got)
		}
		return fmt.Sprintf("%s:%s: %s is not %s", path, m[1], got, kindWords(m[4]))
	}
	if m := yamlLineRE.FindStringSubmatch(e); m != nil {
		return fmt.Sprintf("%s:%s: %s", path, m[1], m[2])
	}
	return path + ": " + e
}

// kindWords says in words what a Go type expects from YAML.
func kindWords(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list (- item, or [a, b])"
	case strings.HasPrefix(goType, "map["):
		return "a mapping (key: value)"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string":
		return "a text"
	}
	return "the expected kind of value (a mapping of fields)"
}

// unknownField walks the document alongside the Go type it decodes into and
// reports the first mapping key the type has no field for, with the fields
// it does have.
func unknownField(path string, n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := unknownField(path, c, t); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for _, c := range n.Content {
				if err := unknownField(path, c, t.Elem()); err != nil {
					return err
				}
			}
		}
	case yaml.MappingNode:
		switch t.Kind() {
		case reflect.Map:
			for i := 1; i < len(n.Content); i += 2 {
				if err := unknownField(path, n.Content[i], t.Elem()); err != nil {
					return err
				}
			}
		case reflect.Struct:
			fields := yamlFields(t)
			if fields == nil {
				return nil // a type with inline fields: leave it to the decoder
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				key := n.Content[i]
				ft, ok := fields[key.Value]
				if !ok {
					known := make([]string, 0, len(fields))
					for k := range fields {
						known = append(known, k)
					}
					sort.Strings(known)
					return &fileError{path: path, line: key.Line, msg: fmt.Sprintf("unknown field %q (known here: %s)", key.Value, strings.Join(known, ", "))}
				}
				if err := unknownField(path, n.Content[i+1], ft); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// yamlFields maps a struct's YAML keys to their types; nil when the struct
// has inline fields or decodes itself.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	if reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
		return nil
	}
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			return nil
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}
