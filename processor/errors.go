package processor

import (
	"fmt"

	"github.com/tollgate-dev/tollgate/helicone"
)

// clientError is a request Tollgate answers itself (bad header, auth, body
// too large): an HTTP status, a machine-readable code and a message that
// names the header or field at fault.
type clientError struct {
	status  int
	code    string
	message string
	// raw, when set, is the body instead of Tollgate's error shape: the
	// shape Helicone answers that error with (processor/prompt.go).
	raw []byte
}

func (e *clientError) Error() string { return e.message }

func badRequest(code, format string, args ...any) *clientError {
	return &clientError{status: 400, code: code, message: fmt.Sprintf(format, args...)}
}

// body renders the error in OpenAI's error shape, which both SDKs surface
// to the developer as the exception message (fields in encoding/json's
// order, as it always was).
func (e *clientError) body() []byte {
	if e.raw != nil {
		return e.raw
	}
	return helicone.TollgateErrorBody(e.code, e.message)
}
