package prompt

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// Small scanners over JSON that encoding/json has already validated:
// the request path renders prompts without reflection.

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the value starting at
// doc[start] in valid JSON.
func valueEnd(doc []byte, start int) int {
	switch doc[start] {
	case '"':
		return stringEnd(doc, start)
	case '{', '[':
		depth := 0
		for i := start; i < len(doc); i++ {
			switch doc[i] {
			case '"':
				i = stringEnd(doc, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(doc)
	}
	i := start
	for i < len(doc) && doc[i] != ',' && doc[i] != '}' && doc[i] != ']' && doc[i] != ' ' && doc[i] != '\t' && doc[i] != '\n' && doc[i] != '\r' {
		i++
	}
	return i
}

// stringEnd returns the index just past the string literal starting at
// doc[start] (a quote) in valid JSON.
func stringEnd(doc []byte, start int) int {
	for i := start + 1; i < len(doc); i++ {
		switch doc[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(doc)
}

// isObjectKey reports whether the string that ended at doc[i] is a key:
// in valid JSON a key, and only a key, is followed by a colon.
func isObjectKey(doc []byte, i int) bool {
	for ; i < len(doc); i++ {
		switch doc[i] {
		case ' ', '\t', '\n', '\r':
		case ':':
			return true
		default:
			return false
		}
	}
	return false
}

// unquoteString decodes a JSON string literal; only one with
// escapes (or invalid UTF-8, which becomes U+FFFD) needs encoding/json.
func unquoteString(lit []byte) (string, error) {
	if inner := lit[1 : len(lit)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), nil
	}
	var s string
	err := json.Unmarshal(lit, &s)
	return s, err
}

// appendJSONString appends s as a JSON string escaped as
// encoding/json does, except that HTML characters are kept as written for
// the model: quotes, backslashes, control characters, U+2028 and U+2029
// escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(out []byte, s string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			out = append(out, s[start:i]...)
			switch c {
			case '"', '\\':
				out = append(out, '\\', c)
			case '\n':
				out = append(out, '\\', 'n')
			case '\r':
				out = append(out, '\\', 'r')
			case '\t':
				out = append(out, '\\', 't')
			case '\b':
				out = append(out, '\\', 'b')
			case '\f':
				out = append(out, '\\', 'f')
			default:
				out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		ch, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case ch == utf8.RuneError && size == 1:
			out = append(out, s[start:i]...)
			out = append(out, `\ufffd`...)
		case ch == '\u2028' || ch == '\u2029':
			out = append(out, s[start:i]...)
			out = append(out, '\\', 'u', '2', '0', '2', hex[ch&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}

// compactJSON compacts JSON already known to be valid.
func compactJSON(b []byte) json.RawMessage {
	var buf bytes.Buffer
	buf.Grow(len(b))
	if err := json.Compact(&buf, b); err != nil {
		return append(json.RawMessage(nil), b...)
	}
	return buf.Bytes()
}

// rewriteStrings copies the valid JSON document doc compactly (callers
// check it with json.Valid), offering each
// string value (never an object key) that holds a byte of trigger to f,
// decoded. f appends what replaces the literal (any JSON value) and says
// so, or returns out unchanged and false to keep the literal as written.
// The document is walked byte by byte rather than decoded into maps, so
// key order and number spelling survive, and a value f writes is never
// looked at again.
func rewriteStrings(doc []byte, trigger string, f func(out []byte, s string) ([]byte, bool)) ([]byte, error) {
	out := make([]byte, 0, len(doc)+len(doc)/4)
	for i := 0; i < len(doc); {
		c := doc[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			end := stringEnd(doc, i)
			lit := doc[i:end]
			i = end
			if isObjectKey(doc, i) || !bytes.ContainsAny(lit, trigger) {
				out = append(out, lit...)
				continue
			}
			s, err := unquoteString(lit)
			if err != nil {
				return nil, err
			}
			var done bool
			if out, done = f(out, s); !done {
				out = append(out, lit...)
			}
		default:
			out = append(out, c)
			i++
		}
	}
	return out, nil
}

var errNotJSON = errors.New("is not valid JSON")
