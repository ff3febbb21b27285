// Package attempts decides how many times a call goes to a provider and what
// each attempt changes: the Helicone-Retry-* headers become Envoy's retry
// headers (Envoy's router does the retrying) and the back-off the
// upstream-level filter hands Envoy for each retried response, and a
// Helicone-Fallback(s) list becomes a plan of which model, origin and headers
// each attempt uses.
package attempts

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

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

// BackOffHeader is the response header the upstream-level filter sets on a
// response Envoy is about to retry: the wait before the next attempt, in
// whole seconds. Envoy has no per-request back-off; the provider routes read
// this header first in rate_limited_retry_back_off.reset_headers (format
// SECONDS), then the provider's retry-after.
const BackOffHeader = "x-tollgate-retry-after"

// MaxBackOff is the routes' rate_limited_retry_back_off.max_interval: Envoy
// ignores a reset header naming a longer wait (and falls back to the
// exponential back-off), so no wait is set above it.
const MaxBackOff = 60 * time.Second

// MaxAttempts caps Helicone-Retry-Num. Helicone takes any number; every
// attempt is a paid provider call and one logged record would hide them all,
// so a client asking for more gets this many and a warning. Ten attempts
// with the default back-off already wait over a minute.
const MaxAttempts = 10

// MaxRetries caps the attempts a fallback list adds.
const MaxRetries = 10

// RetryStatusCodes are the responses Helicone's worker retries
// (worker/src/lib/clients/ProviderClient.ts, callProviderWithRetry: 429, 500
// and Cloudflare's 522); a failed fetch, Envoy's reset and connect-failure,
// too.
var RetryStatusCodes = []int{429, 500, 522}

// RetriableStatusCodes are the statuses a fallback entry without onCodes
// moves on.
var RetriableStatusCodes = []int{429, 500, 502, 503, 504}

// Helicone's defaults (worker/src/lib/models/HeliconeHeaders.ts,
// getRetryHeaders).
const (
	defaultNum          = 5
	defaultFactor       = 2
	defaultMinTimeoutMs = 1000
	defaultMaxTimeoutMs = 10000
)

// RetryPolicy is what the Helicone-Retry-* headers ask for, read as
// Helicone reads them.
type RetryPolicy struct {
	// Num is Helicone-Retry-Num: the number of attempts, the first one
	// included. Helicone's retry callback gives up once attempt >= retries,
	// so 5 (the default) makes five calls, and 0 or 1 make one.
	Num          int
	Factor       float64 // growth of the wait from one retry to the next
	MinTimeoutMs int     // the first wait's lower bound
	MaxTimeoutMs int     // no wait is longer (Tollgate: at most MaxBackOff)
}

// Retries is the number of retries after the first attempt.
func (p RetryPolicy) Retries() int { return max(p.Num, 1) - 1 }

// String is the policy as it is logged (the record's retry_policy column).
func (p RetryPolicy) String() string {
	return fmt.Sprintf("num=%d factor=%s min_timeout_ms=%d max_timeout_ms=%d",
		p.Num, strconv.FormatFloat(p.Factor, 'g', -1, 64), p.MinTimeoutMs, p.MaxTimeoutMs)
}

// ParseRetryPolicy reads the Helicone-Retry-* headers as Helicone's worker
// does (HeliconeHeaders.ts: parseInt and parseFloat for the numbers, so
// "3abc" is 3; Helicone-Retry-Enabled is a switch, helicone.ReadSwitch). It returns nil when retries
// are not on. Values Helicone tolerates are tolerated and, when what Tollgate
// does differs from what the value says, noted in w. The one error, naming
// the header, is a maximum below the minimum: Helicone's retry library
// throws then and the call fails without reaching the provider.
func ParseRetryPolicy(h helicone.RetryHeaders, w *helicone.Warnings) (*RetryPolicy, error) {
	if s, ok := helicone.ReadSwitch(h.Enabled); s != helicone.SwitchOn {
		if !ok {
			w.Add(helicone.RetryEnabled, fmt.Sprintf("%q is not true or false; retries are off", clip(strings.TrimSpace(h.Enabled))))
		}
		return nil, nil
	}
	p := &RetryPolicy{Num: defaultNum, Factor: defaultFactor, MinTimeoutMs: defaultMinTimeoutMs, MaxTimeoutMs: defaultMaxTimeoutMs}
	if v := strings.TrimSpace(h.Num); v != "" {
		n, ok, whole := parseInt(v)
		switch {
		case !ok:
			// NaN: async-retry's operation has no retries left after the first.
			p.Num = 1
			w.Add(helicone.RetryNum, fmt.Sprintf("%q is not a number; one attempt, no retries", clip(v)))
		case n < 1:
			p.Num = 1
			if n < 0 {
				w.Add(helicone.RetryNum, fmt.Sprintf("%q is below 1; one attempt, no retries", clip(v)))
			}
		case n > MaxAttempts:
			p.Num = MaxAttempts
			w.Add(helicone.RetryNum, fmt.Sprintf("%q is capped at %d attempts", clip(v), MaxAttempts))
		default:
			p.Num = int(n)
			if !whole {
				w.Add(helicone.RetryNum, fmt.Sprintf("%q read as %d", clip(v), n))
			}
		}
	}
	if v := strings.TrimSpace(h.Factor); v != "" {
		f, ok, whole := parseFloat(v)
		switch {
		case !ok:
			// Helicone's waits after the first become NaN, that is no wait
			// at all; Tollgate keeps the default rather than hammer the
			// provider.
			w.Add(helicone.RetryFactor, fmt.Sprintf("%q is not a number; the default %d applies", clip(v), defaultFactor))
		default:
			p.Factor = f
			if !whole {
				w.Add(helicone.RetryFactor, fmt.Sprintf("%q read as %s", clip(v), strconv.FormatFloat(f, 'g', -1, 64)))
			}
		}
	}
	p.MinTimeoutMs = msHeader(w, helicone.RetryMinTimeout, h.MinTimeout, defaultMinTimeoutMs)
	p.MaxTimeoutMs = msHeader(w, helicone.RetryMaxTimeout, h.MaxTimeout, defaultMaxTimeoutMs)
	if p.MaxTimeoutMs < p.MinTimeoutMs {
		return nil, &helicone.BadHeaderError{Header: helicone.Canonical(helicone.RetryMaxTimeout), Reason: fmt.Sprintf("(%d ms) must not be below %s (%d ms)",
			p.MaxTimeoutMs, helicone.Canonical(helicone.RetryMinTimeout), p.MinTimeoutMs)}
	}
	if limit := int(MaxBackOff / time.Millisecond); p.MaxTimeoutMs > limit {
		w.Add(helicone.RetryMaxTimeout, fmt.Sprintf("%q is capped at %d ms, Envoy's longest rate-limited back-off", clip(strings.TrimSpace(h.MaxTimeout)), limit))
	}
	return p, nil
}

// msHeader reads a timeout in milliseconds with parseInt; NaN keeps the
// default, where Helicone would not wait at all.
func msHeader(w *helicone.Warnings, name, v string, def int) int {
	v = strings.TrimSpace(v)
	if v == "" {
		return def
	}
	n, ok, whole := parseInt(v)
	if !ok {
		w.Add(name, fmt.Sprintf("%q is not a number; the default %d ms applies", clip(v), def))
		return def
	}
	// Far beyond any wait Envoy takes; keeps the arithmetic in int.
	n = min(max(n, -1<<31), 1<<31)
	if !whole {
		w.Add(name, fmt.Sprintf("%q read as %d", clip(v), n))
	}
	return int(n)
}

// Waits are the lower bounds of Helicone's waits before each retry, first
// retry first. Helicone's retry library (node-retry, under async-retry)
// computes every wait up front as round(rand[1,2) × max(min, 1) ×
// factor^k), capped at max, and sorts them ascending, so a factor below 1
// gives the same waits in growing order. The lower bound is rand = 1;
// negative and NaN products are no wait.
func (p RetryPolicy) Waits() []time.Duration {
	ws := make([]float64, p.Retries())
	base := float64(max(p.MinTimeoutMs, 1))
	for k := range ws {
		t := math.Min(math.Round(base*math.Pow(p.Factor, float64(k))), float64(p.MaxTimeoutMs))
		if math.IsNaN(t) || t < 0 {
			t = 0
		}
		ws[k] = t
	}
	slices.Sort(ws)
	out := make([]time.Duration, len(ws))
	for i, t := range ws {
		out[i] = time.Duration(t) * time.Millisecond
	}
	return out
}

// BackOffSeconds is the value of BackOffHeader for attempt n's retriable
// response: the wait before attempt n+1 in whole seconds (Envoy's SECONDS
// format), rounded up so that Envoy never retries sooner than Helicone, at
// least 1 (Envoy ignores a reset interval of 0) and at most MaxBackOff.
// Envoy waits a random time in [interval, 1.5 × interval). ok is false when
// no retry is left after attempt n.
func (p RetryPolicy) BackOffSeconds(n int) (secs int, ok bool) {
	ws := p.Waits()
	if n < 1 || n > len(ws) {
		return 0, false
	}
	d := min(ws[n-1], MaxBackOff)
	secs = int((d + time.Second - 1) / time.Second)
	return max(secs, 1), true
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
