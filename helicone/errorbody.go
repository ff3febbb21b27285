package helicone

import "unicode/utf8"

// Escaping is how AppendErrorBody writes the field values. Both give valid
// JSON for valid UTF-8; two exist because the replies were written two ways
// before they shared this function, and clients may compare the bytes.
type Escaping uint8

const (
	// EscapeHTML is encoding/json's: <, > and & as \u003c, \u003e, \u0026;
	// \b \f \n \r \t short; other control bytes as \u00XX; invalid UTF-8
	// as \ufffd; U+2028 and U+2029 escaped. The processor's own errors, the
	// fail-closed 503 and the API's errors.
	EscapeHTML Escaping = iota
	// EscapeMinimal escapes only '"', '\' and control bytes (as \u00XX) and
	// copies everything else: the policies' replies (rate-limit 429s, the
	// egress policy's 403).
	EscapeMinimal
)

// AppendErrorBody appends the OpenAI-style error body both SDKs surface to
// the developer, {"error":{"message":…,"type":…,"code":…}}, to dst and
// returns it. fields are name, value pairs written in the order given (the
// names are the caller's constants and are not escaped); every value is a
// JSON string. Callers size dst when the reply is on a per-call path, so
// the body costs one allocation.
func AppendErrorBody(dst []byte, esc Escaping, fields ...string) []byte {
	dst = append(dst, `{"error":{`...)
	for i := 0; i+1 < len(fields); i += 2 {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, fields[i]...)
		dst = append(dst, `":`...)
		dst = appendJSONString(dst, fields[i+1], esc)
	}
	return append(dst, "}}"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string, esc Escaping) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (esc == EscapeMinimal || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case esc == EscapeHTML && c == '\b':
				b = append(b, '\\', 'b')
			case esc == EscapeHTML && c == '\f':
				b = append(b, '\\', 'f')
			case esc == EscapeHTML && c == '\n':
				b = append(b, '\\', 'n')
			case esc == EscapeHTML && c == '\r':
				b = append(b, '\\', 'r')
			case esc == EscapeHTML && c == '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		if esc == EscapeMinimal {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// TollgateErrorBody is the error body of Tollgate's own refusals (type
// tollgate_error), fields in encoding/json's order as they always were.
func TollgateErrorBody(code, message string) []byte {
	return AppendErrorBody(make([]byte, 0, 96+len(code)+len(message)), EscapeHTML,
		"code", code, "message", message, "type", "tollgate_error")
}
