package processor

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/attempts"
	"github.com/tollgate-dev/tollgate/provider"
)

// Retries and fallback, the Envoy way. Envoy's router makes the attempts;
// the processor only tells it how (x-envoy-* retry headers on the request)
// and, through the upstream-level ext_proc filter that runs once per attempt,
// rewrites each attempt for its fallback entry. The two streams of one
// request meet in Server.links through a random key that travels as dynamic
// metadata, never as a header: Envoy's attempts share one request header map
// (router/upstream_request.cc, acceptHeadersFromRouter decodes
// parent_.downstreamHeaders()), so a header the upstream filter removed on
// attempt 1 would be gone for attempt 2, and one it kept would reach the
// provider.
//
// The router-level filter's reply to the request headers carries
// dynamic_metadata {LinkNamespace: {"link": key}}; its
// metadata_options.receiving_namespaces lets it into the stream's dynamic
// metadata (ext_proc.cc, setDynamicMetadata). Upstream HTTP filters share
// the downstream stream's StreamInfo (upstream_request.cc,
// UpstreamFilterManager::streamInfo), so the upstream-level filter, whose
// metadata_options.forwarding_namespaces names the namespace, sends it in
// every message's metadata_context (ext_proc.cc, addDynamicMetadata).
const (
	// LinkNamespace is the dynamic metadata namespace of the link; the
	// Envoy configs (and the local data plane of tollgate dev) receive it
	// at the router level and forward it at the upstream level.
	LinkNamespace = "tollgate"
	linkField     = "link"
	// clientLinkHeader was the link's carrier before the metadata; Envoy's
	// early header mutation still drops a client's, and so does the
	// processor, so no old deployment can be steered by one.
	clientLinkHeader = "x-tollgate-link"
	// fallbackNextHeader is set on an attempt's response by the upstream
	// filter when the next fallback entry should answer instead; the router
	// retries on it (retriable-headers).
	fallbackNextHeader = "x-tollgate-fallback-next"
	// attemptCountHeader is Envoy's 1-based attempt number
	// (include_request_attempt_count).
	attemptCountHeader = "x-envoy-attempt-count"
	// attemptsHeader, set with clear_route_cache on a call with retries or
	// fallbacks, selects the route whose cluster runs the upstream-level
	// filter. The configs in envoy/ drop a client's before routing and
	// remove it before the upstream.
	attemptsHeader = "x-tollgate-attempts"
)

// attemptLink is what the upstream-level streams of a request need from its
// router-level stream, and what they report back. The streams run on other
// goroutines, hence the atomics.
type attemptLink struct {
	plan     *attempts.FallbackPlan // nil: retries only
	retry    *attempts.RetryPolicy  // nil: fallback only
	body     atomic.Pointer[[]byte] // the body attempt 1 sends; entries are rewritten from it
	attempts atomic.Int32           // highest attempt number seen
	index    atomic.Int32           // fallback index of the latest attempt
	// Every header some entry sets, with its value in the request as sent
	// ("" and absent: removed), so each attempt can start from the request.
	entryHeaders map[string]*string
	// chain is the origin of each attempt when they differ (a fallback
	// chain route); nil when every attempt goes to one origin.
	chain []string
	// cursor says which entry each attempt uses when the attempts stay on
	// one origin, where an entry is retried in place (nil: no plan, or a
	// chain, whose attempt N is always entry N-1).
	mu     sync.Mutex
	cursor *attempts.Cursor
	// crossFormat names the provider of each entry on the other
	// provider's origin (translated.go); cross holds their translated
	// bodies, written in the body phase before body is stored.
	crossFormat map[int]string
	cross       map[int]*crossEntry
	crossNames  []string // the headers a translated attempt sets or removes (crossHeaderNames)
}

// restoreHeaders sets, for one attempt, the headers of its entry (nil: the
// request as sent) and puts back the request's own value of every header
// another entry changed.
func (l *attemptLink) restoreHeaders(m *headerMutation, e *attempts.FallbackEntry, over map[string]*string) {
	// A translated attempt's own headers (over) win over the entry's and
	// are applied whatever entryHeaders holds: the client's key must never
	// go to the other provider (nil: removed).
	for _, name := range slices.Sorted(maps.Keys(over)) {
		if o := over[name]; o != nil {
			m.setHeader(name, *o)
		} else {
			m.removeHeader(name)
		}
	}
	if len(l.entryHeaders) == 0 {
		return
	}
	mine := map[string]string{}
	if e != nil {
		for _, h := range e.Headers {
			mine[h[0]] = h[1]
		}
	}
	for _, name := range slices.Sorted(maps.Keys(l.entryHeaders)) {
		if _, ok := over[name]; ok {
			continue
		}
		switch v, set := mine[name]; {
		case set:
			m.setHeader(name, v)
		case l.entryHeaders[name] != nil:
			m.setHeader(name, *l.entryHeaders[name])
		default:
			m.removeHeader(name)
		}
	}
}

func (l *attemptLink) noteAttempt(n int32) {
	for {
		cur := l.attempts.Load()
		if n <= cur || l.attempts.CompareAndSwap(cur, n) {
			return
		}
	}
}

// planAttempts reads Helicone-Retry-* and Helicone-Fallback(s), adds Envoy's
// retry headers to m, registers the link (sent by withLink) and moves the
// call to a route with the upstream-level filter (clearRoute). A bad header
// is a client error naming it.
func (s *Server) planAttempts(c *call, m *headerMutation) (clearRoute bool, cerr *clientError) {
	hh, rec := &c.helicone, c.rec
	var retry *attempts.RetryPolicy
	if hh.Retry != (helicone.RetryHeaders{}) {
		var err error
		retry, err = attempts.ParseRetryPolicy(hh.Retry, &hh.Warnings)
		if err != nil {
			return false, badRequest("invalid_header", "%s", err.Error())
		}
	}
	plan, err := attempts.ParseFallbacks(hh.Fallback, hh.Fallbacks)
	if err != nil {
		return false, badRequest("invalid_header", "%s", err.Error())
	}
	if retry != nil {
		rec.RetryPolicy = retry.String()
	}
	if plan == nil && (retry == nil || retry.Retries() == 0) {
		// Nothing but the first attempt (Helicone-Retry-Num 0 or 1, no
		// fallbacks): no retry headers, no link, and the plain route,
		// which opens no upstream-level stream.
		return false, nil
	}
	envoy := attempts.EnvoyRetry{OnConnectError: true}
	if retry != nil {
		// Helicone-Retry-Num counts attempts, the first included.
		envoy.MaxRetries = retry.Retries()
		envoy.OnStatusCodes = attempts.RetryStatusCodes
	}
	var cursor *attempts.Cursor
	if plan != nil {
		if clearRoute, cerr = s.routeFallbacks(c, plan, m); cerr != nil {
			return false, cerr
		}
		if c.chain != nil {
			// One priority level per attempt: a retry past the last one
			// would go back to level 0 (previous_priorities falls back to
			// the original load) with the last entry's headers, another
			// origin's key among them.
			envoy.MaxRetries = plan.Retries()
		} else {
			// Each entry is retried in place, as at Helicone: the upstream
			// filter asks for every retry with the marker header, so Envoy
			// must not retry a status on its own.
			cursor = attempts.NewCursor(plan, retry)
			envoy.MaxRetries = cursor.MaxAttempts() - 1
			envoy.OnStatusCodes = nil
		}
		envoy.OnHeader = fallbackNextHeader
	}
	for _, h := range envoy.Headers() {
		m.setHeader(h[0], h[1])
	}
	// A random key, not the request id: a client may reuse its ids, and a
	// link must never hand one request's body to another.
	c.linkKey = uuid.NewString()
	c.link = &attemptLink{plan: plan, retry: retry, chain: c.chain, cursor: cursor, crossFormat: c.crossFormat}
	if len(c.crossFormat) > 0 {
		// A translated attempt changes these; the others put them back.
		c.link.entryHeaders = map[string]*string{}
		c.link.crossNames = crossHeaderNames(c, m)
		for _, name := range c.link.crossNames {
			c.link.entryHeaders[name] = forwardedHeader(c, m, name)
		}
	}
	if plan != nil {
		for _, e := range plan.Entries {
			for _, h := range e.Headers {
				if c.link.entryHeaders == nil {
					c.link.entryHeaders = map[string]*string{}
				}
				if _, seen := c.link.entryHeaders[h[0]]; !seen {
					c.link.entryHeaders[h[0]] = forwardedHeader(c, m, h[0])
				}
			}
		}
	}
	s.links.Store(c.linkKey, c.link)
	// Only these calls need the upstream-level filter: the header picks
	// the upstream's *_attempts route, whose cluster has it (envoy/*.yaml;
	// the plain clusters have none, so a plain call opens one stream).
	m.setHeader(attemptsHeader, "1")
	return true, nil
}

// withLink adds the call's link to the reply that lets the request go on,
// as dynamic metadata for the upstream-level filter (see LinkNamespace).
func withLink(c *call, resp *extprocv3.ProcessingResponse) *extprocv3.ProcessingResponse {
	if c.link == nil || resp == nil {
		return resp
	}
	resp.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
		LinkNamespace: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			linkField: structpb.NewStringValue(c.linkKey),
		}}),
	}}
	return resp
}

// linkKeyOf reads the link from an upstream-level message's metadata_context.
func linkKeyOf(req *extprocv3.ProcessingRequest) string {
	ns := req.GetMetadataContext().GetFilterMetadata()[LinkNamespace]
	return ns.GetFields()[linkField].GetStringValue()
}

// forwardedHeader is a header's value in the request as it goes upstream:
// the processor's own (a key-vault provider key swapped in for a proxy key)
// when m sets it, else the client's; nil when absent or removed by m (the
// header a proxy key came in, when its provider reads another).
func forwardedHeader(c *call, m *headerMutation, name string) *string {
	for i := len(m.set) - 1; i >= 0; i-- {
		if h := m.set[i].GetHeader(); h.GetKey() == name {
			v := string(h.GetRawValue())
			return &v
		}
	}
	if slices.Contains(m.remove, name) {
		return nil
	}
	return originalHeader(c, name)
}

func originalHeader(c *call, name string) *string {
	for _, h := range c.reqHeaders {
		if h.GetKey() == name {
			v := headerValue(h)
			return &v
		}
	}
	return nil
}

// releaseLink forgets the call's link once its record is written: no attempt
// of it can start after that.
func (s *Server) releaseLink(c *call) {
	if c.link == nil {
		return
	}
	s.links.Delete(c.linkKey)
	rec := c.rec
	rec.Attempts = max(rec.Attempts, c.link.attempts.Load())
	if c.link.plan != nil {
		rec.FallbackIndex = c.link.index.Load()
	}
	if chain := c.link.chain; chain != nil && c.link.attempts.Load() > 0 {
		// The origin of the entry that answered (or of the last attempt).
		origin := chain[min(int(rec.FallbackIndex), len(chain)-1)]
		rec.Provider = originProvider(c.format, origin)
		rec.TargetURL = ""
		if origin != provider.PublicOrigin(c.format) {
			rec.TargetURL = origin
		}
	}
}
