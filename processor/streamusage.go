package processor

import (
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/provider"
)

// askStreamUsage makes an OpenAI chat or completions stream ask for its
// usage (stream_options.include_usage), so the call is accounted exactly,
// and returns the body to send. When the client did not ask for the usage
// itself — in the body, or with Helicone-Stream-Usage: true, which makes
// Helicone add include_usage (worker/src/lib/RequestWrapper.ts) — the
// closing usage chunk is then taken out of what the client receives: a
// client of Helicone never gets a chunk it did not ask for.
func (s *Server) askStreamUsage(c *call, req provider.Request, body []byte) ([]byte, bool) {
	if !req.Stream || c.format != provider.OpenAI ||
		(c.endpoint != provider.EndpointChatCompletions && c.endpoint != provider.EndpointCompletions) {
		return body, false
	}
	if !s.streamUsage && !c.helicone.StreamUsage {
		return body, false
	}
	out, changed, err := req.EnsureStreamUsage(body)
	if err != nil || !changed {
		return body, false
	}
	if !c.helicone.StreamUsage {
		c.usageFilter = &provider.UsageEventFilter{}
	}
	return out, true
}

// filterStreamChunk is what of a streamed body chunk goes to the client:
// nil for the chunk as it came.
func filterStreamChunk(c *call, chunk []byte, end bool) *extprocv3.CommonResponse {
	if c.usageFilter == nil {
		return nil
	}
	out, changed := c.usageFilter.Filter(chunk, end)
	if !changed {
		return nil
	}
	return bodyMutation(out)
}
