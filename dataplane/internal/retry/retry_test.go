package retry

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
)

func TestConsumeRetryHeaders(t *testing.T) {
	tests := []struct {
		name string
		hdrs headers.List
		want Policy
	}{
		{name: "nothing", want: Policy{RetriesLeft: 1}},
		{
			name: "retry-on without max-retries is one retry",
			hdrs: headers.Of("x-envoy-retry-on", "5xx"),
			want: Policy{on: retryOn5xx, RetriesLeft: 1},
		},
		{
			name: "max-retries without retry-on is no retry",
			hdrs: headers.Of("x-envoy-max-retries", "3"),
			want: Policy{RetriesLeft: 1},
		},
		{
			name: "tokens are trimmed, unknown ones ignored, repeated headers joined",
			hdrs: headers.Of("x-envoy-retry-on", "bogus, gateway-error ,reset", "x-envoy-retry-on", "retriable-4xx",
				"x-envoy-max-retries", "4"),
			want: Policy{on: retryOnGatewayError | retryOnReset | retryOnRetriable4xx, RetriesLeft: 4},
		},
		{
			name: "every supported token",
			hdrs: headers.Of("x-envoy-retry-on", "5xx,gateway-error,reset,connect-failure,refused-stream,"+
				"retriable-4xx,retriable-status-codes,retriable-headers,envoy-ratelimited"),
			want: Policy{on: retryOn5xx | retryOnGatewayError | retryOnReset | retryOnConnectFailure |
				retryOnRefusedStream | retryOnRetriable4xx | retryOnRetriableStatusCodes | retryOnRetriableHeaders |
				retryOnEnvoyRateLimited, RetriesLeft: 1},
		},
		{
			name: "a bad max-retries keeps the default",
			hdrs: headers.Of("x-envoy-retry-on", "5xx", "x-envoy-max-retries", "-1"),
			want: Policy{on: retryOn5xx, RetriesLeft: 1},
		},
		{
			name: "repeated max-retries do not parse (Envoy joins them)",
			hdrs: headers.Of("x-envoy-retry-on", "5xx", "x-envoy-max-retries", "2", "x-envoy-max-retries", "3"),
			want: Policy{on: retryOn5xx, RetriesLeft: 1},
		},
		{
			name: "max-retries 0 turns retries off",
			hdrs: headers.Of("x-envoy-retry-on", "5xx", "x-envoy-max-retries", "0"),
			want: Policy{on: retryOn5xx},
		},
		{
			name: "status codes and header names",
			hdrs: headers.Of("x-envoy-retry-on", "retriable-status-codes,retriable-headers",
				"x-envoy-retriable-status-codes", "429, 503,abc,", "x-envoy-retriable-header-names", " X-Try-Again , ,x-other"),
			want: Policy{on: retryOnRetriableStatusCodes | retryOnRetriableHeaders, RetriesLeft: 1,
				statusCodes: []int{429, 503}, headerNames: []string{"x-try-again", "x-other"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := append(headers.Of(":path", "/"), tc.hdrs...)
			got := Consume(&h)
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(Policy{})); d != "" {
				t.Errorf("policy (-want +got):\n%s", d)
			}
			if d := cmp.Diff(headers.Of(":path", "/"), h); d != "" {
				t.Errorf("headers left (-want +got):\n%s", d)
			}
		})
	}
}

func TestConsumeRetryHeadersRemovesAllOfEnvoys(t *testing.T) {
	h := headers.Of(
		"x-envoy-attempt-count", "7", "x-envoy-custom", "kept",
		"x-envoy-hedge-on-per-try-timeout", "true", "x-envoy-max-retries", "1",
		"x-envoy-retriable-header-names", "a", "x-envoy-retriable-status-codes", "1",
		"x-envoy-retry-grpc-on", "cancelled", "x-envoy-retry-on", "5xx",
		"x-envoy-upstream-rq-per-try-timeout-ms", "10",
	)
	Consume(&h)
	want := headers.Of("x-envoy-attempt-count", "7", "x-envoy-custom", "kept")
	if d := cmp.Diff(want, h); d != "" {
		t.Errorf("headers left (-want +got):\n%s", d)
	}
}

func TestRetriableResponse(t *testing.T) {
	policy := func(on retryOn) Policy {
		return Policy{on: on, RetriesLeft: 1, statusCodes: []int{429}, headerNames: []string{"x-try-again"}}
	}
	resp := func(code int, kv ...string) *http.Response {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return &http.Response{StatusCode: code, Header: h}
	}
	tests := []struct {
		name string
		p    Policy
		resp *http.Response
		want string
	}{
		{"5xx on 500", policy(retryOn5xx), resp(500), "5xx"},
		{"5xx on 599", policy(retryOn5xx), resp(599), "5xx"},
		{"5xx not on 429", policy(retryOn5xx), resp(429), ""},
		{"gateway-error on 502", policy(retryOnGatewayError), resp(502), "gateway-error"},
		{"gateway-error on 504", policy(retryOnGatewayError), resp(504), "gateway-error"},
		{"gateway-error not on 500", policy(retryOnGatewayError), resp(500), ""},
		{"retriable-4xx on 409", policy(retryOnRetriable4xx), resp(409), "retriable-4xx"},
		{"retriable-4xx not on 429", policy(retryOnRetriable4xx), resp(429), ""},
		{"retriable-status-codes on a listed code", policy(retryOnRetriableStatusCodes), resp(429), "retriable-status-codes"},
		{"listed codes without the token", policy(retryOn5xx), resp(429), ""},
		{"retriable-headers on a named header", policy(retryOnRetriableHeaders), resp(200, "X-Try-Again", ""), "retriable-headers"},
		{"retriable-headers not on another header", policy(retryOnRetriableHeaders), resp(200, "X-Other", "1"), ""},
		{"reset-only policies ignore responses", policy(retryOnReset | retryOnConnectFailure), resp(503), ""},
		{"x-envoy-ratelimited is not retried", policy(retryOn5xx), resp(503, "X-Envoy-Ratelimited", "true"), ""},
		{"x-envoy-ratelimited under envoy-ratelimited", policy(retryOnEnvoyRateLimited), resp(429, "X-Envoy-Ratelimited", "true"), "envoy-ratelimited"},
	}
	for _, tc := range tests {
		if got := tc.p.RetriableResponse(tc.resp); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestRetriableFailure(t *testing.T) {
	tests := []struct {
		on             retryOn
		connect, reset string
	}{
		{retryOn5xx, "reset", "reset"},
		{retryOnGatewayError, "reset", "reset"},
		{retryOnReset, "reset", "reset"},
		{retryOnRefusedStream, "reset", "reset"},
		{retryOnConnectFailure, "connect-failure", ""},
		{retryOnRetriable4xx | retryOnRetriableStatusCodes | retryOnRetriableHeaders, "", ""},
	}
	for _, tc := range tests {
		p := Policy{on: tc.on, RetriesLeft: 1}
		if got := p.RetriableFailure(true); got != tc.connect {
			t.Errorf("on %b, connect failure: got %q, want %q", tc.on, got, tc.connect)
		}
		if got := p.RetriableFailure(false); got != tc.reset {
			t.Errorf("on %b, reset: got %q, want %q", tc.on, got, tc.reset)
		}
	}
}

func TestBackOffIsJitteredExponential(t *testing.T) {
	highest := func(n int64) int64 { return n - 1 }
	b := NewBackOff(5*time.Millisecond, 20*time.Millisecond, highest)
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
	}
	// Intervals 5, 10, 20, 20, 20 ms; each wait just below its interval.
	want := []time.Duration{5*time.Millisecond - 1, 10*time.Millisecond - 1, 20*time.Millisecond - 1,
		20*time.Millisecond - 1, 20*time.Millisecond - 1}
	if !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}

	// Not a power of two apart: the interval is capped at max, not doubled past it.
	b = NewBackOff(3*time.Millisecond, 10*time.Millisecond, highest)
	got = got[:0]
	for range 4 {
		got = append(got, b.Next())
	}
	want = []time.Duration{3*time.Millisecond - 1, 6*time.Millisecond - 1, 10*time.Millisecond - 1, 10*time.Millisecond - 1}
	if !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}

	b = NewBackOff(time.Second, time.Second, func(int64) int64 { return 0 })
	if w := b.Next(); w != 0 {
		t.Errorf("lowest jitter gave %v, want 0", w)
	}
}

func TestRateLimitedWaitHasALowerBound(t *testing.T) {
	if w := RateLimitedWait(2*time.Second, func(int64) int64 { return 0 }); w != 2*time.Second {
		t.Errorf("lowest jitter gave %v", w)
	}
	if w := RateLimitedWait(2*time.Second, func(n int64) int64 { return n - 1 }); w != 3*time.Second-1 {
		t.Errorf("highest jitter gave %v", w)
	}
}

// Envoy's RetryStateImpl::parseResetInterval over the route's reset_headers
// (ResetHeaderParserImpl, format SECONDS: absl::SimpleAtoi into whole
// seconds), then shouldRetryHeaders' "interval > 1 ms".
func TestResetInterval(t *testing.T) {
	names := []string{"x-tollgate-retry-after", "retry-after"}
	tests := []struct {
		name string
		kv   []string
		want time.Duration
		ok   bool
	}{
		{"retry-after", []string{"Retry-After", "1"}, time.Second, true},
		{"spaces", []string{"Retry-After", " 30 "}, 30 * time.Second, true},
		{"plus", []string{"Retry-After", "+5"}, 5 * time.Second, true},
		{"at the max", []string{"Retry-After", "60"}, time.Minute, true},
		{"above the max", []string{"Retry-After", "61"}, 0, false},
		{"zero", []string{"Retry-After", "0"}, 0, false},
		{"negative", []string{"Retry-After", "-1"}, 0, false},
		{"fraction", []string{"Retry-After", "1.5"}, 0, false},
		{"date", []string{"Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"}, 0, false},
		{"none", nil, 0, false},
		{"first header first", []string{"X-Tollgate-Retry-After", "5", "Retry-After", "1"}, 5 * time.Second, true},
		// Envoy takes the first header with an interval not above the max,
		// 0 included, and then falls back to the exponential back-off.
		{"a zero shadows the next", []string{"X-Tollgate-Retry-After", "0", "Retry-After", "3"}, 0, false},
		{"above the max: the next", []string{"X-Tollgate-Retry-After", "90", "Retry-After", "3"}, 3 * time.Second, true},
		{"unparsable: the next", []string{"X-Tollgate-Retry-After", "soon", "Retry-After", "3"}, 3 * time.Second, true},
		{"first value only", []string{"X-Tollgate-Retry-After", "2", "X-Tollgate-Retry-After", "9"}, 2 * time.Second, true},
	}
	for _, tc := range tests {
		h := http.Header{}
		for i := 0; i+1 < len(tc.kv); i += 2 {
			h.Add(tc.kv[i], tc.kv[i+1])
		}
		got, ok := ResetInterval(h, names, time.Minute)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%s: got %v %v, want %v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
