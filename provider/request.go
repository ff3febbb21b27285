package provider

import (
	"fmt"

	"github.com/tidwall/gjson"
)

// Request is what Tollgate reads from a request body.
type Request struct {
	Model  string
	Stream bool
	User   string // OpenAI top-level "user"; Anthropic "metadata.user_id"

	streamUsage streamUsage // for EnsureStreamUsage
}

// ParseRequest reads a JSON request body. An empty (or all-whitespace) body
// gives a zero Request and nil error. A body that is not a JSON object
// returns an error wrapping ErrNotJSONObject.
//
// User falls back from "user" to "metadata.user_id" to OpenAI's
// "safety_identifier", the field OpenAI now recommends in place of "user".
// Fields of the wrong JSON type are ignored, not errors: the upstream is the
// one to reject them.
func ParseRequest(body []byte) (Request, error) {
	if isBlank(body) {
		return Request{}, nil
	}
	if why := checkJSON(body); why != "" {
		return Request{}, fmt.Errorf("%w (%s)", ErrNotJSONObject, why)
	}
	if c := firstByte(body); c != '{' {
		return Request{}, fmt.Errorf("%w (got %s)", ErrNotJSONObject, jsonKind(c))
	}
	// One pass over the top-level keys instead of one Get per field: the
	// messages array usually sits between "model" and "stream".
	var model, user, metaUser, safetyID string
	var stream bool
	var usage streamUsage
	gjson.Parse(bytesView(body)).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			model = stringOf(v)
		case "stream":
			stream = v.Type == gjson.True
		case "user":
			user = stringOf(v)
		case "metadata":
			if v.IsObject() {
				metaUser = stringOf(v.Get("user_id"))
			}
		case "safety_identifier":
			safetyID = stringOf(v)
		case "stream_options":
			usage = streamUsageOf(v)
		}
		return true
	})
	if user == "" {
		user = metaUser
	}
	if user == "" {
		user = safetyID
	}
	return Request{Model: keepString(model), Stream: stream, User: keepString(user), streamUsage: usage}, nil
}
