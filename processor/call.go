package processor

import (
	"bytes"
	"context"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/provider/translate"
	"github.com/tollgate-dev/tollgate/record"
)

// call is the state of one request, owned by its Process loop.
type call struct {
	started bool // request headers seen
	logged  bool // record written; nothing more to do
	start   time.Time

	format   string // provider API format used to parse bodies
	endpoint provider.Endpoint
	helicone helicone.Headers

	azure      bool   // on an Azure OpenAI path (noteAzure)
	deployment string // the path's model: Azure's deployment ("" on its v1 API), Gemini's model
	named      string // the provider a path or target origin names when it is not the format's (noteProvider)

	status       int // response :status, 0 until seen
	firstChunkAt time.Time
	stream       *provider.StreamAccumulator // set when the response is SSE, read chunk by chunk (&acc)
	acc          provider.StreamAccumulator  // kept with its buffers from one pooled call to the next
	usageFilter  *provider.UsageEventFilter  // set when the client gets the stream without the usage chunk Tollgate asked for
	// promptBody is the body sent (at most maxRequestBody bytes, and the
	// same bytes the body phase held), kept to count the prompt if the
	// call is cut before its usage (usage.go).
	promptBody []byte
	// The response body is kept once, up to the larger of what the log and
	// the cache want (respKeep); respBytes counts all of it. A buffered
	// body, which comes in one message, is kept as that message's bytes
	// (respChunk) without a copy; a streamed one is gathered in respBody,
	// a buffer the pooled call keeps from one call to the next.
	respBody  bytes.Buffer
	respChunk []byte
	respKeep  int
	respBytes int

	ctx        context.Context
	rawPath    string                // :path with query, as the client sent it
	reqHeaders []*corev3.HeaderValue // original request headers (Helicone ones included)
	// header looks a request header up (findHeader over reqHeaders) for the
	// gate; made once per pooled call rather than a closure per call.
	header func(name string) string

	decision        *gate.Decision // cache / rate-limit verdict; nil without a gate
	semScope        string         // semantic cache scope of an opted-in exact miss
	semVec          []float32      // its prompt's vector, stored with the answer (semantic.go)
	free            bool           // answered from the cache: costs nothing
	chargeUSD       float64        // what cents limits are charged: the served model's price (finish)
	completed       bool           // the gate's Complete ran
	respContentType string
	respMediaType   string // its media type (mediaType)

	egress    *egress.Decision // the egress policy's verdict; nil without a policy
	forwarded bool             // the request went on to the provider (at least one attempt)
	link      *attemptLink     // retries or fallback asked for; nil otherwise
	chain     []string         // the origin of each attempt of a fallback chain route
	// crossFormat: the fallback entries on another provider (translated.go)
	crossFormat map[int]string
	// proxyKeyID is the key-vault proxy key the call was made with ("":
	// none); the provider key it stands for is only in the mutation.
	proxyKeyID string
	// swappedHeader and swappedValue are the credential header the proxy
	// key came in and the provider key set in its place, for the body
	// phase's own calls (the moderation check): one lookup per call.
	swappedHeader, swappedValue string
	linkKey                     string
	// xstream translates a streamed answer of another provider back to
	// the client's format (translated.go); xstreamDone once it is closed
	// or broken.
	xstream     translate.StreamTranslator
	xstreamDone bool
	// xstreamBroke: the translated stream broke (translatedStreamBroke);
	// the record's status is then a 502.
	xstreamBroke bool

	rec *record.Record
}

// calls are reused: a call is a few hundred bytes, and its stream buffer
// grows to a few kilobytes per SSE response.
var calls = sync.Pool{New: func() any { return new(call) }}

// maxPooledBody bounds the stream buffer a pooled call keeps: a rare long
// stream should not pin its buffer for good.
const maxPooledBody = 64 << 10

func (s *Server) newCall(ctx context.Context) *call {
	c := calls.Get().(*call)
	c.ctx, c.rec = ctx, &record.Record{} // the record goes to the sink: never reused
	if c.header == nil {
		c.header = func(name string) string { return findHeader(c.reqHeaders, name) }
	}
	return c
}

// releaseCall returns c to the pool when its Process loop is over: the
// record is with the sink, and the gate's Check and Complete, which read
// the call's headers and response body, have returned (they keep nothing;
// see Gate). What a call keeps for the next are its buffers: the stream
// buffer, the accumulator's (Reset when a stream starts) and the header
// closure.
func releaseCall(c *call) {
	buf, acc, header := c.respBody, c.acc, c.header
	*c = call{acc: acc, header: header}
	if buf.Cap() <= maxPooledBody {
		buf.Reset()
		c.respBody = buf
	}
	calls.Put(c)
}

// respKept is the response body as kept (see respKeep): the buffered
// message's bytes, or the stream's buffer.
func (c *call) respKept() []byte {
	if c.respChunk != nil {
		return c.respChunk
	}
	return c.respBody.Bytes()
}

// headerValue reads a header the way current Envoy sends it: raw_value,
// falling back to value for older Envoys.
func headerValue(h *corev3.HeaderValue) string {
	if raw := h.GetRawValue(); len(raw) > 0 {
		return messageString(raw)
	}
	return h.GetValue()
}

// findHeader returns the first value of a (lowercase) header.
func findHeader(headers []*corev3.HeaderValue, key string) string {
	for _, h := range headers {
		if h.GetKey() == key {
			return headerValue(h)
		}
	}
	return ""
}

// appendCapped appends p to buf without letting buf grow past max bytes.
func appendCapped(buf *bytes.Buffer, p []byte, max int) {
	if room := max - buf.Len(); room > 0 {
		if len(p) > room {
			p = p[:room]
		}
		buf.Write(p)
	}
}
