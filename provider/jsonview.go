package provider

import (
	"bytes"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
)

// bytesView lets gjson read a body without copying it. Strings gjson returns
// may point into b, so anything kept past the call must go through
// keepString; b must not change while the view is in use.
func bytesView(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// maxJSONDepth is encoding/json's nesting limit, so a body Tollgate
// accepts is one the rest of a Go stack would accept too.
const maxJSONDepth = 10000

// checkJSON validates b and returns "" or why it is not JSON. gjson
// validates recursively with no depth limit: a body of a few million '['
// would exhaust the goroutine stack, which is a fatal error rather than a
// panic, so nesting is bounded first. Counting brackets is vectorized and
// settles it for any body with fewer brackets than the limit; only
// bracket-heavy bodies pay for the exact scan.
func checkJSON(b []byte) string {
	if bytes.Count(b, []byte{'['})+bytes.Count(b, []byte{'{'}) > maxJSONDepth && !nestingWithin(b, maxJSONDepth) {
		return "nested too deeply"
	}
	if !gjson.ValidBytes(b) {
		return "invalid JSON"
	}
	return ""
}

// nestingWithin reports whether arrays and objects in b nest at most limit
// deep. It follows strings so brackets inside them do not count; on invalid
// JSON it may over-count, which only makes it stricter.
func nestingWithin(b []byte, limit int) bool {
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			if depth++; depth > limit {
				return false
			}
		case ']', '}':
			depth--
		}
	}
	return true
}

// keepString detaches s from the body it may point into. Invalid UTF-8 is
// replaced because these strings end up in metric labels and log stores
// that reject it.
func keepString(s string) string {
	if !utf8.ValidString(s) {
		return validUTF8(s)
	}
	return strings.Clone(s)
}

// validUTF8 replaces each invalid byte with U+FFFD, as encoding/json does
// (strings.ToValidUTF8 would merge a run of them into one), so other parts
// of Tollgate that decode the same body see the same string.
func validUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		b.WriteRune(r) // ranging yields utf8.RuneError per invalid byte
	}
	return b.String()
}

// stringOf returns a JSON string value, or "" for any other type: a model
// given as a number is as good as no model for accounting.
func stringOf(r gjson.Result) string {
	if r.Type != gjson.String {
		return ""
	}
	return r.Str
}

// isBlank reports whether b holds only JSON whitespace.
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// firstByte returns the first non-whitespace byte of b, or 0.
func firstByte(b []byte) byte {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c
		}
	}
	return 0
}

// jsonKind names what a valid JSON document holds, for error messages.
func jsonKind(c byte) string {
	switch c {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}
