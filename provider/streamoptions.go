package provider

import (
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// streamUsage is what a request's stream_options says about usage, read by
// ParseRequest so that adding include_usage needs no second pass.
type streamUsage int8

const (
	streamUsageUnset  streamUsage = iota // stream_options absent or null
	streamUsageNoFlag                    // an object without a boolean include_usage
	streamUsageKeep                      // include_usage chosen, or a value left for the upstream to reject
)

func streamUsageOf(opts gjson.Result) streamUsage {
	switch {
	case opts.Type == gjson.Null:
		return streamUsageUnset
	case opts.IsObject():
		if t := opts.Get("include_usage").Type; t == gjson.True || t == gjson.False {
			return streamUsageKeep
		}
		return streamUsageNoFlag
	}
	return streamUsageKeep
}

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
	req, err := ParseRequest(body)
	if err != nil {
		return body, false, err
	}
	return req.EnsureStreamUsage(body)
}

// EnsureStreamUsage is EnsureStreamUsage for a body already parsed into r:
// it does not validate or walk the body again.
func (r Request) EnsureStreamUsage(body []byte) (out []byte, changed bool, err error) {
	if !r.Stream {
		return body, false, nil
	}
	switch r.streamUsage {
	case streamUsageUnset:
		out, err = sjson.SetRawBytes(body, "stream_options", []byte(`{"include_usage":true}`))
	case streamUsageNoFlag:
		out, err = sjson.SetBytes(body, "stream_options.include_usage", true)
	default:
		return body, false, nil
	}
	if err != nil {
		return body, false, err
	}
	return out, true, nil
}
