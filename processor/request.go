package processor

import (
	"cmp"
	"errors"
	"slices"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/provider"
)

// onRequestHeaders reads identity and metadata, resolves the tenant, the
// workload and the upstream, applies what the egress policy says of them,
// plans retries and fallback, and strips every Helicone-* header before the
// provider sees it.
func (s *Server) onRequestHeaders(c *call, msg *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	c.started = true
	c.start = s.now()
	rec := c.rec
	rec.CreatedAt = c.start.UTC()

	var cerr *clientError
	var workloadHeaders, clientRouting []string
	clientLink := false
	var proxyHeader, proxyValue string // a key-vault proxy key (vault.go)
	var pathWithoutKey string          // :path without a proxy key's key= parameter
	c.reqHeaders = msg.GetHeaders().GetHeaders()
	for _, h := range c.reqHeaders {
		key := strings.ToLower(h.GetKey())
		switch {
		case key == ":path":
			rec.Path = headerValue(h)
			c.rawPath = rec.Path
		case key == ":method":
			rec.Method = headerValue(h)
		case key == clientLinkHeader:
			clientLink = true // only the processor may link streams
		case key == upstreamOriginHeader || key == upstreamHostHeader || key == fallbackChainHeader || key == attemptsHeader || routerHeader(key):
			clientRouting = append(clientRouting, key)
		case credentialHeader(key) && isProxyKeyHeader(h):
			if proxyHeader != "" && cerr == nil { // which would be swapped, which sent as it is?
				cerr = badRequest("invalid_header", "%s and %s both hold a key-vault proxy key; send one", proxyHeader, key)
			}
			proxyHeader, proxyValue = key, headerValue(h)
		case isWorkloadHeader(key):
			workloadHeaders = append(workloadHeaders, key)
		case strings.HasPrefix(key, helicone.Prefix):
			if err := c.helicone.Add(key, headerValue(h)); err != nil && cerr == nil {
				cerr = badRequest("invalid_header", "%s", err.Error())
			}
		}
	}
	if key, rest, n, qerr := proxyKeyInQuery(c.rawPath); n > 0 || qerr != nil { // Gemini's ?key= (vault.go)
		switch {
		case cerr != nil:
		case qerr != nil:
			cerr = badRequest("invalid_header", "%s", qerr.Error())
		case proxyHeader != "":
			cerr = badRequest("invalid_header", "%s and %s both hold a key-vault proxy key; send one", proxyHeader, queryKeyHeader)
		case n > 1:
			cerr = badRequest("invalid_header", "%s is given %d key-vault proxy keys; send one", queryKeyHeader, n)
		}
		if qerr == nil {
			proxyHeader, proxyValue, pathWithoutKey = queryKeyHeader, key, rest
		}
	}
	hh := &c.helicone
	hh.Identify(rec)

	path, _, _ := strings.Cut(rec.Path, "?")
	rec.Path = path
	noteProvider(c, path) // providers.go

	var tenant string
	var proxy *proxyKeyUse
	if proxyHeader != "" {
		var perr *clientError
		if proxy, perr = s.lookupProxyKey(proxyHeader, proxyValue); perr == nil {
			proxy.pathWithoutKey = pathWithoutKey
			tenant, perr = s.tenantWithProxyKey(proxy, hh.Auth)
		}
		if cerr == nil {
			cerr = perr
		}
	} else if t, err := s.auth.Tenant(hh.Auth); err != nil && cerr == nil {
		status := 401
		if !errors.Is(err, policies.ErrUnauthorized) {
			status = 500
		}
		cerr = &clientError{status: status, code: "unauthorized", message: err.Error()}
	} else {
		tenant = t
	}
	rec.Tenant = tenant

	var m headerMutation
	clearRoute := false
	if name, target := targetHeader(hh); target != "" && cerr == nil {
		origin, host, terr := targetOrigin(name, target, s.allowedOrigins)
		if terr != nil {
			cerr = terr
		} else {
			rec.TargetURL = origin
			rec.Provider = host
			if name, ok := noteTargetProvider(c, origin); ok {
				rec.Provider = name
			}
			m.setHeader(upstreamOriginHeader, origin)
			m.setHeader(upstreamHostHeader, host)
			clearRoute = true
		}
	}
	noteAzure(c, path)
	if proxy != nil {
		proxy.swap(c, &m) // once the destination is known: its header (vault.go)
		if cerr == nil {
			cerr = proxy.destinationError(c)
		}
	}
	w := s.identify(c)
	if cerr == nil {
		cerr = s.decideEgress(c, w)
	}
	if cerr == nil {
		var rerouted bool
		rerouted, cerr = s.planAttempts(c, &m)
		clearRoute = clearRoute || rerouted
	}
	if cerr != nil {
		return s.reject(c, cerr)
	}
	if clientLink {
		m.removeHeader(clientLinkHeader)
	}
	if dropClientRouting(&m, clientRouting) {
		clearRoute = true
	}
	if msg.GetEndOfStream() && hh.PromptID != "" {
		return s.reject(c, badRequest("invalid_body", "Helicone-Prompt-Id needs a request body to render into: send {} (the template's messages fill it)"))
	}
	if msg.GetEndOfStream() { // no body phase will come: decide now
		if answer := s.admit(c, nil); answer != nil {
			return answer
		}
	}
	m.remove = slices.Grow(m.remove, len(hh.Names)+len(workloadHeaders)) // one allocation, not one per doubling
	for _, name := range hh.Names {
		m.removeHeader(name)
	}
	for _, name := range workloadHeaders {
		m.removeHeader(name)
	}
	c.forwarded = msg.GetEndOfStream()
	return withLink(c, requestHeadersReply(common(&m, replyChanges{clearRouteCache: clearRoute})))
}

// onRequestBody renders a prompt template into the body, parses it (model,
// stream, user), asks OpenAI streams for their usage, checks the models
// against the egress policy, keeps the body for the log and runs the gate.
func (s *Server) onRequestBody(c *call, msg *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	body := msg.GetBody()
	if len(body) > s.maxRequestBody {
		return s.reject(c, &clientError{status: 413, code: "request_too_large",
			message: "request body is " + itoa(len(body)) + " bytes; the limit is " + itoa(s.maxRequestBody)})
	}
	rec := c.rec
	var m headerMutation
	replace := false
	if s.wantsPrompt(c, body) {
		out, cerr := s.applyPrompt(c, body)
		if cerr != nil {
			return s.reject(c, cerr)
		}
		if out != nil {
			body, replace = out, true
		}
	}
	if out, changed := s.limitTokens(c, body); changed { // tokenlimit.go
		body, replace = out, true
	}
	if c.endpoint != provider.EndpointUnknown && len(body) > 0 {
		req, err := provider.ParseRequest(body)
		if err != nil {
			return s.reject(c, badRequest("invalid_body", "request body for %s must be a JSON object: %v", rec.Path, err))
		}
		rec.Model = cmp.Or(req.Model, c.deployment)
		rec.Stream = req.Stream || streamsByPath(c.endpoint)
		if rec.UserID == "" {
			rec.UserID = req.User
		}
		if out, changed := s.askStreamUsage(c, req, body); changed {
			body, replace = out, true
		}
		c.promptBody = body // the prompt of a call cut before its usage (usage.go)
	}
	if cerr := s.checkEgressModels(c, body); cerr != nil {
		return s.reject(c, cerr)
	}
	if !c.helicone.OmitRequest {
		rec.RequestBody = loggedString(loggedBody(c.egress, false, body), s.maxLoggedBody)
	}
	if answer := s.admit(c, body); answer != nil {
		return answer
	}
	if answer := s.screenCall(c, body); answer != nil { // screen.go
		return answer
	}
	if cerr := s.translateEntries(c, body); cerr != nil { // translated.go
		return s.reject(c, cerr)
	}
	if c.link != nil {
		c.link.body.Store(&body) // every fallback entry is rewritten from this
	}
	c.forwarded = true
	return requestBodyReply(common(&m, replyChanges{replaceBody: replace, body: body}))
}

// reject answers the call with a Tollgate error and logs it.
func (s *Server) reject(c *call, e *clientError) *extprocv3.ProcessingResponse {
	var m headerMutation
	m.setHeader("content-type", "application/json")
	m.setHeader(helicone.XHeliconeError, e.code)
	if c.rec.RequestID != "" {
		m.setHeader(helicone.ResponseID, c.rec.RequestID)
	}
	c.rec.Error = e.message
	s.metrics.rejected.WithLabelValues(e.code).Inc()
	s.finish(c, int32(e.status))
	return immediateReply(e.status, &m, e.body(), "tollgate_"+e.code)
}

// routerHeader says whether key is one of the x-envoy-* request headers
// Envoy's router obeys (retries, timeouts, hedging, stats and trace
// names), which Envoy's connection manager removes from an external
// request (conn_manager_utility.cc, cleanInternalHeaders). Only these are
// a client's to lose: Envoy adds others itself before the filters run
// (x-envoy-external-address with use_remote_address, on every external
// request), and in a mesh so do Istio's sidecars. A switch on constant
// names: no allocation, and nothing to do for a request with none of them.
func routerHeader(key string) bool {
	if !strings.HasPrefix(key, "x-envoy-") {
		return false
	}
	switch key {
	case "x-envoy-retriable-status-codes",
		"x-envoy-retriable-header-names",
		"x-envoy-retry-on",
		"x-envoy-retry-grpc-on",
		"x-envoy-max-retries",
		"x-envoy-upstream-alt-stat-name",
		"x-envoy-upstream-rq-timeout-ms",
		"x-envoy-upstream-rq-per-try-timeout-ms",
		"x-envoy-upstream-rq-timeout-alt-response",
		"x-envoy-expected-rq-timeout-ms",
		"x-envoy-force-trace",
		"x-envoy-ip-tags",
		"x-envoy-original-url",
		"x-envoy-hedge-on-per-try-timeout":
		return true
	}
	return false
}

// dropClientRouting removes the routing headers a client sent that this
// reply does not set itself: x-tollgate-upstream(-host), which would pick the
// forward-proxy route, and the x-envoy-* headers that steer Envoy's router
// (routerHeader; x-envoy-max-retries: 10 makes ten paid calls under one
// record). Envoy's configs strip them before routing already (early header
// mutation, and the connection manager for an external request); this
// covers a config without that. It reports whether a routing header went,
// so that the reply clears the route cache: Envoy picked the route from the
// client's headers before any filter ran.
func dropClientRouting(m *headerMutation, keys []string) (rerouted bool) {
	for _, k := range keys {
		if m.sets(k) || slices.Contains(m.remove, k) {
			continue
		}
		m.removeHeader(k)
		if !routerHeader(k) {
			rerouted = true
		}
	}
	return rerouted
}

// sets says whether the mutation sets key.
func (m *headerMutation) sets(key string) bool {
	for _, o := range m.set {
		if o.GetHeader().GetKey() == key {
			return true
		}
	}
	return false
}
