package processor

import (
	"context"
	"errors"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// Gate is the cache and rate-limit policy as the processor uses it (see
// gate.Gate): one store round trip before the call, one write after.
// Neither may keep what it is handed once it returns: req's Helicone and
// Header and resp's Body point into the call, which a later call reuses
// (calls are pooled, call.go).
type Gate interface {
	Check(ctx context.Context, req gate.RequestInfo) (*gate.Decision, error)
	Complete(ctx context.Context, d *gate.Decision, resp gate.ResponseInfo)
}

// admit runs the gate once the request is known (after the body phase, or
// after the headers of a request without a body). A non-nil reply answers
// the call without the provider.
func (s *Server) admit(c *call, body []byte) *extprocv3.ProcessingResponse {
	if s.gate == nil {
		return nil
	}
	rec := c.rec
	info := gate.RequestInfo{
		Tenant:       rec.Tenant,
		Method:       rec.Method,
		URL:          c.rawPath,
		TargetOrigin: rec.TargetURL,
		Helicone:     &c.helicone,
		Header:       c.header,
		Body:         body,
		UserID:       rec.UserID,
	}
	if c.link != nil && c.link.plan != nil {
		info.KeyExtra = "fallback\x00" + c.helicone.Fallback + "\x00" + c.helicone.Fallbacks
	}
	if c.egress != nil {
		info.CacheDefaults = c.egress.Cache
		// Without configured keys the tenant is whatever Helicone-Auth the
		// client sends: the policy's buckets then hold per workload only,
		// or a fresh key per call would escape them.
		lim := ratelimit.Caller{Tenant: info.Tenant, UserID: info.UserID, Header: info.Header}
		if !s.auth.KeysConfigured() {
			lim.Tenant = ""
		}
		info.Limits = c.egress.Limits(&lim)
	}
	semantic, threshold, err := s.semanticOptions(c)
	var d *gate.Decision
	if err == nil {
		d, err = s.gate.Check(c.ctx, info)
	}
	var bad *helicone.BadHeaderError
	if errors.As(err, &bad) {
		return s.reject(c, badRequest("invalid_header", "%s", bad.Error()))
	}
	if err != nil || d == nil {
		return nil // Check returns no other error; be safe anyway
	}
	c.decision = d
	if d.Answer == nil {
		if semantic {
			return s.semanticLookup(c, &info, d, threshold)
		}
		return nil
	}
	return s.answerFromGate(c, d)
}

// answerFromGate replies with a cache hit, a 429 or a fail-closed 503, and
// logs it: a hit carries the original call's tokens and costs nothing.
func (s *Server) answerFromGate(c *call, d *gate.Decision) *extprocv3.ProcessingResponse {
	a, rec := d.Answer, c.rec
	var m headerMutation
	m.grow(len(a.Headers) + 1)
	for _, h := range a.Headers {
		m.setHeader(h[0], h[1])
	}
	m.setHeader(helicone.ResponseID, rec.RequestID)
	switch {
	case d.Hit != nil:
		h := d.Hit
		rec.CacheHit, rec.CacheReferenceID, rec.ResponseModel = true, h.ReferenceID, h.Model
		rec.SetUsage(h.Usage)
		c.free = true
		s.metrics.cacheHits.Inc()
	case d.RateLimited:
		rec.RateLimited = true
		rec.Error = "rate limited"
	case d.FailedClosed:
		rec.Error = "rate limit store unavailable (fail closed)"
	}
	if !c.helicone.OmitResponse {
		rec.ResponseBody = record.CapBody(loggedBody(c.egress, true, a.Body), s.maxLoggedBody)
	}
	s.finish(c, int32(a.Status))
	body := a.Body
	if d.Hit != nil && c.usageFilter != nil {
		// A cached stream holds the usage chunk; this client did not ask for it.
		body = provider.StripUsageEvents(body)
	}
	return immediateReply(a.Status, &m, body, "tollgate_gate")
}

// noteReplayHeaders offers the provider's response headers to the cache
// decision, which keeps the few a hit replays (gate.ReplayHeader).
func noteReplayHeaders(c *call, headers []*corev3.HeaderValue) {
	if c.decision.CacheBodyLimit() == 0 {
		return
	}
	for _, h := range headers {
		c.decision.NoteResponseHeader(h.GetKey(), headerValue(h))
	}
}

// complete hands the finished call to the gate (cache fill, cents charge).
// Process calls it after its last reply to Envoy, so the client does not
// wait for it.
func (s *Server) complete(c *call) {
	if s.gate == nil || c.decision == nil || c.decision.Answer != nil || c.completed || !c.logged {
		return
	}
	c.completed = true
	rec := c.rec
	resp := gate.ResponseInfo{
		RequestID:     rec.RequestID,
		Status:        int(rec.Status),
		ContentType:   c.respContentType,
		Body:          c.respKept(),
		BodyTruncated: c.respBytes > c.decision.CacheBodyLimit(),
		Model:         rec.ResponseModel,
		Usage:         rec.Usage(),
		CostUSD:       c.chargeUSD,
		LatencyMs:     rec.LatencyMs,
	}
	s.gate.Complete(c.ctx, c.decision, resp)
	s.semanticStore(c, resp)
}
