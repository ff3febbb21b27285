package processor

import (
	"bytes"
	"context"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/provider"
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
	deployment string // the path's deployment; "" for Azure's v1 API

	status       int // response :status, 0 until seen
	firstChunkAt time.Time
	stream       *provider.StreamAccumulator // set when the response is SSE, read chunk by chunk
	usageFilter  *provider.UsageEventFilter  // set when the client gets the stream without the usage chunk Tollgate asked for
	// promptBody is the body sent of a streamed request (at most
	// maxRequestBody bytes, and the same bytes the body phase held), kept
	// to count the prompt if the stream ends before its usage (usage.go).
	promptBody []byte
	// The response body is kept once, up to the larger of what the log and
	// the cache want (respKeep); respBytes counts all of it.
	respBody  bytes.Buffer
	respKeep  int
	respBytes int

	ctx        context.Context
	rawPath    string                // :path with query, as the client sent it
	reqHeaders []*corev3.HeaderValue // original request headers (Helicone ones included)

	decision        *gate.Decision // cache / rate-limit verdict; nil without a gate
	free            bool           // answered from the cache: costs nothing
	chargeUSD       float64        // what cents limits are charged: the served model's price (finish)
	completed       bool           // the gate's Complete ran
	respContentType string

	egress    *egress.Decision // the egress policy's verdict; nil without a policy
	forwarded bool             // the request went on to the provider (at least one attempt)
	link      *attemptLink     // retries or fallback asked for; nil otherwise
	chain     []string         // the origin of each attempt of a fallback chain route
	// proxyKeyID is the key-vault proxy key the call was made with ("":
	// none); the provider key it stands for is only in the mutation.
	proxyKeyID string
	// swappedHeader and swappedValue are the credential header the proxy
	// key came in and the provider key set in its place, for the body
	// phase's own calls (the moderation check): one lookup per call.
	swappedHeader, swappedValue string
	linkKey                     string

	rec *record.Record
}

func (s *Server) newCall(ctx context.Context) *call {
	return &call{ctx: ctx, rec: &record.Record{}}
}

// headerValue reads a header the way current Envoy sends it: raw_value,
// falling back to value for older Envoys.
func headerValue(h *corev3.HeaderValue) string {
	if len(h.GetRawValue()) > 0 {
		return string(h.GetRawValue())
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
