// Package ratelimit is the rate-limit vocabulary the gate and the egress
// policy share: the Helicone-RateLimit-Policy grammar (Policy, Parse), the
// token buckets a store keeps (BucketRef, BucketTake, BucketOutcome) and
// their keys, and the replies Tollgate makes itself (Answer: the 429 of a
// limit, with its Helicone-RateLimit-* headers). Taking tokens is the
// store's job (policies/gate); this package only names and describes them.
package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/helicone"
)

// Rate-limit policy bounds (DESIGN §4).
const (
	MinWindow = 60         // seconds
	MaxWindow = 31_536_000 // seconds (365 days)
	// MaxQuota keeps quotas far below 2^53 so that token arithmetic
	// in float64 (Go and Lua alike) stays exact to well under a token.
	MaxQuota = 1_000_000_000_000
)

// Unit is what a bucket counts.
type Unit string

const (
	UnitRequest Unit = "request" // one token per call, taken before it
	UnitCents   Unit = "cents"   // US cents of real cost, charged after the call
)

// Segments a policy can split its buckets by. Any other Segment value is the
// lowercase name of a Helicone-Property-<name> header.
const (
	SegmentOrg  = ""     // one bucket for the whole tenant
	SegmentUser = "user" // one bucket per user id
)

// Policy is a parsed Helicone-RateLimit-Policy header:
// quota;w=seconds[;u=request|cents][;s=user|<property>].
type Policy struct {
	Quota   int64  // bucket capacity, in Unit
	Window  int64  // seconds to refill a whole quota
	Unit    Unit   // UnitRequest unless u=cents
	Segment string // SegmentOrg, SegmentUser or a lowercase property name
}

// Parse parses the header value, case-insensitively. The
// Helicone form u=user / u=org (a segment written as the unit) is accepted
// as s=user / organization-wide. The error says what is wrong, not which
// header: the caller names it.
func Parse(v string) (Policy, error) {
	p := Policy{Unit: UnitRequest}
	parts := strings.Split(v, ";")
	q := strings.TrimSpace(parts[0])
	if q == "" {
		return p, errors.New("missing quota (want quota;w=seconds[;u=request|cents][;s=user|<property>])")
	}
	quota, ok := ParseDecimal(q)
	if !ok || quota < 1 || quota > MaxQuota {
		return p, fmt.Errorf("quota must be an integer from 1 to %d, got %q", int64(MaxQuota), clip(q))
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
			w, ok := ParseDecimal(val)
			if !ok || w < MinWindow || w > MaxWindow {
				return p, fmt.Errorf("window w= must be whole seconds from %d to %d, got %q",
					MinWindow, MaxWindow, clip(val))
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

// ParseHeader parses a Helicone-RateLimit-Policy request header. It is
// Parse without the u=user / u=org spelling: Helicone's grammar has only
// request and cents for u= (worker/src/lib/rate-limit/policyParser.ts), so
// a policy written that way is not applied there, and must not start
// limiting a migrated application here.
func ParseHeader(v string) (Policy, error) {
	for _, part := range strings.Split(v, ";")[1:] {
		k, val, ok := strings.Cut(part, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "u") {
			continue
		}
		if val = strings.ToLower(strings.TrimSpace(val)); val == "user" || val == "org" {
			return Policy{}, fmt.Errorf("u=%s is not a unit (want request or cents; per user is s=user)", val)
		}
	}
	return Parse(v)
}

// HeaderValue is the policy as Helicone echoes it in the
// Helicone-RateLimit-Policy response header (buildPolicyString in
// worker/src/lib/rate-limit/policyParser.ts): the unit only when it is
// cents, the segment only when there is one.
func (p Policy) HeaderValue() string {
	s := strconv.FormatInt(p.Quota, 10) + ";w=" + strconv.FormatInt(p.Window, 10)
	if p.Unit == UnitCents {
		s += ";u=cents"
	}
	if p.Segment != SegmentOrg {
		s += ";s=" + p.Segment
	}
	return s
}

// String is the normalized policy, every field spelled out: the egress
// policy's messages and the log use it.
func (p Policy) String() string {
	s := strconv.FormatInt(p.Quota, 10) + ";w=" + strconv.FormatInt(p.Window, 10) + ";u=" + string(p.Unit)
	if p.Segment != SegmentOrg {
		s += ";s=" + p.Segment
	}
	return s
}

// ParseDecimal accepts plain ASCII digits only (no sign, no exponent), the
// numbers of the rate-limit grammar; the cache's bucket size is read the
// same way.
func ParseDecimal(s string) (int64, bool) {
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
func clip(s string) string { return helicone.Truncate(s, 64) }
