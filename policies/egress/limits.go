package egress

import (
	"strconv"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// Limit is one of the policy's rate limits or budgets as it applies
// to one call. Its bucket belongs to the (tenant, rule, workload) triple
// and to the limit itself (window, unit, segment), apart from the buckets of
// the request's own Helicone-RateLimit-Policy: the call must pass both, so
// a request's header can tighten the policy but never loosen it.
type Limit struct {
	Policy ratelimit.Policy
	Budget bool // from budgets (ratelimit.UnitCents)
	Bucket ratelimit.BucketRef

	rule, workload string // for the 429's message
}

// Limits returns the buckets the call must pass, rate limits first, then
// budgets; nil when the policy sets none. A segment (s=user, s=<property>)
// splits the workload's bucket further, as in the header.
func (d Decision) Limits(c *ratelimit.Caller) []Limit {
	n := len(d.RateLimits) + len(d.Budgets)
	if n == 0 {
		return nil
	}
	tenant := c.Tenant
	if tenant == "" {
		tenant = policies.DefaultTenant
	}
	// Namespace and name both go in, so two Deployments called "api" in
	// different namespaces never share a bucket.
	prefix := ratelimit.TenantKeyPrefix(tenant) + "eg:" + ratelimit.KeyPart(d.Rule) + ":" + ratelimit.KeyPart(d.namespace) + "/" + ratelimit.KeyPart(d.workload) + ":"
	workload := d.namespace + "/" + d.workload
	if d.proxyKey != "" { // a rule that selects proxy keys limits each key on its own
		prefix += "key:" + ratelimit.KeyPart(d.proxyKey) + ":"
		workload += " (proxy key " + d.proxyKey + ")"
	}
	out := make([]Limit, 0, n)
	add := func(p ratelimit.Policy, budget bool, kind string) {
		out = append(out, Limit{
			Policy: p,
			Budget: budget,
			Bucket: ratelimit.BucketRef{
				Key:      prefix + kind + string(p.Unit) + ":w" + strconv.FormatInt(p.Window, 10) + ":" + bucketSegment(p.Segment, c),
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

func bucketSegment(seg string, c *ratelimit.Caller) string {
	switch seg {
	case ratelimit.SegmentOrg:
		return "all"
	case ratelimit.SegmentUser:
		return "user:" + ratelimit.KeyPart(c.UserID)
	}
	return "p:" + seg + ":" + ratelimit.KeyPart(c.Property(seg))
}

// Take is what gate.Store.Admit takes from the bucket (ratelimit.Policy.Take;
// a cents budget is charged after the call, gate.Store.Charge with Bucket).
func (l Limit) Take() ratelimit.BucketTake { return l.Policy.Take(l.Bucket) }

// LimitedAnswer is the 429 for a call this limit refused.
func (l Limit) LimitedAnswer(o ratelimit.BucketOutcome) *ratelimit.Answer {
	rule := "defaults"
	if l.rule != "" {
		rule = strconv.Quote(l.rule)
	}
	what, unit := "rate limit", "requests"
	if l.Budget {
		what = "budget"
	}
	if l.Policy.Unit == ratelimit.UnitCents {
		unit = "cents"
	}
	reset, policy := o.ResetSeconds(), l.Policy.String()
	msg := "Egress policy " + rule + " " + what + " " + policy + " allows workload " + l.workload + " " +
		strconv.FormatInt(l.Policy.Quota, 10) + " " + unit + " per " + strconv.FormatInt(l.Policy.Window, 10) + " s"
	if l.Policy.Segment != ratelimit.SegmentOrg {
		msg += " for each " + ratelimit.SegmentLabel(l.Policy.Segment)
	}
	msg += "; retry in " + strconv.FormatInt(reset, 10) + " s."
	b := helicone.AppendErrorBody(make([]byte, 0, 192+len(msg)+len(l.rule)), helicone.EscapeMinimal,
		"message", msg, "type", "rate_limited", "code", "egress_rate_limited", "policy", policy, "rule", l.rule)
	return &ratelimit.Answer{Status: 429, Body: b, Headers: [][2]string{
		{"content-type", "application/json"},
		{helicone.XHeliconeError, "rate_limited"},
		{"retry-after", strconv.FormatInt(reset, 10)},
	}}
}
