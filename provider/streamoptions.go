package provider

import (
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// streamUsage is what a request's stream_options says about usage, read by
// ParseRequest so that adding include_usage needs no second pass.
type streamUsage int8

const (
	streamUsageUnset    streamUsage = iota // stream_options absent or null
	streamUsageNoFlag                      // an object without a boolean include_usage
	streamUsageDeclined                    // include_usage: false
	streamUsageAsked                       // include_usage: true
	streamUsageKeep                        // a value left for the upstream to reject
)

func streamUsageOf(opts gjson.Result) streamUsage {
	switch {
	case opts.Type == gjson.Null:
		return streamUsageUnset
	case opts.IsObject():
		switch opts.Get("include_usage").Type {
		case gjson.True:
			return streamUsageAsked
		case gjson.False:
			return streamUsageDeclined
		}
		return streamUsageNoFlag
	}
	return streamUsageKeep
}

// UsageAsked reports whether the client itself asked a stream for its usage
// (stream_options.include_usage: true), and so expects OpenAI's closing
// usage chunk.
func (r Request) UsageAsked() bool { return r.streamUsage == streamUsageAsked }

// EnsureStreamUsage makes an OpenAI chat-completions (or completions) stream
// request ask for usage: it sets stream_options.include_usage = true unless
// it is true already. Without it OpenAI streams carry no token counts at
// all. A client that did not ask (include_usage absent, null or false) does
// not expect the usage chunk the stream then ends with: the caller removes
// it from what the client receives (UsageEventFilter), see UsageAsked.
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
	case streamUsageNoFlag, streamUsageDeclined:
		out, err = sjson.SetBytes(body, "stream_options.include_usage", true)
	default:
		return body, false, nil
	}
	if err != nil {
		return body, false, err
	}
	return out, true, nil
}
