package ratelimit

import (
	"math"
	"strconv"
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
func (p Policy) Headers(o BucketOutcome) [][2]string {
	remaining := int64(0)
	if o.Remaining > 0 {
		remaining = int64(math.Floor(o.Remaining))
	}
	h := [][2]string{
		{"helicone-ratelimit-limit", strconv.FormatInt(p.Quota, 10)},
		{"helicone-ratelimit-remaining", strconv.FormatInt(remaining, 10)},
		{"helicone-ratelimit-policy", p.String()},
	}
	if reset := o.ResetSeconds(); reset > 0 {
		h = append(h, [2]string{"helicone-ratelimit-reset", strconv.FormatInt(reset, 10)})
	}
	return h
}

// LimitedAnswer is the 429 for a call over the policy.
func (p Policy) LimitedAnswer(o BucketOutcome) *Answer {
	what := "requests"
	if p.Unit == UnitCents {
		what = "cents"
	}
	reset := o.ResetSeconds()
	msg := "Rate limit reached: policy " + p.String() + " (Helicone-RateLimit-Policy) allows " +
		strconv.FormatInt(p.Quota, 10) + " " + what + " per " + strconv.FormatInt(p.Window, 10) + " s"
	if p.Segment != SegmentOrg {
		msg += " for each " + SegmentLabel(p.Segment)
	}
	msg += "; retry in " + strconv.FormatInt(reset, 10) + " s."
	// Built by hand: this is the hot path of a client hammering its limit.
	b := make([]byte, 0, 256+len(msg))
	b = append(b, `{"error":{"message":`...)
	b = AppendJSONString(b, msg)
	b = append(b, `,"type":"rate_limited","code":"rate_limited","policy":`...)
	b = AppendJSONString(b, p.String())
	body := append(b, "}}"...)
	h := append([][2]string{
		{"content-type", "application/json"},
		{"x-helicone-error", "rate_limited"},
		{"retry-after", strconv.FormatInt(reset, 10)},
	}, p.Headers(o)...)
	return &Answer{Status: 429, Headers: h, Body: body}
}

func SegmentLabel(seg string) string {
	if seg == SegmentUser {
		return "user"
	}
	return "value of Helicone-Property-" + seg
}

// AppendJSONString appends s as a JSON string literal.
func AppendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
