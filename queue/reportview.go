package queue

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/forgetmenot/forgetmenot/router"
)

// decodeReportView decodes the fields of a stored complaint the report
// reads. A 28-day report decodes every complaint of the period, and
// encoding/json spent most of the report's time on the fields it does not
// read; reportViewScanner picks out the few it does instead. It takes what
// json.Marshal writes for a complaint (lower-case names, integers, RFC 3339
// times; a string with escapes goes to encoding/json on its own) and hands
// any other document to encoding/json whole, so the result, and the error
// for a damaged complaint, are encoding/json's.
func decodeReportView(data string) (router.ReportView, error) {
	var v router.ReportView
	if (&reportViewScanner{b: data}).scan(&v) {
		return v, nil
	}
	v = router.ReportView{}
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		return router.ReportView{}, err
	}
	return v, nil
}

// reportViewScanner reads one JSON object, checking its syntax as
// encoding/json does, and sets the ReportView fields it names. Its methods
// report false on anything outside the fast path, and the caller decodes
// with encoding/json instead.
type reportViewScanner struct {
	b string
	i int
}

// maxScanDepth bounds the nesting the scanner follows; deeper documents go
// to encoding/json.
const maxScanDepth = 32

// scan reads the whole document, an object, into v.
func (s *reportViewScanner) scan(v *router.ReportView) bool {
	s.space()
	if !s.take('{') {
		return false
	}
	s.space()
	if s.take('}') {
		return s.end()
	}
	for {
		key, ok := s.plainString()
		if !ok {
			return false
		}
		s.space()
		if !s.take(':') {
			return false
		}
		s.space()
		start := s.i
		if !s.value(0) || !setReportField(v, key, s.b[start:s.i]) {
			return false
		}
		s.space()
		if s.take('}') {
			return s.end()
		}
		if !s.take(',') {
			return false
		}
		s.space()
	}
}

// end reports whether only white space follows.
func (s *reportViewScanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

func (s *reportViewScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *reportViewScanner) take(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// plainString reads a string of printable ASCII without escapes and
// returns its content.
func (s *reportViewScanner) plainString() (string, bool) {
	start := s.i
	if !s.str() {
		return "", false
	}
	raw := s.b[start:s.i]
	return raw[1 : len(raw)-1], isPlain(raw)
}

// value skips one JSON value, checking its syntax.
func (s *reportViewScanner) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxScanDepth {
		return false
	}
	switch c := s.b[s.i]; c {
	case '"':
		return s.str()
	case '{', '[':
		return s.composite(depth)
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}

// composite skips an object or an array.
func (s *reportViewScanner) composite(depth int) bool {
	isObject := s.b[s.i] == '{'
	closing := byte(']')
	if isObject {
		closing = '}'
	}
	s.i++
	s.space()
	if s.take(closing) {
		return true
	}
	for {
		if isObject {
			if !s.str() {
				return false
			}
			s.space()
			if !s.take(':') {
				return false
			}
			s.space()
		}
		if !s.value(depth + 1) {
			return false
		}
		s.space()
		if s.take(closing) {
			return true
		}
		if !s.take(',') {
			return false
		}
		s.space()
	}
}

// str skips a string: no control characters, only JSON's escapes. The
// stored complaints are mostly strings, so it jumps from quote to quote.
func (s *reportViewScanner) str() bool {
	if !s.take('"') {
		return false
	}
	for {
		rest := s.b[s.i:]
		end := strings.IndexByte(rest, '"')
		if end < 0 {
			return false
		}
		// A backslash before the quote may escape it.
		if esc := strings.IndexByte(rest[:end], '\\'); esc >= 0 {
			if hasControl(rest[:esc]) {
				return false
			}
			s.i += esc + 1
			if !s.escape() {
				return false
			}
			continue
		}
		if hasControl(rest[:end]) {
			return false
		}
		s.i += end + 1
		return true
	}
}

// hasControl reports whether s has a byte below 0x20, eight at a time.
func hasControl(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A byte below 0x20 borrows into its high bit when 0x20 is
		// subtracted; bytes with the high bit set (UTF-8) are masked out.
		if (x-0x20*ones)&^x&highs != 0 {
			return true
		}
	}
	for ; i < len(s); i++ {
		if s[i] < 0x20 {
			return true
		}
	}
	return false
}

func (s *reportViewScanner) escape() bool {
	if s.i >= len(s.b) {
		return false
	}
	c := s.b[s.i]
	s.i++
	switch c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return true
	case 'u':
		if s.i+4 > len(s.b) {
			return false
		}
		for _, h := range []byte(s.b[s.i : s.i+4]) {
			if !isHex(h) {
				return false
			}
		}
		s.i += 4
		return true
	}
	return false
}

func (s *reportViewScanner) literal(word string) bool {
	if !strings.HasPrefix(s.b[s.i:], word) {
		return false
	}
	s.i += len(word)
	return true
}

// number skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *reportViewScanner) number() bool {
	s.take('-')
	if s.take('0') {
		// no further digits: JSON has no leading zeros
	} else if !s.digits() {
		return false
	}
	if s.take('.') && !s.digits() {
		return false
	}
	if s.take('e') || s.take('E') {
		if !s.take('+') {
			s.take('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits skips one or more digits.
func (s *reportViewScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// isPlain reports whether a string literal is printable ASCII without
// escapes, as the keys json.Marshal writes for a complaint are.
func isPlain(literal string) bool {
	for _, c := range []byte(literal[1 : len(literal)-1]) {
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// setReportField sets the field key names to raw, a JSON value of valid
// syntax. Unknown keys are skipped, as encoding/json skips them. A key with
// an upper-case letter goes to encoding/json, which matches names without
// regard to case (json.Marshal writes Complaint's names in lower case; the
// keys here are ASCII, as plainString checked).
func setReportField(v *router.ReportView, key, raw string) bool {
	switch key {
	case "id":
		return setString(&v.ID, raw)
	case "status":
		return setString((*string)(&v.Status), raw)
	case "owner":
		return setString(&v.Owner, raw)
	case "channel":
		return setString((*string)(&v.Channel), raw)
	case "created_at":
		return setTime(&v.CreatedAt, raw)
	case "closed_at":
		return setTime(&v.ClosedAt, raw)
	case "category":
		return setString(&v.Category, raw)
	case "prevention":
		return setString(&v.Prevention, raw)
	case "reopens":
		return setInt(&v.Reopens, raw)
	case "first_response_at":
		return setTime(&v.FirstResponseAt, raw)
	case "promised_by":
		return setTime(&v.PromisedBy, raw)
	case "breaches":
		return raw[0] == '[' && json.Unmarshal([]byte(raw), &v.Breaches) == nil
	case "promises":
		return setInt(&v.Promises, raw)
	case "promises_kept":
		return setInt(&v.PromisesKept, raw)
	case "promises_broken":
		return setInt(&v.PromisesBroken, raw)
	case "csat":
		return setInt(&v.CSAT, raw)
	}
	return !hasUpper(key)
}

func hasUpper(key string) bool {
	for _, c := range []byte(key) {
		if 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// setString takes a string without escapes as it is (encoding/json changes
// only escapes and invalid UTF-8), and leaves others to encoding/json. It
// copies the string out of the stored complaint, so what the report keeps
// (ids and notes) does not hold on to the whole of it.
func setString(dst *string, raw string) bool {
	if raw[0] != '"' || strings.IndexByte(raw, '\\') >= 0 || !utf8.ValidString(raw) {
		return json.Unmarshal([]byte(raw), dst) == nil
	}
	*dst = strings.Clone(raw[1 : len(raw)-1])
	return true
}

// setInt takes an integer as json.Marshal writes it.
func setInt(dst *int, raw string) bool {
	n, err := strconv.ParseInt(raw, 10, 0)
	if err != nil {
		return false
	}
	*dst = int(n)
	return true
}

// setTime decodes a time as encoding/json does: with time.Time's own
// UnmarshalJSON.
func setTime(dst *time.Time, raw string) bool {
	return raw[0] == '"' && dst.UnmarshalJSON([]byte(raw)) == nil
}
