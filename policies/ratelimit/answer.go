package ratelimit

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

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

// Headers are the Helicone-RateLimit-* response headers, as Helicone's
// bucket limiter sends them (worker/src/lib/rate-limit/bucketClient.ts):
// Limit is the quota, Remaining the whole tokens left (never negative),
// Policy the policy in Helicone's own spelling (HeaderValue), and Reset,
// only while the bucket is not full, the seconds until it is full again.
func (p Policy) Headers(o BucketOutcome) [][2]string {
	return p.headers(o, p.HeaderValue())
}

// headers takes the echoed policy, which a 429 has already built.
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
	if reset := p.RefillSeconds(o.Remaining); reset > 0 {
		h = append(h, [2]string{helicone.RateLimitReset, strconv.FormatInt(reset, 10)})
	}
	return h
}

// RefillSeconds is how long, in whole seconds rounded up, a bucket holding
// remaining tokens takes to be full again: Helicone's
// Helicone-RateLimit-Reset. 0 when it is full.
func (p Policy) RefillSeconds(remaining float64) int64 {
	missing := float64(p.Quota) - remaining
	if !(missing > 0) || p.Quota <= 0 {
		return 0
	}
	// The epsilon absorbs the float noise of a refill computed from
	// microseconds, so that 20 s does not print as 21.
	return int64(math.Ceil(missing*float64(p.Window)/float64(p.Quota) - 1e-9))
}

// LimitedAnswer is the 429 for a call over the policy. Its shape is
// Helicone's (worker/src/lib/ResponseBuilder.ts, buildRateLimitedResponse):
// a JSON object with one "message", content-type
// application/json;charset=UTF-8, X-Helicone-Error: rate_limited and the
// Helicone-RateLimit-* headers. Retry-After, which Helicone does not send,
// says when a call of the same kind would be admitted.
func (p Policy) LimitedAnswer(o BucketOutcome) *Answer {
	what := "requests"
	if p.Unit == UnitCents {
		what = "cents"
	}
	retry, policy := o.ResetSeconds(), p.HeaderValue()
	msg := "Rate limit reached: Helicone-RateLimit-Policy " + policy + " allows " +
		strconv.FormatInt(p.Quota, 10) + " " + what + " per " + strconv.FormatInt(p.Window, 10) + " s"
	if p.Segment != SegmentOrg {
		msg += " for each " + SegmentLabel(p.Segment)
	}
	msg += "; retry in " + strconv.FormatInt(retry, 10) + " s."
	h := append([][2]string{
		{"content-type", "application/json;charset=UTF-8"},
		{helicone.XHeliconeError, "rate_limited"},
		{"retry-after", strconv.FormatInt(retry, 10)},
	}, p.headers(o, policy)...)
	return &Answer{Status: 429, Headers: h, Body: messageBody(msg)}
}

// messageBody is {"message": msg}. The message is built from a parsed
// policy (digits, letters and header-token characters), which JSON needs
// no escape for; anything else goes through encoding/json.
func messageBody(msg string) []byte {
	if strings.ContainsFunc(msg, func(r rune) bool { return r < 0x20 || r == '"' || r == '\\' || r >= 0x7f }) {
		b, _ := json.Marshal(struct {
			Message string `json:"message"`
		}{msg})
		return b
	}
	b := make([]byte, 0, len(msg)+16)
	b = append(b, `{"message":"`...)
	b = append(b, msg...)
	return append(b, `"}`...)
}

func SegmentLabel(seg string) string {
	if seg == SegmentUser {
		return "user"
	}
	return "value of Helicone-Property-" + seg
}
