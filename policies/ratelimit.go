package policies

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Rate-limit policy bounds (DESIGN §4).
const (
	MinRateLimitWindow = 60         // seconds
	MaxRateLimitWindow = 31_536_000 // seconds (365 days)
	// MaxRateLimitQuota keeps quotas far below 2^53 so that token arithmetic
	// in float64 (Go and Lua alike) stays exact to well under a token.
	MaxRateLimitQuota = 1_000_000_000_000
)

// RateLimitUnit is what a bucket counts.
type RateLimitUnit string

const (
	UnitRequest RateLimitUnit = "request" // one token per call, taken before it
	UnitCents   RateLimitUnit = "cents"   // US cents of real cost, charged after the call
)

// Segments a policy can split its buckets by. Any other Segment value is the
// lowercase name of a Helicone-Property-<name> header.
const (
	SegmentOrg  = ""     // one bucket for the whole tenant
	SegmentUser = "user" // one bucket per user id
)

// RateLimitPolicy is a parsed Helicone-RateLimit-Policy header:
// quota;w=seconds[;u=request|cents][;s=user|<property>].
type RateLimitPolicy struct {
	Quota   int64         // bucket capacity, in Unit
	Window  int64         // seconds to refill a whole quota
	Unit    RateLimitUnit // UnitRequest unless u=cents
	Segment string        // SegmentOrg, SegmentUser or a lowercase property name
}

// ParseRateLimitPolicy parses the header value, case-insensitively. The
// Helicone form u=user / u=org (a segment written as the unit) is accepted
// as s=user / organization-wide. The error says what is wrong, not which
// header: the caller names it.
func ParseRateLimitPolicy(v string) (RateLimitPolicy, error) {
	p := RateLimitPolicy{Unit: UnitRequest}
	parts := strings.Split(v, ";")
	q := strings.TrimSpace(parts[0])
	if q == "" {
		return p, errors.New("missing quota (want quota;w=seconds[;u=request|cents][;s=user|<property>])")
	}
	quota, ok := parseDecimal(q)
	if !ok || quota < 1 || quota > MaxRateLimitQuota {
		return p, fmt.Errorf("quota must be an integer from 1 to %d, got %q", int64(MaxRateLimitQuota), clip(q))
	}
	p.Quota = quota
	var haveW, haveU, haveS bool
	for _, part := range parts[1:] {
		part = strings.TrimSpace(part)
		if part == "" {
			continue // tolerate "100;w=60;"
		}
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return p, fmt.Errorf("want key=value after the quota, got %q", clip(part))
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.ToLower(strings.TrimSpace(val))
		switch k {
		case "w":
			if haveW {
				return p, errors.New("w= given twice")
			}
			haveW = true
			w, ok := parseDecimal(val)
			if !ok || w < MinRateLimitWindow || w > MaxRateLimitWindow {
				return p, fmt.Errorf("window w= must be whole seconds from %d to %d, got %q",
					MinRateLimitWindow, MaxRateLimitWindow, clip(val))
			}
			p.Window = w
		case "u":
			if haveU {
				return p, errors.New("u= given twice")
			}
			haveU = true
			switch val {
			case "request", "requests":
				p.Unit = UnitRequest
			case "cents":
				p.Unit = UnitCents
			case "user", "org":
				if haveS {
					return p, errors.New("u=" + val + " conflicts with s=")
				}
				haveS = true
				p.Segment = SegmentUser
				if val == "org" {
					p.Segment = SegmentOrg
				}
			default:
				return p, fmt.Errorf("unit u= must be request or cents, got %q", clip(val))
			}
		case "s":
			if haveS {
				return p, errors.New("segment given twice (s=, or u=user / u=org)")
			}
			haveS = true
			if val != SegmentUser && !isToken(val) {
				return p, fmt.Errorf("segment s= must be user or a property name, got %q", clip(val))
			}
			p.Segment = val
		default:
			return p, fmt.Errorf("unknown parameter %q (want w, u or s)", clip(k))
		}
	}
	if !haveW {
		return p, errors.New("missing window w=seconds")
	}
	return p, nil
}

// String is the normalized policy, echoed in Helicone-RateLimit-Policy.
func (p RateLimitPolicy) String() string {
	s := strconv.FormatInt(p.Quota, 10) + ";w=" + strconv.FormatInt(p.Window, 10) + ";u=" + string(p.Unit)
	if p.Segment != SegmentOrg {
		s += ";s=" + p.Segment
	}
	return s
}

// bucket is where this request's tokens live: one per (tenant, segment,
// segment value, unit). The policy's quota and window are deliberately not
// part of the key (DESIGN §4): a client that changes its quota keeps its
// balance, clamped to the new capacity.
func (p RateLimitPolicy) bucket(tenant string, req *RequestInfo) BucketRef {
	var seg string
	switch p.Segment {
	case SegmentOrg:
		seg = "org"
	case SegmentUser:
		// A call without a user shares the "" bucket: leaving the id out
		// must not be a way around the limit.
		seg = "user:" + keyPart(req.UserID)
	default:
		seg = "p:" + p.Segment + ":" + keyPart(req.header(propertyHeaderPrefix+p.Segment))
	}
	return BucketRef{
		Key:      tenantKeyPrefix(tenant) + "rl:" + string(p.Unit) + ":" + seg,
		Capacity: float64(p.Quota),
		Window:   time.Duration(p.Window) * time.Second,
	}
}

// limitHeaders are the Helicone-RateLimit-* response headers.
func (p RateLimitPolicy) limitHeaders(o BucketOutcome) [][2]string {
	remaining := int64(0)
	if o.Remaining > 0 {
		remaining = int64(math.Floor(o.Remaining))
	}
	h := [][2]string{
		{"helicone-ratelimit-limit", strconv.FormatInt(p.Quota, 10)},
		{"helicone-ratelimit-remaining", strconv.FormatInt(remaining, 10)},
		{"helicone-ratelimit-policy", p.String()},
	}
	if reset := resetSeconds(o); reset > 0 {
		h = append(h, [2]string{"helicone-ratelimit-reset", strconv.FormatInt(reset, 10)})
	}
	return h
}

// resetSeconds is when, in whole seconds rounded up, the next call of the
// same kind would be admitted; 0 when it would be now. A refused call always
// reports at least 1.
func resetSeconds(o BucketOutcome) int64 {
	s := int64(math.Ceil(o.Wait.Seconds()))
	if s < 1 && !o.Allowed {
		s = 1
	}
	return s
}

// limitedAnswer is the 429 for a call over the policy.
func (p RateLimitPolicy) limitedAnswer(o BucketOutcome) *Answer {
	what := "requests"
	if p.Unit == UnitCents {
		what = "cents"
	}
	reset := resetSeconds(o)
	msg := "Rate limit reached: policy " + p.String() + " (Helicone-RateLimit-Policy) allows " +
		strconv.FormatInt(p.Quota, 10) + " " + what + " per " + strconv.FormatInt(p.Window, 10) + " s"
	if p.Segment != SegmentOrg {
		msg += " for each " + segmentLabel(p.Segment)
	}
	msg += "; retry in " + strconv.FormatInt(reset, 10) + " s."
	// Built by hand: this is the hot path of a client hammering its limit.
	b := make([]byte, 0, 256+len(msg))
	b = append(b, `{"error":{"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"type":"rate_limited","code":"rate_limited","policy":`...)
	b = appendJSONString(b, p.String())
	body := append(b, "}}"...)
	h := append([][2]string{
		{"content-type", "application/json"},
		{"x-helicone-error", "rate_limited"},
		{"retry-after", strconv.FormatInt(reset, 10)},
	}, p.limitHeaders(o)...)
	return &Answer{Status: 429, Headers: h, Body: body}
}

func segmentLabel(seg string) string {
	if seg == SegmentUser {
		return "user"
	}
	return "value of Helicone-Property-" + seg
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
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

// parseDecimal accepts plain ASCII digits only (no sign, no exponent).
func parseDecimal(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// isToken reports whether s is a non-empty HTTP header-name token, the
// shape of a Helicone-Property-<name> suffix.
func isToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// clip shortens a user-supplied value for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
