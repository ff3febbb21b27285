package ratelimit

import (
	"math"
	"strconv"

	"github.com/tollgate-dev/tollgate/helicone"
)

// Answer is a reply Tollgate makes itself; the provider is not called: a
// 429 of a rate limit, a 403 of the egress policy, a cache hit.
type Answer struct {
	Status  int
	Headers [][2]string // lowercase names
	// Body: for a cached stream, the SSE text, to be replayed as is (its
	// content-type header is text/event-stream).
	Body []byte
}

// Headers are the Helicone-RateLimit-* response headers.
func (p Policy) Headers(o BucketOutcome) [][2]string { return p.headers(o, p.String()) }

// headers takes the normalized policy, which a 429 has already built.
func (p Policy) headers(o BucketOutcome, policy string) [][2]string {
	remaining := int64(0)
	if o.Remaining > 0 {
		remaining = int64(math.Floor(o.Remaining))
	}
	h := [][2]string{
		{helicone.RateLimitLimit, strconv.FormatInt(p.Quota, 10)},
		{helicone.RateLimitRemaining, strconv.FormatInt(remaining, 10)},
		{helicone.RateLimitPolicy, policy},
	}
	if reset := o.ResetSeconds(); reset > 0 {
		h = append(h, [2]string{helicone.RateLimitReset, strconv.FormatInt(reset, 10)})
	}
	return h
}

// LimitedAnswer is the 429 for a call over the policy.
func (p Policy) LimitedAnswer(o BucketOutcome) *Answer {
	what := "requests"
	if p.Unit == UnitCents {
		what = "cents"
	}
	reset, policy := o.ResetSeconds(), p.String()
	msg := "Rate limit reached: policy " + policy + " (Helicone-RateLimit-Policy) allows " +
		strconv.FormatInt(p.Quota, 10) + " " + what + " per " + strconv.FormatInt(p.Window, 10) + " s"
	if p.Segment != SegmentOrg {
		msg += " for each " + SegmentLabel(p.Segment)
	}
	msg += "; retry in " + strconv.FormatInt(reset, 10) + " s."
	// One allocation for the body: this is the hot path of a client
	// hammering its limit.
	body := helicone.AppendErrorBody(make([]byte, 0, 256+len(msg)), helicone.EscapeMinimal,
		"message", msg, "type", "rate_limited", "code", "rate_limited", "policy", policy)
	h := append([][2]string{
		{"content-type", "application/json"},
		{helicone.XHeliconeError, "rate_limited"},
		{"retry-after", strconv.FormatInt(reset, 10)},
	}, p.headers(o, policy)...)
	return &Answer{Status: 429, Headers: h, Body: body}
}

func SegmentLabel(seg string) string {
	if seg == SegmentUser {
		return "user"
	}
	return "value of Helicone-Property-" + seg
}
