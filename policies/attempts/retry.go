// Package attempts decides how many times a call goes to a provider and what
// each attempt changes: the Helicone-Retry-* headers become Envoy's retry
// headers (Envoy's router does the retrying), and a Helicone-Fallback(s)
// list becomes a plan of which model, origin and headers each attempt uses.
package attempts

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/helicone"
)

// Envoy's router reads these request headers (the ext_proc filter needs
// mutation_rules.allow_envoy to set them).
const (
	EnvoyMaxRetries          = "x-envoy-max-retries"
	EnvoyRetryOn             = "x-envoy-retry-on"
	EnvoyRetriableCodes      = "x-envoy-retriable-status-codes"
	EnvoyRetriableHeaderName = "x-envoy-retriable-header-names"
)

// MaxRetries caps Helicone-Retry-Num (and the attempts a fallback list adds):
// every retry is a paid provider call.
const MaxRetries = 10

// RetriableStatusCodes are the responses Helicone retries on.
var RetriableStatusCodes = []int{429, 500, 502, 503, 504}

// RetryPolicy is what the Helicone-Retry-* headers ask for.
type RetryPolicy struct {
	Num          int     // retries after the first attempt
	Factor       float64 // accepted and logged; Envoy's back-off doubles
	MinTimeoutMs int     // accepted and logged; the route's base_interval applies
	MaxTimeoutMs int     // accepted and logged; the route's max_interval applies
}

// String is the policy as it is logged (the record's retry_policy column).
func (p RetryPolicy) String() string {
	return fmt.Sprintf("num=%d factor=%s min_timeout_ms=%d max_timeout_ms=%d",
		p.Num, strconv.FormatFloat(p.Factor, 'g', -1, 64), p.MinTimeoutMs, p.MaxTimeoutMs)
}

// ParseRetryPolicy reads the Helicone-Retry-* headers (helicone.Headers'
// Retry; Envoy's router does the retrying, Tollgate only translates them
// into Envoy's per-request retry headers). It returns nil when retries are
// not enabled, and an error naming the header for a value that cannot be
// right.
func ParseRetryPolicy(h helicone.RetryHeaders) (*RetryPolicy, error) {
	enabled := strings.ToLower(strings.TrimSpace(h.Enabled))
	on, ok := helicone.ParseBool(enabled)
	if !ok {
		return nil, &helicone.BadHeaderError{Header: helicone.Canonical(helicone.RetryEnabled), Reason: fmt.Sprintf("must be true or false, got %q", clip(enabled))}
	}
	if !on {
		return nil, nil
	}
	p := &RetryPolicy{Num: 5, Factor: 2, MinTimeoutMs: 1000, MaxTimeoutMs: 10000}
	var err error
	if p.Num, err = intHeader(h.Num, helicone.RetryNum, p.Num, 0, MaxRetries); err != nil {
		return nil, err
	}
	if v := strings.TrimSpace(h.Factor); v != "" {
		f, perr := strconv.ParseFloat(v, 64)
		if perr != nil || f < 1 || f > 10 {
			return nil, &helicone.BadHeaderError{Header: helicone.Canonical(helicone.RetryFactor), Reason: fmt.Sprintf("must be a number from 1 to 10, got %q", clip(v))}
		}
		p.Factor = f
	}
	if p.MinTimeoutMs, err = intHeader(h.MinTimeout, helicone.RetryMinTimeout, p.MinTimeoutMs, 0, 600_000); err != nil {
		return nil, err
	}
	if p.MaxTimeoutMs, err = intHeader(h.MaxTimeout, helicone.RetryMaxTimeout, p.MaxTimeoutMs, 0, 600_000); err != nil {
		return nil, err
	}
	if p.MaxTimeoutMs < p.MinTimeoutMs {
		return nil, &helicone.BadHeaderError{Header: helicone.Canonical(helicone.RetryMaxTimeout), Reason: fmt.Sprintf("(%d ms) must not be below %s (%d ms)",
			p.MaxTimeoutMs, helicone.Canonical(helicone.RetryMinTimeout), p.MinTimeoutMs)}
	}
	return p, nil
}

// intHeader reads the integer value v of header name (lowercase).
func intHeader(v, name string, def, lo, hi int) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &helicone.BadHeaderError{Header: helicone.Canonical(name), Reason: fmt.Sprintf("must be an integer from %d to %d, got %q", lo, hi, clip(v))}
	}
	return n, nil
}

// EnvoyRetry is the set of Envoy retry headers for one request.
type EnvoyRetry struct {
	MaxRetries     int
	OnStatusCodes  []int  // retriable-status-codes
	OnHeader       string // retriable-headers: a response header that asks for another attempt
	OnConnectError bool   // reset, connect-failure
}

// Headers renders the request headers Envoy's router reads.
func (r EnvoyRetry) Headers() [][2]string {
	var on []string
	var out [][2]string
	if len(r.OnStatusCodes) > 0 {
		on = append(on, "retriable-status-codes")
		codes := make([]string, len(r.OnStatusCodes))
		for i, c := range r.OnStatusCodes {
			codes[i] = strconv.Itoa(c)
		}
		out = append(out, [2]string{EnvoyRetriableCodes, strings.Join(codes, ",")})
	}
	if r.OnHeader != "" {
		on = append(on, "retriable-headers")
		out = append(out, [2]string{EnvoyRetriableHeaderName, r.OnHeader})
	}
	if r.OnConnectError {
		on = append(on, "reset", "connect-failure")
	}
	out = append(out, [2]string{EnvoyRetryOn, strings.Join(on, ",")}, [2]string{EnvoyMaxRetries, strconv.Itoa(r.MaxRetries)})
	return out
}

// clip shortens a client's value for an error message.
func clip(s string) string { return helicone.Truncate(s, 64) }
