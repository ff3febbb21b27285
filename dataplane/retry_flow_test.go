package dataplane

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// Tiny back-off for tests; jittered waits are never above retryMax.
const (
	retryBase = 5 * time.Millisecond
	retryMax  = 20 * time.Millisecond
)

func fastRetries(c *Config) {
	c.RetryBaseInterval = retryBase
	c.RetryMaxInterval = retryMax
}

// textReply answers status with body and the given header pairs.
func textReply(status int, body string, kv ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		for i := 0; i < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// resetConn closes the connection without a response.
func resetConn(w http.ResponseWriter, r *http.Request) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
	}
}

// perAttempt answers attempt n (1-based) with handlers[n-1], the last one
// for every attempt after.
func perAttempt(handlers ...http.HandlerFunc) http.HandlerFunc {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		i := min(int(n.Add(1)), len(handlers))
		handlers[i-1](w, r)
	}
}

// plainRouteCount is x-envoy-attempt-count as attempt n (1-based) on a
// plain route reaches the upstream: the route removes the first attempt's
// (route.dropAttemptCount), the router sets each retry's after that.
func plainRouteCount(n int) string {
	if n == 1 {
		return ""
	}
	return strconv.Itoa(n)
}

// attemptsOf reads n upstream requests.
func attemptsOf(t *testing.T, u *upstream, n int) []upstreamRec {
	t.Helper()
	recs := make([]upstreamRec, n)
	for i := range recs {
		recs[i] = u.next(t)
	}
	return recs
}

func TestRetriesCountAttemptsAndReturnTheLastResponse(t *testing.T) {
	var n atomic.Int32
	var waits *[]time.Duration
	config := func(c *Config) {
		fastRetries(c)
		waits = recordWaitsAt(c, highestJitter)
	}
	h := newHarness(t, harnessOpts{config: config, upstream: func(w http.ResponseWriter, r *http.Request) {
		textReply(503, fmt.Sprintf("attempt %d", n.Add(1)))(w, r)
	}})
	code, _, body := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, map[string]string{
		"X-Envoy-Retry-On":                       "5xx",
		"X-Envoy-Max-Retries":                    "3",
		"X-Envoy-Retriable-Status-Codes":         "429",
		"X-Envoy-Retriable-Header-Names":         "x-nope",
		"X-Envoy-Upstream-Rq-Per-Try-Timeout-Ms": "100000",
	})
	if code != 503 || body != "attempt 4" {
		t.Errorf("client got %d %q, want the last attempt's 503", code, body)
	}
	recs := attemptsOf(t, h.openai, 4)
	for i, rec := range recs {
		if got := rec.header.Get("X-Envoy-Attempt-Count"); got != plainRouteCount(i+1) {
			t.Errorf("attempt %d: x-envoy-attempt-count %q", i+1, got)
		}
		if rec.body != `{"a":1}` {
			t.Errorf("attempt %d: body %q", i+1, rec.body)
		}
		for k := range rec.header {
			if strings.HasPrefix(strings.ToLower(k), "x-envoy-") && k != "X-Envoy-Attempt-Count" {
				t.Errorf("attempt %d: %s reached the upstream", i+1, k)
			}
		}
	}
	// The highest jitter: each wait is as long as its interval allows.
	if len(*waits) != 3 {
		t.Errorf("waits %v, want one before each of the 3 retries", *waits)
	}
	for i, d := range *waits {
		if d <= 0 || d > retryMax {
			t.Errorf("wait before attempt %d was %v, want within (0, %v]", i+2, d, retryMax)
		}
	}
	if got := h.openai.hits.Load(); got != 4 {
		t.Errorf("upstream saw %d requests, want 4", got)
	}
	// The processor sees only the response that goes downstream.
	msgs := h.stream(t).messages()
	diffMsgs(t, []*extprocMsg{
		wantRespHeaders(hmap(":status", "503", "content-length", "9", "content-type", "text/plain; charset=utf-8"), false),
		wantRespBody("attempt 4", true),
	}, msgs[2:])
}

func TestNoRetryWithoutRetryOn(t *testing.T) {
	h := newHarness(t, harnessOpts{config: fastRetries, upstream: textReply(503, "down")})
	code, _, _ := h.do(t, "GET", "/v1/models", "", map[string]string{"X-Envoy-Max-Retries": "3"})
	if code != 503 {
		t.Errorf("client got %d", code)
	}
	rec := h.openai.next(t)
	if rec.header.Get("X-Envoy-Attempt-Count") != "" || rec.header.Get("X-Envoy-Max-Retries") != "" {
		t.Errorf("upstream headers %v", rec.header)
	}
	h.waitServed(t)
	if got := h.openai.hits.Load(); got != 1 {
		t.Errorf("upstream saw %d requests, want 1", got)
	}
}

func TestRetryOnConditions(t *testing.T) {
	tests := []struct {
		name     string
		hdr      map[string]string
		upstream http.HandlerFunc // for every attempt
		attempts int32
	}{
		{"5xx on 500", map[string]string{"X-Envoy-Retry-On": "5xx"}, textReply(500, ""), 2},
		{"5xx on a reset", map[string]string{"X-Envoy-Retry-On": "5xx"}, resetConn, 2},
		{"gateway-error on 502", map[string]string{"X-Envoy-Retry-On": "gateway-error", "X-Envoy-Max-Retries": "2"}, textReply(502, ""), 3},
		{"gateway-error not on 500", map[string]string{"X-Envoy-Retry-On": "gateway-error"}, textReply(500, ""), 1},
		{"gateway-error on a reset", map[string]string{"X-Envoy-Retry-On": "gateway-error"}, resetConn, 2},
		{"reset", map[string]string{"X-Envoy-Retry-On": "reset", "X-Envoy-Max-Retries": "2"}, resetConn, 3},
		{"reset not on 503", map[string]string{"X-Envoy-Retry-On": "reset"}, textReply(503, ""), 1},
		{"refused-stream counts as reset", map[string]string{"X-Envoy-Retry-On": "refused-stream"}, resetConn, 2},
		{"connect-failure not on a reset", map[string]string{"X-Envoy-Retry-On": "connect-failure"}, resetConn, 1},
		{"retriable-4xx on 409", map[string]string{"X-Envoy-Retry-On": "retriable-4xx"}, textReply(409, ""), 2},
		{"retriable-4xx not on 429", map[string]string{"X-Envoy-Retry-On": "retriable-4xx"}, textReply(429, ""), 1},
		{"retriable-status-codes", map[string]string{"X-Envoy-Retry-On": "retriable-status-codes",
			"X-Envoy-Retriable-Status-Codes": "418, 429"}, textReply(429, ""), 2},
		{"retriable status codes need the token", map[string]string{"X-Envoy-Retry-On": "5xx",
			"X-Envoy-Retriable-Status-Codes": "429"}, textReply(429, ""), 1},
		{"retriable-headers", map[string]string{"X-Envoy-Retry-On": "retriable-headers",
			"X-Envoy-Retriable-Header-Names": "x-other,X-Try-Again"}, textReply(200, "", "X-Try-Again", "1"), 2},
		{"retriable-headers not on others", map[string]string{"X-Envoy-Retry-On": "retriable-headers",
			"X-Envoy-Retriable-Header-Names": "x-try-again"}, textReply(200, "", "X-Other", "1"), 1},
		{"unknown tokens are ignored", map[string]string{"X-Envoy-Retry-On": "bogus, 5xx"}, textReply(503, ""), 2},
		{"only unknown tokens: no retries", map[string]string{"X-Envoy-Retry-On": "bogus", "X-Envoy-Max-Retries": "3"}, textReply(503, ""), 1},
		{"bad max-retries: one retry", map[string]string{"X-Envoy-Retry-On": "5xx", "X-Envoy-Max-Retries": "many"}, textReply(503, ""), 2},
		{"max-retries 0", map[string]string{"X-Envoy-Retry-On": "5xx", "X-Envoy-Max-Retries": "0"}, textReply(503, ""), 1},
		{"x-envoy-ratelimited is not retried", map[string]string{"X-Envoy-Retry-On": "5xx"},
			textReply(503, "", "X-Envoy-Ratelimited", "true"), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Without a processor the router buffers the body itself.
			h := newHarness(t, harnessOpts{noProc: true, config: fastRetries, upstream: tc.upstream})
			resp := h.send(t, context.Background(), "POST", "/v1/chat/completions", `{"a":1}`, tc.hdr)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			h.waitServed(t)
			if got := h.openai.hits.Load(); got != tc.attempts {
				t.Errorf("upstream saw %d attempts, want %d", got, tc.attempts)
			}
			for i := range tc.attempts {
				if rec := h.openai.next(t); rec.body != `{"a":1}` || rec.header.Get("X-Envoy-Attempt-Count") != plainRouteCount(int(i+1)) {
					t.Errorf("attempt %d: body %q, attempt count %q", i+1, rec.body, rec.header.Get("X-Envoy-Attempt-Count"))
				}
			}
		})
	}
}

func TestRetryOnConnectFailure(t *testing.T) {
	var trips atomic.Int32
	counting := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		trips.Add(1)
		return NewTransport().RoundTrip(r)
	})
	h := newHarness(t, harnessOpts{config: func(c *Config) {
		fastRetries(c)
		c.OpenAIUpstream = "http://" + freeAddr(t)
		c.Transport = counting
	}})
	code, _, body := h.do(t, "POST", "/v1/chat/completions", `{}`, map[string]string{
		"X-Envoy-Retry-On": "connect-failure", "X-Envoy-Max-Retries": "2",
	})
	const want = "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure"
	if code != 503 || body != want {
		t.Errorf("client got %d %q", code, body)
	}
	if got := trips.Load(); got != 3 {
		t.Errorf("%d attempts, want 3", got)
	}
	h.stream(t)

	trips.Store(0)
	code, _, body = h.do(t, "POST", "/v1/chat/completions", `{}`, nil)
	if code != 503 || strings.Contains(body, "retried") || trips.Load() != 1 {
		t.Errorf("without retries: client got %d %q after %d attempts", code, body, trips.Load())
	}
	h.stream(t)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRetryHeadersFromTheProcessor(t *testing.T) {
	setRetries := func(req *extprocv3.ProcessingRequest) step {
		if kind(req) == "request_headers" {
			return step{resp: reply(req, &extprocv3.CommonResponse{HeaderMutation: mutation([]*corev3.HeaderValueOption{
				setHdr("x-envoy-retry-on", "retriable-status-codes"),
				setHdr("x-envoy-retriable-status-codes", "429,500,502,503,504"),
				setHdr("x-envoy-max-retries", "2"),
			})})}
		}
		return continueAll(req)
	}
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow_envoy=%v", allow), func(t *testing.T) {
			h := newHarness(t, harnessOpts{script: setRetries, upstream: textReply(429, "slow down"), config: func(c *Config) {
				fastRetries(c)
				c.AllowEnvoyHeaderMutation = allow
			}})
			if code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, nil); code != 429 {
				t.Errorf("client got %d", code)
			}
			want := int32(1)
			if allow {
				want = 3
			}
			if got := h.openai.hits.Load(); got != want {
				t.Errorf("upstream saw %d attempts, want %d", got, want)
			}
			for range want {
				if rec := h.openai.next(t); rec.header.Get("X-Envoy-Retry-On") != "" || rec.header.Get("X-Envoy-Max-Retries") != "" {
					t.Errorf("retry headers reached the upstream: %v", rec.header)
				}
			}
			h.stream(t)
		})
	}
}

func TestRetryAfterSetsTheBackOff(t *testing.T) {
	t.Run("honoured", func(t *testing.T) {
		h := newHarness(t, harnessOpts{config: fastRetries, upstream: perAttempt(
			textReply(429, "", "Retry-After", "1"),
			jsonReply(`{"ok":true}`),
		)})
		code, _, body := h.do(t, "POST", "/v1/chat/completions", `{}`, map[string]string{
			"X-Envoy-Retry-On": "retriable-status-codes", "X-Envoy-Retriable-Status-Codes": "429",
		})
		if code != 200 || body != `{"ok":true}` {
			t.Errorf("client got %d %q", code, body)
		}
		recs := attemptsOf(t, h.openai, 2)
		if gap := recs[1].at.Sub(recs[0].at); gap < time.Second {
			t.Errorf("retried after %v, before Retry-After's second", gap)
		}
		h.stream(t)
	})
	t.Run("above the rate-limited max the exponential back-off applies", func(t *testing.T) {
		var waits *[]time.Duration
		h := newHarness(t, harnessOpts{upstream: perAttempt(
			textReply(503, "", "Retry-After", "2"),
			textReply(503, "", "Retry-After", "0"),
			textReply(503, "", "Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),
			jsonReply(`{"ok":true}`),
		), config: func(c *Config) {
			fastRetries(c)
			c.RateLimitedRetryMaxInterval = time.Second
			waits = recordWaitsAt(c, highestJitter)
		}})
		code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{}`, map[string]string{
			"X-Envoy-Retry-On": "5xx", "X-Envoy-Max-Retries": "3",
		})
		if code != 200 {
			t.Errorf("client got %d", code)
		}
		attemptsOf(t, h.openai, 4)
		if len(*waits) != 3 {
			t.Errorf("waits %v, want one before each of the 3 retries", *waits)
		}
		for i, d := range *waits {
			if d > retryMax {
				t.Errorf("wait before attempt %d was %v: Retry-After was not ignored", i+2, d)
			}
		}
		h.stream(t)
	})
}

func TestRouteTimeoutAcrossRetriesIs504(t *testing.T) {
	h := newHarness(t, harnessOpts{upstream: textReply(503, "down"), config: func(c *Config) {
		// Room for the processor's round trips and several attempts and
		// back-offs on a loaded machine.
		c.RouteTimeout = 3 * time.Second
		c.RetryBaseInterval = 40 * time.Millisecond
		c.RetryMaxInterval = 80 * time.Millisecond
	}})
	code, _, body := h.do(t, "POST", "/v1/chat/completions", `{}`, map[string]string{
		"X-Envoy-Retry-On": "5xx", "X-Envoy-Max-Retries": "1000",
	})
	if code != 504 || body != "upstream request timeout" {
		t.Errorf("client got %d %q", code, body)
	}
	if got := h.openai.hits.Load(); got < 2 {
		t.Errorf("upstream saw %d attempts, want retries before the timeout", got)
	}
	msgs := h.stream(t).messages()
	diffMsgs(t, []*extprocMsg{
		wantRespHeaders(hmap(":status", "504", "content-length", "24", "content-type", "text/plain"), false),
		wantRespBody("upstream request timeout", true),
	}, msgs[2:])
}

func TestClientGoneDuringBackOff(t *testing.T) {
	hit := make(chan struct{}, 1)
	var logs testenv.LogBuffer // the router says when it starts a back-off
	config := func(c *Config) {
		fastRetries(c)
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h := newHarness(t, harnessOpts{config: config, upstream: func(w http.ResponseWriter, r *http.Request) {
		textReply(503, "", "Retry-After", "30")(w, r)
		select {
		case hit <- struct{}{}:
		default:
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, "POST", h.front.URL+"/v1/chat/completions", strings.NewReader(`{}`))
		req.Header.Set("X-Envoy-Retry-On", "5xx")
		if resp, err := h.client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-hit:
	case <-time.After(waitLimit):
		t.Fatal("upstream got no request")
	}
	testenv.WaitFor(t, waitLimit, "the router in its 30 s back-off", func() bool {
		return logs.Contains("router: retrying the upstream request")
	})
	cancelled := time.Now()
	cancel()
	h.waitServed(t)
	if took := time.Since(cancelled); took > 5*time.Second {
		t.Errorf("the request ended %v after the client left", took)
	}
	<-done
	if got := h.openai.hits.Load(); got != 1 {
		t.Errorf("upstream saw %d attempts", got)
	}
	if rec := h.stream(t); rec.endCode != codes.Canceled {
		t.Errorf("processor saw %v, want Canceled", rec.endCode)
	}
}

func TestRouterBuffersAStreamedBodyForRetries(t *testing.T) {
	t.Run("within the limit every attempt gets the body", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noProc: true, config: fastRetries, upstream: perAttempt(textReply(503, ""), jsonReply(`{}`))})
		req, _ := http.NewRequest("POST", h.front.URL+"/v1/chat/completions", io.MultiReader(strings.NewReader(`{"chunked":`), strings.NewReader(`true}`)))
		req.Header.Set("X-Envoy-Retry-On", "5xx")
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for i, rec := range attemptsOf(t, h.openai, 2) {
			if rec.body != `{"chunked":true}` {
				t.Errorf("attempt %d: body %q", i+1, rec.body)
			}
		}
	})
	t.Run("over the limit retries are given up", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noProc: true, upstream: textReply(503, ""), config: func(c *Config) {
			fastRetries(c)
			c.MaxRequestBody = 16
		}})
		body := strings.Repeat("x", 40)
		if code, _, _ := h.do(t, "POST", "/v1/chat/completions", body, map[string]string{"X-Envoy-Retry-On": "5xx"}); code != 503 {
			t.Errorf("client got %d", code)
		}
		if rec := h.openai.next(t); rec.body != body {
			t.Errorf("upstream got %q", rec.body)
		}
		h.waitServed(t)
		if got := h.openai.hits.Load(); got != 1 {
			t.Errorf("upstream saw %d attempts, want 1", got)
		}
	})
}

// recordWaits makes the router's waits instant and lists them; jitter is
// the lowest, so each wait is its interval's lower bound.
func recordWaits(c *Config) *[]time.Duration {
	return recordWaitsAt(c, func(int64) int64 { return 0 })
}

// highestJitter picks the top of every jitter range, so a wait is its
// interval's upper bound: the one a cap must hold.
func highestJitter(n int64) int64 { return n - 1 }

// recordWaitsAt makes the router's waits instant and lists them, with
// jitter as the router's random source. The list is read after the
// request: the waits, not the wall clock, say what the router chose.
func recordWaitsAt(c *Config, jitter func(int64) int64) *[]time.Duration {
	var mu sync.Mutex
	waits := []time.Duration{}
	c.RetryJitter = jitter
	c.RetrySleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		return ctx.Err()
	}
	return &waits
}

// The route's reset_headers, in order (Envoy's parseResetInterval): the
// wait the upstream filter sets first, then the provider's Retry-After; a
// response with neither, or with a first header of 0, gets the exponential
// back-off, which a rate-limited wait leaves where it was.
func TestResetHeadersSetTheBackOff(t *testing.T) {
	var waits *[]time.Duration
	h := newHarness(t, harnessOpts{config: func(c *Config) { waits = recordWaits(c) }, upstream: perAttempt(
		textReply(500, "", "X-Tollgate-Retry-After", "3", "Retry-After", "1"),
		textReply(500, "", "Retry-After", "7"),
		textReply(500, "", "X-Tollgate-Retry-After", "0", "Retry-After", "7"),
		textReply(500, ""),
		jsonReply(`{"ok":true}`),
	)})
	code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{}`, map[string]string{
		"X-Envoy-Retry-On": "retriable-status-codes", "X-Envoy-Retriable-Status-Codes": "500", "X-Envoy-Max-Retries": "4",
	})
	if code != 200 {
		t.Fatalf("client got %d", code)
	}
	// Lowest jitter: rate-limited waits are their interval, exponential
	// ones 0 (random in [0, interval)).
	if want := []time.Duration{3 * time.Second, 7 * time.Second, 0, 0}; !slices.Equal(*waits, want) {
		t.Errorf("waits %v, want %v", *waits, want)
	}
	h.stream(t)
}
