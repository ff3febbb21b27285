package policies

import (
	"strconv"
	"time"
)

// EgressLimit is one of the policy's rate limits or budgets as it applies
// to one call. Its bucket belongs to the (tenant, rule, workload) triple
// and to the limit itself (window, unit, segment), apart from the buckets of
// the request's own Helicone-RateLimit-Policy: the call must pass both, so
// a request's header can tighten the policy but never loosen it.
type EgressLimit struct {
	Policy RateLimitPolicy
	Budget bool // from budgets (UnitCents)
	Bucket BucketRef

	rule, workload string // for the 429's message
}

// Limits returns the buckets the call must pass, rate limits first, then
// budgets; nil when the policy sets none. A segment (s=user, s=<property>)
// splits the workload's bucket further, as in the header.
func (d EgressDecision) Limits(req *RequestInfo) []EgressLimit {
	n := len(d.RateLimits) + len(d.Budgets)
	if n == 0 {
		return nil
	}
	tenant := req.Tenant
	if tenant == "" {
		tenant = DefaultTenant
	}
	// Namespace and name both go in, so two Deployments called "api" in
	// different namespaces never share a bucket.
	prefix := tenantKeyPrefix(tenant) + "eg:" + keyPart(d.Rule) + ":" + keyPart(d.namespace) + "/" + keyPart(d.workload) + ":"
	workload := d.namespace + "/" + d.workload
	out := make([]EgressLimit, 0, n)
	add := func(p RateLimitPolicy, budget bool, kind string) {
		out = append(out, EgressLimit{
			Policy: p,
			Budget: budget,
			Bucket: BucketRef{
				Key:      prefix + kind + string(p.Unit) + ":w" + strconv.FormatInt(p.Window, 10) + ":" + egressSegment(p.Segment, req),
				Capacity: float64(p.Quota),
				Window:   time.Duration(p.Window) * time.Second,
			},
			rule:     d.Rule,
			workload: workload,
		})
	}
	for _, p := range d.RateLimits {
		add(p, false, "rl:")
	}
	for _, p := range d.Budgets {
		add(p, true, "budget:")
	}
	return out
}

func egressSegment(seg string, req *RequestInfo) string {
	switch seg {
	case SegmentOrg:
		return "all"
	case SegmentUser:
		return "user:" + keyPart(req.UserID)
	}
	return "p:" + seg + ":" + keyPart(req.header(propertyHeaderPrefix+seg))
}

// Take is what Store.Admit takes from the bucket: one token for a request
// unit; for cents only a balance check, the real cost being charged after
// the call (Store.Charge with Bucket).
func (l EgressLimit) Take() BucketTake {
	cost := 1.0
	if l.Policy.Unit == UnitCents {
		cost = 0
	}
	return BucketTake{BucketRef: l.Bucket, Cost: cost}
}

// LimitedAnswer is the 429 for a call this limit refused.
func (l EgressLimit) LimitedAnswer(o BucketOutcome) *Answer {
	rule := "defaults"
	if l.rule != "" {
		rule = strconv.Quote(l.rule)
	}
	what, unit := "rate limit", "requests"
	if l.Budget {
		what = "budget"
	}
	if l.Policy.Unit == UnitCents {
		unit = "cents"
	}
	reset := resetSeconds(o)
	msg := "Egress policy " + rule + " " + what + " " + l.Policy.String() + " allows workload " + l.workload + " " +
		strconv.FormatInt(l.Policy.Quota, 10) + " " + unit + " per " + strconv.FormatInt(l.Policy.Window, 10) + " s"
	if l.Policy.Segment != SegmentOrg {
		msg += " for each " + segmentLabel(l.Policy.Segment)
	}
	msg += "; retry in " + strconv.FormatInt(reset, 10) + " s."
	b := []byte(`{"error":{"message":`)
	b = appendJSONString(b, msg)
	b = append(b, `,"type":"rate_limited","code":"egress_rate_limited","policy":`...)
	b = appendJSONString(b, l.Policy.String())
	b = append(b, `,"rule":`...)
	b = appendJSONString(b, l.rule)
	b = append(b, "}}"...)
	return &Answer{Status: 429, Body: b, Headers: [][2]string{
		{"content-type", "application/json"},
		{"x-helicone-error", "rate_limited"},
		{"retry-after", strconv.FormatInt(reset, 10)},
	}}
}
