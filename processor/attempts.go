package processor

import (
	"maps"
	"slices"
	"strconv"
	"strings"
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

// routeFallbacks decides where each attempt goes. Envoy picks the upstream
// host before the upstream filter runs (router.cc chooses it, then
// upstream_request.cc runs the upstream filters), so an attempt cannot move
// itself to another origin. Entries on one origin keep one route: the
// request's, or the entries' common origin (as with Helicone-Target-URL).
// Entries on several origins take a fallback chain route: the processor
// names the attempts' origins in fallbackChainHeader, which selects a
// cluster with one priority level per attempt, and the routes' retry
// priority (previous_priorities, update_frequency 1) sends retry N to level
// N. Every origin of an entry is checked like Helicone-Target-URL (allowed
// origins, egress policy). An entry on the provider of the other format
// (OpenAI and Anthropic) is translated (translated.go); it may not be the
// first entry, and needs the gateway's key for that provider.
func (s *Server) routeFallbacks(c *call, plan *attempts.FallbackPlan, m *headerMutation) (clearRoute bool, cerr *clientError) {
	rec := c.rec
	route := rec.TargetURL
	if route == "" {
		route = publicOrigin(c.format)
	}
	origins := plan.AttemptOrigins(route)
	cross, cerr := s.crossFormats(c, plan, origins)
	if cerr != nil {
		return false, cerr
	}
	c.crossFormat = cross
	for i, o := range origins {
		if o == route {
			continue
		}
		if cerr := s.checkEntryOrigin(c, entryName(c, plan, i), o); cerr != nil {
			return false, cerr
		}
		if cross[i] != "" {
			continue // sent with the gateway's key for that provider
		}
		if c.proxyKeyID != "" && !setsHeader(plan.Entry(i), c.swappedHeader) {
			// The key vault's provider key is for the request's own
			// destination; another origin gets an attempt only if the
			// entry replaces that very header with a key of its own.
			return false, badRequest("invalid_header", "%s target-url %s: this call's provider key comes from the key vault and goes only to %s; give the entry its own key in \"headers\" as %s",
				entryName(c, plan, i), o, route, c.swappedHeader)
		}
	}
	distinct := slices.Compact(slices.Sorted(slices.Values(origins)))
	if c.proxyKeyID != "" && len(distinct) > 1 {
		// On a chain, Envoy passes an attempt to the next priority level
		// when its own origin has no address (docs/envoy.md): an entry on
		// the request's origin would then take the vault's key elsewhere.
		for i := range origins {
			if cross[i] == "" && !setsHeader(plan.Entry(i), c.swappedHeader) {
				return false, badRequest("invalid_header", "%s: with a key-vault key, a fallback across origins needs every entry's own key in \"headers\" as %s (%s has none)",
					fallbackHeaderName(c), c.swappedHeader, entryName(c, plan, i))
			}
		}
	}
	if len(distinct) > 1 && slices.Contains(distinct, "") {
		return false, badRequest("invalid_header", "%s: the entries name several origins, and this path has no provider origin of its own for the others; give every entry a target-url", fallbackHeaderName(c))
	}
	if len(distinct) > 1 {
		m.setHeader(fallbackChainHeader, strings.Join(origins, " "))
		c.chain = origins
		return true, nil
	}
	target := distinct[0]
	if f := otherFormat(c, target); f != "" {
		// A translated entry rides a fallback chain (translated.go); with
		// every attempt on the other provider there is none.
		return false, badRequest("invalid_header", "%s: every entry is on %s's origin; a fallback translated to another provider needs an entry on this request's own provider (%s) before it",
			fallbackHeaderName(c), f, c.format)
	}
	if target == "" || target == route {
		return false, nil
	}
	// Every attempt goes to the entries' one origin: Helicone sends each
	// entry to its own target-url, whatever Helicone-Target-URL says.
	rec.TargetURL, rec.Provider = target, originProvider(c.format, target)
	host := strings.TrimPrefix(strings.TrimPrefix(target, "https://"), "http://")
	m.setHeader(upstreamOriginHeader, target)
	m.setHeader(upstreamHostHeader, host)
	return true, nil
}

// setsHeader reports whether an entry sets the header name.
func setsHeader(e *attempts.FallbackEntry, name string) bool {
	if e == nil {
		return false
	}
	for _, h := range e.Headers {
		if h[0] == name {
			return true
		}
	}
	return false
}

// fallbackChainHeader selects a fallback chain route: the origin of every
// attempt, in order, separated by spaces. Only the processor sets it (the
// configs in envoy/ drop a client's before routing, and the route removes
// it before the upstream); a chain no route serves is Envoy's 400.
const fallbackChainHeader = "x-tollgate-fallback-chain"

// checkEntryOrigin applies to an entry's origin the checks of
// Helicone-Target-URL, naming the entry.
func (s *Server) checkEntryOrigin(c *call, name, origin string) *clientError {
	if origin == publicOrigin(c.format) {
		return nil
	}
	checked := origin
	if otherFormat(c, origin) == "" { // the other provider's origin is translated to (crossFormats)
		var terr *clientError
		checked, _, terr = targetOrigin(name+" target-url", origin, s.allowedOrigins)
		if terr != nil {
			return terr
		}
	}
	if c.egress != nil {
		if err := c.egress.CheckTargetOrigin(checked); err != nil {
			denied := deniedError(err)
			denied.message = name + " target-url: " + denied.message
			return s.egressDenied(c, denied)
		}
	}
	return nil
}

// entryName names, in messages, the entry of a fallback header that attempt
// i+1 uses, numbered from 0 as the header lists them.
func entryName(c *call, plan *attempts.FallbackPlan, i int) string {
	if plan.OriginalFirst {
		i--
	}
	return fallbackHeaderName(c) + " entry " + strconv.Itoa(i)
}

// originProvider is the record's provider for an origin: the format's name
// for the providers' own origins, else the host (as for Helicone-Target-URL).
func originProvider(format, origin string) string {
	for _, f := range []string{format, provider.OpenAI, provider.Anthropic} {
		if f != "" && origin == publicOrigin(f) {
			return f
		}
	}
	return strings.TrimPrefix(strings.TrimPrefix(origin, "https://"), "http://")
}

// forwardedHeader is a header's value in the request as it goes upstream:
// the processor's own (a key-vault provider key swapped in for a proxy key)
// when m sets it, else the client's; nil when absent.
func forwardedHeader(c *call, m *headerMutation, name string) *string {
	for i := len(m.set) - 1; i >= 0; i-- {
		if h := m.set[i].GetHeader(); h.GetKey() == name {
			v := string(h.GetRawValue())
			return &v
		}
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

func fallbackHeaderName(c *call) string {
	if c.helicone.Fallback != "" {
		return fallbackName
	}
	return fallbacksName
}

// publicOrigin is the provider origin a path goes to by default; a
// target-url naming it keeps the default route.
func publicOrigin(format string) string {
	switch format {
	case provider.OpenAI:
		return "https://api.openai.com"
	case provider.Anthropic:
		return "https://api.anthropic.com"
	}
	return ""
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
		if origin != publicOrigin(c.format) {
			rec.TargetURL = origin
		}
	}
}
