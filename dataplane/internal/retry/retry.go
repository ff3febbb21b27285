// Package retry is the retry policy of Envoy's router as Tollgate's routes
// use it: which x-envoy-* request headers ask for retries and are consumed,
// which responses and failures are worth another attempt, and the jittered
// back-off between attempts. The router's loop that applies it stays in the
// data plane.
package retry

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
)

// Request headers that drive the router's retries, as Envoy names them.
const (
	headerRetryOn              = "x-envoy-retry-on"
	headerMaxRetries           = "x-envoy-max-retries"
	headerRetriableStatusCodes = "x-envoy-retriable-status-codes"
	headerRetriableHeaderNames = "x-envoy-retriable-header-names"
)

// HeaderAttemptCount is the request header the router sets on every attempt
// (include_request_attempt_count in Tollgate's routes).
const HeaderAttemptCount = "x-envoy-attempt-count"

// headerEnvoyRateLimited marks a rate limit from an upstream Envoy.
const headerEnvoyRateLimited = "x-envoy-ratelimited"

const (
	defaultNumRetries = 1       // the route's num_retries (Envoy's default) when x-envoy-max-retries is absent
	maxNumRetries     = 1 << 20 // any bound will do: the route timeout ends the attempts long before
)

// consumedRetryHeaders are removed from every request by the router, read or
// not: Envoy's RetryStateImpl::create consumes them all so they never reach
// the upstream.
var consumedRetryHeaders = []string{
	headerRetryOn, "x-envoy-retry-grpc-on", headerMaxRetries, "x-envoy-hedge-on-per-try-timeout",
	headerRetriableHeaderNames, headerRetriableStatusCodes, "x-envoy-upstream-rq-per-try-timeout-ms",
}

// retryOn is the set of x-envoy-retry-on conditions.
type retryOn uint16

const (
	retryOn5xx retryOn = 1 << iota
	retryOnGatewayError
	retryOnReset
	retryOnConnectFailure
	retryOnRefusedStream
	retryOnRetriable4xx
	retryOnRetriableStatusCodes
	retryOnRetriableHeaders
	retryOnEnvoyRateLimited
)

var retryOnTokens = map[string]retryOn{
	"5xx":                    retryOn5xx,
	"gateway-error":          retryOnGatewayError,
	"reset":                  retryOnReset,
	"connect-failure":        retryOnConnectFailure,
	"refused-stream":         retryOnRefusedStream,
	"retriable-4xx":          retryOnRetriable4xx,
	"retriable-status-codes": retryOnRetriableStatusCodes,
	"retriable-headers":      retryOnRetriableHeaders,
	"envoy-ratelimited":      retryOnEnvoyRateLimited,
}

// Policy is the router's retry state for one request: the route sets
// no retry_on of its own, so everything comes from the request headers. The
// zero Policy retries nothing.
type Policy struct {
	on          retryOn
	RetriesLeft int // the router counts them down
	statusCodes []int
	headerNames []string // lowercase
}

// Enabled says whether any retry is possible.
func (p Policy) Enabled() bool { return p.on != 0 && p.RetriesLeft > 0 }

// Consume reads the retry headers like Envoy's RetryStateImpl and
// removes them. Envoy joins repeated values of these headers with commas, so
// this does too. Unknown tokens and unparsable values are ignored.
func Consume(h *headers.List) Policy {
	p := Policy{RetriesLeft: defaultNumRetries}
	for tok := range strings.SplitSeq(h.Joined(headerRetryOn), ",") {
		p.on |= retryOnTokens[strings.TrimSpace(tok)]
	}
	// Envoy reads max-retries only when some retry-on is in effect.
	if p.on != 0 && h.Has(headerMaxRetries) {
		if n, err := strconv.ParseUint(strings.TrimSpace(h.Joined(headerMaxRetries)), 10, 64); err == nil {
			p.RetriesLeft = int(min(n, maxNumRetries))
		}
	}
	for tok := range strings.SplitSeq(h.Joined(headerRetriableStatusCodes), ",") {
		if code, err := strconv.ParseUint(strings.TrimSpace(tok), 10, 32); err == nil {
			p.statusCodes = append(p.statusCodes, int(code))
		}
	}
	for tok := range strings.SplitSeq(h.Joined(headerRetriableHeaderNames), ",") {
		if name := strings.ToLower(strings.TrimSpace(tok)); name != "" {
			p.headerNames = append(p.headerNames, name)
		}
	}
	for _, k := range consumedRetryHeaders {
		h.Del(k)
	}
	return p
}

// RetriableResponse is Envoy's wouldRetryFromHeaders: it names the condition
// that makes the response worth another attempt, or returns "".
func (p Policy) RetriableResponse(resp *http.Response) string {
	if _, ok := resp.Header[http.CanonicalHeaderKey(headerEnvoyRateLimited)]; ok {
		// A rate limit from an upstream Envoy is retried only on request.
		if p.on&retryOnEnvoyRateLimited != 0 {
			return "envoy-ratelimited"
		}
		return ""
	}
	code := resp.StatusCode
	switch {
	case p.on&retryOn5xx != 0 && code >= 500 && code <= 599:
		return "5xx"
	case p.on&retryOnGatewayError != 0 && (code == 502 || code == 503 || code == 504):
		return "gateway-error"
	case p.on&retryOnRetriable4xx != 0 && code == http.StatusConflict:
		return "retriable-4xx"
	}
	if p.on&retryOnRetriableStatusCodes != 0 {
		for _, c := range p.statusCodes {
			if c == code {
				return "retriable-status-codes"
			}
		}
	}
	if p.on&retryOnRetriableHeaders != 0 {
		for _, name := range p.headerNames {
			if _, ok := resp.Header[http.CanonicalHeaderKey(name)]; ok {
				return "retriable-headers"
			}
		}
	}
	return ""
}

// RetriableFailure is Envoy's wouldRetryFromReset for a call that got no
// response headers. Go cannot tell a refused HTTP/2 stream from another
// reset (and retries refused streams itself), so refused-stream counts as
// reset.
func (p Policy) RetriableFailure(connectFailure bool) string {
	switch {
	case connectFailure && p.on&retryOnConnectFailure != 0:
		return "connect-failure"
	case p.on&(retryOnReset|retryOn5xx|retryOnGatewayError|retryOnRefusedStream) != 0:
		return "reset"
	}
	return ""
}

// BackOff is Envoy's JitteredExponentialBackOffStrategy: each wait is random
// in [0, current) and at most max; current starts at the base interval and
// doubles up to max.
type BackOff struct {
	current, max time.Duration
	jitter       func(n int64) int64 // uniform in [0, n)
}

// NewBackOff starts at base; jitter is uniform in [0, n).
func NewBackOff(base, max time.Duration, jitter func(n int64) int64) *BackOff {
	return &BackOff{current: base, max: max, jitter: jitter}
}

// Next is the wait before the next attempt.
func (b *BackOff) Next() time.Duration {
	cur := b.current
	if b.current < b.max/2 {
		b.current *= 2
	} else {
		b.current = b.max
	}
	if cur <= 0 {
		return 0
	}
	return min(time.Duration(b.jitter(int64(cur))), b.max)
}

// RateLimitedWait is Envoy's JitteredLowerBoundBackOffStrategy for the
// interval a Retry-After named: random in [interval, 1.5 × interval).
func RateLimitedWait(interval time.Duration, jitter func(n int64) int64) time.Duration {
	if half := int64(interval / 2); half > 0 {
		return interval + time.Duration(jitter(half))
	}
	return interval
}

// ResetInterval is Envoy's parseResetInterval for the route's
// rate_limited_retry_back_off.reset_headers, all in format SECONDS: the
// first of names (in order) whose first value is whole seconds not above
// max. Envoy stops at that header even when its interval is 0, and then
// uses the exponential back-off: ok is false unless the interval is above
// 1 ms. HTTP dates are not parsed, as Envoy does not.
func ResetInterval(h http.Header, names []string, max time.Duration) (time.Duration, bool) {
	for _, name := range names {
		vs := h.Values(name)
		if len(vs) == 0 {
			continue
		}
		n, ok := simpleAtoi(vs[0])
		if !ok || n > uint64(max/time.Second) {
			continue
		}
		d := time.Duration(n) * time.Second
		return d, d > time.Millisecond
	}
	return 0, false
}

// simpleAtoi is absl::SimpleAtoi into a uint64: surrounding whitespace and
// a leading '+' allowed, nothing else.
func simpleAtoi(v string) (uint64, bool) {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "+")
	if v == "" || v[0] < '0' || v[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}
