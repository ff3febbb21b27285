// Package translate converts OpenAI Chat Completions requests and responses
// to Anthropic Messages and back, so a fallback may change provider while the
// client's SDK keeps seeing its own wire format. It is pure: bytes in, bytes
// out, no I/O, so a request that cannot be translated is refused before any
// upstream call.
package translate

import "fmt"

// FieldError names the request or response field that stopped a translation:
// a feature the other side lacks, or a value that is malformed. Callers answer
// a 400 naming Field before any upstream call.
type FieldError struct {
	Field  string // JSON path, e.g. "messages[2].content[0].input_audio"
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("translate: %s: %s", e.Field, e.Reason)
}

func unsupported(field, reason string) error {
	return &FieldError{Field: field, Reason: reason}
}

func invalid(field string, err error) error {
	return &FieldError{Field: field, Reason: "malformed: " + err.Error()}
}
