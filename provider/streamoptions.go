package provider

import (
	"fmt"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// EnsureStreamUsage makes an OpenAI chat-completions (or completions) stream
// request ask for usage: it sets stream_options.include_usage = true unless
// include_usage is already true or false (an explicit choice is kept).
// Without it OpenAI streams carry no token counts at all.
//
// Only requests with "stream": true are changed, because OpenAI rejects
// stream_options on a non-streamed request. A stream_options that is
// neither an object nor null is left for the upstream to reject.
// Returns the body unchanged and changed=false when nothing was done; body
// itself is never modified.
func EnsureStreamUsage(body []byte) (out []byte, changed bool, err error) {
	if isBlank(body) {
		return body, false, nil
	}
	if why := checkJSON(body); why != "" {
		return body, false, fmt.Errorf("%w (%s)", ErrNotJSONObject, why)
	}
	if c := firstByte(body); c != '{' {
		return body, false, fmt.Errorf("%w (got %s)", ErrNotJSONObject, jsonKind(c))
	}
	var stream, opts gjson.Result
	gjson.Parse(bytesView(body)).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "stream":
			stream = v
		case "stream_options":
			opts = v
		}
		return true
	})
	if stream.Type != gjson.True {
		return body, false, nil
	}
	switch {
	case !opts.Exists() || opts.Type == gjson.Null:
		out, err = sjson.SetRawBytes(body, "stream_options", []byte(`{"include_usage":true}`))
	case opts.IsObject():
		if t := opts.Get("include_usage").Type; t == gjson.True || t == gjson.False {
			return body, false, nil
		}
		out, err = sjson.SetBytes(body, "stream_options.include_usage", true)
	default:
		return body, false, nil
	}
	if err != nil {
		return body, false, err
	}
	return out, true, nil
}
