package processor

import (
	"context"
	"io"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-dev/tollgate/policies/attempts"
)

// liveStream is a router-level stream driven step by step, so a test can
// run upstream-level streams between its phases as Envoy does.
type liveStream struct {
	grpc.ServerStream
	in  chan *extprocv3.ProcessingRequest
	out chan *extprocv3.ProcessingResponse
}

func (l *liveStream) Context() context.Context     { return context.Background() }
func (l *liveStream) SetHeader(metadata.MD) error  { return nil }
func (l *liveStream) SendHeader(metadata.MD) error { return nil }
func (l *liveStream) SetTrailer(metadata.MD)       {}
func (l *liveStream) Send(r *extprocv3.ProcessingResponse) error {
	l.out <- r
	return nil
}
func (l *liveStream) Recv() (*extprocv3.ProcessingRequest, error) {
	r, ok := <-l.in
	if !ok {
		return nil, io.EOF
	}
	return r, nil
}

// startRouterStream runs Process on a live stream; step sends one message
// and returns the reply; done ends the stream and waits for Process.
func startRouterStream(t *testing.T, s *Server) (step func(*extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse, done func()) {
	t.Helper()
	l := &liveStream{in: make(chan *extprocv3.ProcessingRequest), out: make(chan *extprocv3.ProcessingResponse)}
	finished := make(chan struct{})
	go func() { defer close(finished); _ = s.Process(l) }()
	step = func(r *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		l.in <- r
		return <-l.out
	}
	done = func() { close(l.in); <-finished }
	return step, done
}

// runAttempt plays one upstream-level stream (the metadata Envoy's upstream
// filter is configured with) and returns its replies.
func runAttempt(t *testing.T, s *Server, script ...*extprocv3.ProcessingRequest) []*extprocv3.ProcessingResponse {
	t.Helper()
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(FilterLevelMetadata, FilterLevelUpstream))
	f := &fakeStream{ctx: ctx, script: script}
	if err := s.Process(f); err != nil {
		t.Fatalf("upstream stream: %v", err)
	}
	if len(f.replies) != len(script) {
		t.Fatalf("upstream stream: %d replies for %d messages", len(f.replies), len(script))
	}
	return f.replies
}

// linkOf is the link a router-level reply hands to the upstream-level
// filter: dynamic metadata in LinkNamespace, never a header.
func linkOf(r *extprocv3.ProcessingResponse) string {
	return r.GetDynamicMetadata().GetFields()[LinkNamespace].GetStructValue().GetFields()[linkField].GetStringValue()
}

// attemptHeaders is an upstream-level request_headers message carrying the
// link in metadata_context, as Envoy forwards the namespace there
// (metadata_options.forwarding_namespaces).
func attemptHeaders(link string, endOfStream bool, kv ...string) *extprocv3.ProcessingRequest {
	r := reqHeaders(endOfStream, kv...)
	r.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		LinkNamespace: {Fields: map[string]*structpb.Value{linkField: structpb.NewStringValue(link)}},
	}}
	return r
}

func setHeaders(cr *extprocv3.CommonResponse) map[string]string {
	out := map[string]string{}
	for _, h := range cr.GetHeaderMutation().GetSetHeaders() {
		out[h.GetHeader().GetKey()] = string(h.GetHeader().GetRawValue())
	}
	return out
}

func removed(cr *extprocv3.CommonResponse, key string) bool {
	for _, k := range cr.GetHeaderMutation().GetRemoveHeaders() {
		if k == key {
			return true
		}
	}
	return false
}

func TestFallbackAcrossAttempts(t *testing.T) {
	s, sink := newTestServer(t)
	step, done := startRouterStream(t, s)
	reply := step(reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "helicone-request-id", requestID,
		"helicone-fallback", `[{"model": "gpt-4o-mini"}, {"model": "gpt-3.5-turbo"}]`))
	hdrs := reply.GetRequestHeaders().GetResponse()
	set := setHeaders(hdrs)
	key := linkOf(reply)
	if key == "" || key == requestID {
		t.Fatalf("link %q: want a random key", key)
	}
	if _, ok := set[clientLinkHeader]; ok {
		t.Errorf("the link travels as a header %q: attempts share one header map, so it would reach the provider", clientLinkHeader)
	}
	for k, want := range map[string]string{
		"x-envoy-max-retries": "2", "x-envoy-retry-on": "retriable-headers,reset,connect-failure",
		"x-envoy-retriable-header-names": fallbackNextHeader,
	} {
		if set[k] != want {
			t.Errorf("%s = %q, want %q", k, set[k], want)
		}
	}
	if !removed(hdrs, "helicone-fallback") {
		t.Error("Helicone-Fallback reaches the provider")
	}
	step(reqBody(`{"model":"gpt-4o","stream":false,"messages":[{"role":"user","content":"hi"}]}`))

	// Attempt 1: the request as sent; a 503 hands over to entry 1.
	r := runAttempt(t, s, attemptHeaders(key, false, ":path", "/v1/chat/completions", attemptCountHeader, "1"),
		respHeaders(false, ":status", "503"))
	cr := r[0].GetRequestHeaders().GetResponse()
	if cr.GetBodyMutation() != nil || !removed(cr, attemptCountHeader) {
		t.Errorf("attempt 1 reply %v: want no body change and the attempt count removed", cr)
	}
	if r[0].GetModeOverride().GetResponseHeaderMode().String() != "SEND" {
		t.Error("attempt 1 does not ask for its response headers")
	}
	if setHeaders(r[1].GetResponseHeaders().GetResponse())[fallbackNextHeader] != "1" {
		t.Error("a 503 on attempt 1 does not move on")
	}

	// Attempt 2: entry 1's model, rewritten from the original body; a 400
	// is kept (not one of the default codes).
	r = runAttempt(t, s, attemptHeaders(key, false, ":path", "/v1/chat/completions", attemptCountHeader, "2"),
		respHeaders(false, ":status", "400"))
	cr = r[0].GetRequestHeaders().GetResponse()
	if cr.GetStatus() != extprocv3.CommonResponse_CONTINUE_AND_REPLACE {
		t.Fatalf("attempt 2 status %v, want CONTINUE_AND_REPLACE", cr.GetStatus())
	}
	body := cr.GetBodyMutation().GetBody()
	if m := gjson.GetBytes(body, "model").String(); m != "gpt-4o-mini" || gjson.GetBytes(body, "messages.0.content").String() != "hi" {
		t.Errorf("attempt 2 body %s", body)
	}
	if setHeaders(cr)["content-length"] != itoa(len(body)) {
		t.Error("attempt 2 content-length does not match its body")
	}
	if r[1].GetResponseHeaders().GetResponse() != nil {
		t.Errorf("a 400 must be kept, got %v", r[1])
	}

	resp := step(respHeaders(false, ":status", "400", "content-type", "application/json")).GetResponseHeaders().GetResponse()
	if got := setHeaders(resp)["helicone-fallback-index"]; got != "1" {
		t.Errorf("Helicone-Fallback-Index = %q, want 1", got)
	}
	if !removed(resp, fallbackNextHeader) {
		t.Error("the internal marker may reach the client")
	}
	step(respBody(`{"error":{"message":"bad"}}`, true))
	done()

	rec := sink.Records()[0]
	if rec.FallbackIndex != 1 || rec.Attempts != 2 || rec.Model != "gpt-4o" || rec.Status != 400 {
		t.Errorf("record fallback_index=%d attempts=%d model=%q status=%d", rec.FallbackIndex, rec.Attempts, rec.Model, rec.Status)
	}
	if _, ok := s.links.Load(key); ok {
		t.Error("the link outlives the call")
	}
	// A late attempt of the finished call goes out unchanged.
	r = runAttempt(t, s, attemptHeaders(key, true, ":path", "/v1/chat/completions", attemptCountHeader, "3"))
	if cr := r[0].GetRequestHeaders().GetResponse(); cr.GetBodyMutation() != nil || len(setHeaders(cr)) != 0 {
		t.Errorf("late attempt reply %v", cr)
	}
	if got := testutil.ToFloat64(s.metrics.linkMisses); got != 1 {
		t.Errorf("link misses = %v, want 1", got)
	}
}

func TestGatewayFallbacksSetHeadersAndHonourOnCodes(t *testing.T) {
	s, sink := newTestServer(t)
	step, done := startRouterStream(t, s)
	reply := step(reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
		"helicone-fallbacks", `[{"target-url": "https://api.openai.com", "headers": {"authorization": "Bearer sk-first"}, "onCodes": [401]},
		  {"target-url": "https://api.openai.com", "headers": {"authorization": "Bearer sk-second"}, "bodyKeyOverride": {"model": "gpt-4o-mini"}}]`))
	key := linkOf(reply)
	hdrs := reply.GetRequestHeaders().GetResponse()
	if set := setHeaders(hdrs); set[upstreamOriginHeader] != "" || set[attemptsHeader] != "1" || !hdrs.GetClearRouteCache() {
		t.Errorf("set %v, clear_route_cache %v: the providers' own origin keeps its route, on the cluster with the upstream filter", set, hdrs.GetClearRouteCache())
	}
	step(reqBody(`{"model":"gpt-4o","messages":[]}`))

	r := runAttempt(t, s, attemptHeaders(key, false, attemptCountHeader, "1"), respHeaders(false, ":status", "500"))
	cr := r[0].GetRequestHeaders().GetResponse()
	if setHeaders(cr)["authorization"] != "Bearer sk-first" || cr.GetBodyMutation() != nil {
		t.Errorf("entry 0 reply %v", cr)
	}
	if r[1].GetResponseHeaders().GetResponse() != nil {
		t.Error("a 500 is not in entry 0's onCodes [401] and must be kept")
	}
	// Had entry 0 moved on, entry 1 sets its own key.
	r = runAttempt(t, s, attemptHeaders(key, false, attemptCountHeader, "2"))
	if got := setHeaders(r[0].GetRequestHeaders().GetResponse())["authorization"]; got != "Bearer sk-second" {
		t.Errorf("entry 1 authorization %q", got)
	}
	resp := step(respHeaders(true, ":status", "500")).GetResponseHeaders().GetResponse()
	if setHeaders(resp)["helicone-fallback-index"] != "1" {
		t.Errorf("fallback index header %v", setHeaders(resp))
	}
	done()
	if rec := sink.Records()[0]; rec.FallbackIndex != 1 || rec.Attempts != 2 {
		t.Errorf("record fallback_index=%d attempts=%d", rec.FallbackIndex, rec.Attempts)
	}
}

// Envoy's attempts share one header map: a header set for one entry must be
// put back, or removed, for the next.
func TestFallbackHeadersAreRestoredPerAttempt(t *testing.T) {
	s, _ := newTestServer(t)
	step, done := startRouterStream(t, s)
	defer done()
	key := linkOf(step(reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-app",
		"helicone-fallback", `[{"model": "a", "headers": {"authorization": "Bearer sk-a", "x-extra": "1"}}, {"model": "b"}]`)))
	step(reqBody(`{"model":"m","messages":[]}`))
	attemptHeaders := func(n int) *extprocv3.CommonResponse {
		return runAttempt(t, s, attemptHeaders(key, false, attemptCountHeader, itoa(n)))[0].GetRequestHeaders().GetResponse()
	}
	if cr := attemptHeaders(2); setHeaders(cr)["authorization"] != "Bearer sk-a" || setHeaders(cr)["x-extra"] != "1" {
		t.Errorf("entry 1: %v", cr.GetHeaderMutation())
	}
	if cr := attemptHeaders(3); setHeaders(cr)["authorization"] != "Bearer sk-app" || !removed(cr, "x-extra") {
		t.Errorf("entry 2 must restore the request's own headers: %v", cr.GetHeaderMutation())
	}
}

// Helicone's worker (worker/src/lib/clients/ProviderClient.ts,
// callProviderWithRetry) makes Retry-Num attempts in all and retries 429,
// 500 and 522 (and failed fetches).
func TestRetryHeadersBecomeEnvoyRetries(t *testing.T) {
	s, sink := newTestServer(t)
	step, done := startRouterStream(t, s)
	reply := step(reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
		"helicone-retry-enabled", "true", "helicone-retry-num", "3", "helicone-retry-factor", "1.5"))
	hdrs := reply.GetRequestHeaders().GetResponse()
	set := setHeaders(hdrs)
	for k, want := range map[string]string{
		"x-envoy-max-retries": "2", "x-envoy-retry-on": "retriable-status-codes,reset,connect-failure",
		"x-envoy-retriable-status-codes": "429,500,522",
	} {
		if set[k] != want {
			t.Errorf("%s = %q, want %q", k, set[k], want)
		}
	}
	for _, h := range []string{"helicone-retry-enabled", "helicone-retry-num", "helicone-retry-factor"} {
		if !removed(hdrs, h) {
			t.Errorf("%s reaches the provider", h)
		}
	}
	step(reqBody(chatBody))
	for n := 1; n <= 3; n++ {
		r := runAttempt(t, s, attemptHeaders(linkOf(reply), false, attemptCountHeader, itoa(n)))
		if r[0].GetRequestHeaders().GetResponse().GetBodyMutation() != nil {
			t.Errorf("attempt %d: retries alone must not change the attempt: %v", n, r[0])
		}
		// The response of an attempt with a retry left decides the wait.
		if got, want := r[0].GetModeOverride() != nil, n < 3; got != want {
			t.Errorf("attempt %d: asks for the response headers %v, want %v", n, got, want)
		}
	}
	resp := step(respHeaders(true, ":status", "200")).GetResponseHeaders().GetResponse()
	if _, ok := setHeaders(resp)["helicone-fallback-index"]; ok {
		t.Error("Helicone-Fallback-Index without a fallback list")
	}
	if !removed(resp, attempts.BackOffHeader) {
		t.Errorf("%s can reach the client", attempts.BackOffHeader)
	}
	done()
	rec := sink.Records()[0]
	if rec.Attempts != 3 || rec.RetryPolicy != "num=3 factor=1.5 min_timeout_ms=1000 max_timeout_ms=10000" {
		t.Errorf("record attempts=%d retry_policy=%q", rec.Attempts, rec.RetryPolicy)
	}
}

// Each retried response carries the wait before the next attempt, for the
// routes' rate_limited_retry_back_off: Helicone's back-off (node-retry's
// minTimeout × factor^k, capped at maxTimeout, as a lower bound in whole
// seconds), or the provider's Retry-After when longer.
func TestRetriedResponsesCarryTheBackOff(t *testing.T) {
	s, _ := newTestServer(t)
	step, done := startRouterStream(t, s)
	defer done()
	link := linkOf(step(reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
		"helicone-retry-enabled", "true", "helicone-retry-num", "5", "helicone-retry-factor", "3",
		"helicone-retry-min-timeout", "1500", "helicone-retry-max-timeout", "12000")))
	step(reqBody(chatBody))
	backOff := func(n int, kv ...string) (string, bool) {
		r := runAttempt(t, s, attemptHeaders(link, false, attemptCountHeader, itoa(n)), respHeaders(false, kv...))
		v, ok := setHeaders(r[1].GetResponseHeaders().GetResponse())[attempts.BackOffHeader]
		return v, ok
	}
	for _, tc := range []struct {
		n      int
		status string
		extra  []string
		want   string // "" = no back-off header
	}{
		{1, "500", nil, "2"},                            // 1.5 s, rounded up
		{2, "429", nil, "5"},                            // 4.5 s
		{3, "522", nil, "12"},                           // 13.5 s, capped at 12
		{3, "429", []string{"retry-after", "30"}, "30"}, // the provider asks for longer
		{2, "429", []string{"retry-after", "1"}, "5"},   // or shorter
		{2, "429", []string{"retry-after", "600"}, "5"}, // beyond what Envoy honours
		{2, "503", nil, ""},                             // not a status Helicone retries
		{2, "200", nil, ""},
		{5, "500", nil, ""}, // the last attempt: nothing to wait for
	} {
		kv := append([]string{":status", tc.status}, tc.extra...)
		got, ok := backOff(tc.n, kv...)
		if tc.want == "" && ok || tc.want != "" && got != tc.want {
			t.Errorf("attempt %d, %v: back-off %q (%v), want %q", tc.n, kv, got, ok, tc.want)
		}
	}
}

func TestPlainCallsSkipTheUpstreamFilter(t *testing.T) {
	s, sink := newTestServer(t)
	replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"), reqBody(chatBody),
		respHeaders(false, ":status", "200"), respBody(chatResponse, true))
	// The plain route stays: its cluster has no upstream filter.
	if cr := replies[0].GetRequestHeaders().GetResponse(); cr.GetClearRouteCache() || setHeaders(cr)[attemptsHeader] != "" {
		t.Errorf("plain call's reply %v: no %s, no clear_route_cache", cr, attemptsHeader)
	}
	if rec := sink.Records()[0]; rec.Attempts != 1 || rec.FallbackIndex != 0 {
		t.Errorf("record attempts=%d fallback_index=%d", rec.Attempts, rec.FallbackIndex)
	}
	r := runAttempt(t, s, reqHeaders(true, ":path", "/v1/chat/completions", attemptCountHeader, "1"))
	cr := r[0].GetRequestHeaders().GetResponse()
	if r[0].GetModeOverride() != nil || cr.GetBodyMutation() != nil || !removed(cr, attemptCountHeader) {
		t.Errorf("plain attempt reply %v", r[0])
	}
	if got := testutil.ToFloat64(s.metrics.linkMisses); got != 0 {
		t.Errorf("a request without a link is not a miss: %v", got)
	}
}

// Retries alone need the upstream filter too (the wait before each retry),
// and a client cannot pick its route: without the early header mutation a
// client's x-tollgate-attempts reaches the processor, which removes it.
func TestAttemptsRouteOnlyForTheProcessor(t *testing.T) {
	s, _ := newTestServer(t)
	replies, _ := run(s, nil, reqHeaders(true, ":method", "GET", ":path", "/v1/models",
		"helicone-retry-enabled", "true"), respHeaders(true, ":status", "200"))
	cr := replies[0].GetRequestHeaders().GetResponse()
	if setHeaders(cr)[attemptsHeader] != "1" || !cr.GetClearRouteCache() {
		t.Errorf("retrying call's reply %v: want %s and clear_route_cache", cr, attemptsHeader)
	}
	replies, _ = run(s, nil, reqHeaders(true, ":method", "GET", ":path", "/v1/models", attemptsHeader, "1"),
		respHeaders(true, ":status", "200"))
	cr = replies[0].GetRequestHeaders().GetResponse()
	if !removed(cr, attemptsHeader) || setHeaders(cr)[attemptsHeader] != "" || !cr.GetClearRouteCache() {
		t.Errorf("reply %v: a client's %s must be removed and the route picked again", cr, attemptsHeader)
	}
}

// checkAttemptsRoute is the invariant between the retry headers and the
// route: a request-headers reply that asks Envoy for retries
// (x-envoy-retry-on) or links an attempt plan also sets attemptsHeader
// with clear_route_cache, or the call would take a plain route, whose
// cluster has no upstream-level filter to rewrite, pace or count its
// attempts.
func checkAttemptsRoute(t *testing.T, reply *extprocv3.ProcessingResponse) {
	t.Helper()
	if reply.GetRequestHeaders() == nil {
		return
	}
	cr := reply.GetRequestHeaders().GetResponse()
	set := setHeaders(cr)
	if set["x-envoy-retry-on"] == "" && linkOf(reply) == "" {
		return
	}
	if set[attemptsHeader] != "1" || !cr.GetClearRouteCache() {
		t.Errorf("reply sets %v (link %q), clear_route_cache %v: retries or a link need %s and clear_route_cache",
			set, linkOf(reply), cr.GetClearRouteCache(), attemptsHeader)
	}
}

func TestRetriesAndFallbacksPickTheAttemptsRoute(t *testing.T) {
	for _, tc := range []struct {
		hdrs []string
		twin bool // the *_attempts route
	}{
		{[]string{"helicone-retry-enabled", "true"}, true},
		{[]string{"helicone-retry-enabled", "TRUE", "helicone-retry-num", "2"}, true},
		{[]string{"helicone-retry-enabled", "true", "helicone-retry-num", "1"}, false},
		{[]string{"helicone-retry-enabled", "true", "helicone-retry-num", "1", "helicone-fallback", `[{"model": "gpt-4o-mini"}]`}, true},
		{[]string{"helicone-retry-enabled", "true", "helicone-retry-num", "10", "helicone-retry-factor", "1"}, true},
		{[]string{"helicone-retry-enabled", "false", "helicone-retry-num", "3"}, false},
		{[]string{"helicone-fallback", `[{"model": "gpt-4o-mini"}]`}, true},
		{[]string{"helicone-fallbacks", `[{"target-url": "https://api.openai.com"}, {"target-url": "https://api.openai.com", "headers": {"authorization": "Bearer sk-2"}}]`}, true},
		{[]string{"helicone-target-url", "https://api.together.xyz", "helicone-retry-enabled", "true"}, true},
	} {
		t.Run(strings.Join(tc.hdrs, " "), func(t *testing.T) {
			s, _ := newTestServer(t)
			replies, err := run(s, nil, reqHeaders(false, append([]string{":method", "POST", ":path", "/v1/chat/completions"}, tc.hdrs...)...),
				reqBody(chatBody), respHeaders(false, ":status", "200"), respBody(chatResponse, true))
			if err != nil {
				t.Fatal(err)
			}
			checkAttemptsRoute(t, replies[0])
			if got := setHeaders(replies[0].GetRequestHeaders().GetResponse())[attemptsHeader] == "1"; got != tc.twin {
				t.Errorf("%s set: %v, want %v", attemptsHeader, got, tc.twin)
			}
		})
	}
}

// Helicone-Retry-Num counts attempts, the first included: 1 (or 0) is one
// attempt, no retry. Without fallbacks such a call needs neither Envoy's
// retry headers nor the upstream-level filter, so it stays on the plain
// route; its policy is still recorded.
func TestOneAttemptStaysOnThePlainRoute(t *testing.T) {
	for _, num := range []string{"1", "0"} {
		t.Run(num, func(t *testing.T) {
			s, sink := newTestServer(t)
			replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
				"helicone-retry-enabled", "true", "helicone-retry-num", num),
				reqBody(chatBody), respHeaders(false, ":status", "200"), respBody(chatResponse, true))
			cr := replies[0].GetRequestHeaders().GetResponse()
			for k := range setHeaders(cr) {
				if k == attemptsHeader || strings.HasPrefix(k, "x-envoy-") {
					t.Errorf("reply sets %s", k)
				}
			}
			if cr.GetClearRouteCache() || linkOf(replies[0]) != "" {
				t.Errorf("clear_route_cache %v, link %q: the plain route, without a link", cr.GetClearRouteCache(), linkOf(replies[0]))
			}
			if rec := sink.Records()[0]; !strings.HasPrefix(rec.RetryPolicy, "num=1 ") || rec.Attempts != 1 {
				t.Errorf("record retry_policy %q, attempts %d", rec.RetryPolicy, rec.Attempts)
			}
		})
	}
}

// An Envoy configuration from before the two clusters per upstream runs
// the upstream-level filter on every cluster and does not remove
// attemptsHeader itself: the processor's upstream-level reply removes it
// on every attempt, linked or not.
func TestAttemptsHeaderRemovedAtTheUpstreamLevel(t *testing.T) {
	s, _ := newTestServer(t)
	step, done := startRouterStream(t, s)
	defer done()
	key := linkOf(step(reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "helicone-retry-enabled", "true")))
	if key == "" {
		t.Fatal("no link")
	}
	for _, k := range []string{key, "", "gone"} {
		r := runAttempt(t, s, attemptHeaders(k, true, ":path", "/v1/chat/completions", attemptsHeader, "1", attemptCountHeader, "1"))
		if cr := r[0].GetRequestHeaders().GetResponse(); !removed(cr, attemptsHeader) {
			t.Errorf("link %q: upstream-level reply %v leaves %s for the provider", k, cr, attemptsHeader)
		}
	}
}

func TestFallbackHeaderErrors(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		want    string
	}{
		{"bad json", []string{"helicone-fallback", "[{"}, "Helicone-Fallback must be a JSON array"},
		{"two formats", []string{"helicone-fallbacks", `[{"target-url":"https://api.openai.com"},{"target-url":"https://api.anthropic.com"}]`},
			"Helicone-Fallbacks entry 1 target-url https://api.anthropic.com speaks anthropic's format and this request openai's"},
		{"origin not allowed", []string{"helicone-fallbacks", `[{"target-url":"https://evil.example"}]`},
			"Helicone-Fallbacks entry 0 target-url origin https://evil.example is not allowed"},
		{"second origin not allowed", []string{"helicone-fallbacks", `[{"target-url":"https://api.together.xyz"},{"target-url":"https://evil.example"}]`},
			"Helicone-Fallbacks entry 1 target-url origin https://evil.example is not allowed"},
		{"short form, second entry not allowed", []string{"helicone-fallback", `[{"model":"m"},{"target-url":"https://evil.example"}]`},
			"Helicone-Fallback entry 1 target-url origin https://evil.example is not allowed"},
		{"bad retry", []string{"helicone-retry-enabled", "true", "helicone-retry-min-timeout", "5000", "helicone-retry-max-timeout", "100"},
			"Helicone-Retry-Max-Timeout (100 ms) must not be below Helicone-Retry-Min-Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, sink := newTestServer(t)
			kv := append([]string{":method", "POST", ":path", "/v1/chat/completions"}, tt.headers...)
			replies, _ := run(s, nil, reqHeaders(false, kv...))
			ir := replies[0].GetImmediateResponse()
			if ir == nil || !strings.Contains(string(ir.GetBody()), tt.want) {
				t.Fatalf("reply %v, want an immediate response containing %q", replies[0], tt.want)
			}
			if rec := sink.Records()[0]; rec.Attempts != 0 {
				t.Errorf("a rejected call made %d attempts", rec.Attempts)
			}
			if n := 0; func() bool { s.links.Range(func(any, any) bool { n++; return true }); return n > 0 }() {
				t.Error("a rejected call left a link behind")
			}
		})
	}
}

func TestFallbacksToOneOtherOriginReroute(t *testing.T) {
	s, sink := newTestServer(t)
	replies, _ := run(s, nil, reqHeaders(true, ":method", "GET", ":path", "/v1/models",
		"helicone-fallbacks", `[{"target-url":"https://api.together.xyz"},{"target-url":"https://API.together.xyz/v1","bodyKeyOverride":{"model":"m"}}]`),
		respHeaders(true, ":status", "200"))
	cr := replies[0].GetRequestHeaders().GetResponse()
	if !cr.GetClearRouteCache() || setHeaders(cr)[upstreamOriginHeader] != "https://api.together.xyz" {
		t.Errorf("reply %v: want the route moved to the entries' origin", cr)
	}
	if rec := sink.Records()[0]; rec.TargetURL != "https://api.together.xyz" {
		t.Errorf("record target_url %q", rec.TargetURL)
	}
}

// Helicone sends each Helicone-Fallbacks entry to its own target-url, the
// first entry included, and moves on when the status is in the entry's
// onCodes (worker/src/routers/gatewayRouter.ts, fallBack). Behind Envoy
// the entries' origins become a fallback chain route: one priority level
// per attempt.
func TestFallbackChainAcrossOrigins(t *testing.T) {
	s, sink := newTestServer(t)
	step, done := startRouterStream(t, s)
	reply := step(reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
		"helicone-retry-enabled", "true", "helicone-retry-num", "5",
		"helicone-fallbacks", `[{"target-url": "https://api.openai.com", "headers": {"authorization": "Bearer sk-openai"}, "onCodes": [429, 503]},
		  {"target-url": "https://api.together.xyz/v1", "headers": {"authorization": "Bearer sk-together"}, "onCodes": [], "bodyKeyOverride": {"model": "meta-llama/Llama-3-8b-chat-hf"}}]`))
	cr := reply.GetRequestHeaders().GetResponse()
	set := setHeaders(cr)
	if got := set[fallbackChainHeader]; got != "https://api.openai.com https://api.together.xyz" {
		t.Errorf("%s = %q: want the origin of each attempt", fallbackChainHeader, got)
	}
	if !cr.GetClearRouteCache() {
		t.Error("the chain route is not picked: no clear_route_cache")
	}
	if _, ok := set[upstreamOriginHeader]; ok {
		t.Error("a chain must not take the single-origin forward-proxy route")
	}
	// One retry per level: a sixth attempt would go back to level 0 with
	// the last entry's key.
	if set["x-envoy-max-retries"] != "1" {
		t.Errorf("x-envoy-max-retries %q, want 1 (two levels)", set["x-envoy-max-retries"])
	}
	step(reqBody(`{"model":"gpt-4o","messages":[]}`))
	key := linkOf(reply)
	r := runAttempt(t, s, attemptHeaders(key, false, attemptCountHeader, "1"), respHeaders(false, ":status", "429"))
	if h := setHeaders(r[0].GetRequestHeaders().GetResponse()); h["authorization"] != "Bearer sk-openai" {
		t.Errorf("attempt 1 headers %v", h)
	}
	if setHeaders(r[1].GetResponseHeaders().GetResponse())[fallbackNextHeader] != "1" {
		t.Error("a 429 in entry 0's onCodes does not move on")
	}
	r = runAttempt(t, s, attemptHeaders(key, false, attemptCountHeader, "2"))
	cr2 := r[0].GetRequestHeaders().GetResponse()
	if h := setHeaders(cr2); h["authorization"] != "Bearer sk-together" {
		t.Errorf("attempt 2 headers %v", h)
	}
	if m := gjson.GetBytes(cr2.GetBodyMutation().GetBody(), "model").String(); m != "meta-llama/Llama-3-8b-chat-hf" {
		t.Errorf("attempt 2 model %q", m)
	}
	hdrs := step(respHeaders(false, ":status", "200")).GetResponseHeaders().GetResponse()
	if setHeaders(hdrs)["helicone-fallback-index"] != "1" {
		t.Errorf("response headers %v", setHeaders(hdrs))
	}
	step(respBody(`{"model":"meta-llama/Llama-3-8b-chat-hf","usage":{"prompt_tokens":3,"completion_tokens":2}}`, true))
	done()
	rec := sink.Records()[0]
	if rec.FallbackIndex != 1 || rec.Attempts != 2 || rec.Provider != "api.together.xyz" || rec.TargetURL != "https://api.together.xyz" {
		t.Errorf("record fallback_index %d attempts %d provider %q target_url %q: want entry 1 on api.together.xyz",
			rec.FallbackIndex, rec.Attempts, rec.Provider, rec.TargetURL)
	}
}

// Each entry's origin passes the egress policy, named in the refusal.
func TestFallbackChainEgressNamesTheEntry(t *testing.T) {
	s, sink := newTestServer(t, func(o *Options) { o.Egress = mustPolicy(t, openAIOnly) })
	replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
		"helicone-fallbacks", `[{"target-url": "https://api.openai.com"}, {"target-url": "https://api.together.xyz"}]`), reqBody(`{"model":"gpt-4o-mini"}`))
	ir := replies[0].GetImmediateResponse()
	if ir == nil || ir.GetStatus().GetCode() != 403 || !strings.Contains(string(ir.GetBody()), "Helicone-Fallbacks entry 1 target-url") {
		t.Fatalf("reply %v, want a 403 naming entry 1", replies[0])
	}
	if r := sink.Records()[0]; !strings.HasPrefix(r.PolicyDecision, "deny: ") {
		t.Errorf("decision %q", r.PolicyDecision)
	}
}

// Only the processor picks a fallback chain route: a client's header is
// removed and the route picked again, for a hand-written config without
// the early header mutation of envoy/.
func TestClientCannotPickAFallbackChain(t *testing.T) {
	s, _ := newTestServer(t)
	replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions",
		fallbackChainHeader, "https://api.openai.com https://evil.example"), reqBody(chatBody))
	cr := replies[0].GetRequestHeaders().GetResponse()
	if !removed(cr, fallbackChainHeader) || !cr.GetClearRouteCache() {
		t.Errorf("reply %v: a client's %s must be removed and the route picked again", cr, fallbackChainHeader)
	}
}

// A key-vault provider key stands for the request's own provider: an entry
// on another origin must name its own key, or the call is refused naming
// it. And an entry that changes the key gives the next attempt back the
// swapped provider key, never the proxy key the client sent.
func TestFallbacksKeepVaultKeysHome(t *testing.T) {
	s, _ := newTestServer(t, testVault(t))
	replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer "+testProxyKey,
		"helicone-fallbacks", `[{"target-url": "https://api.openai.com"}, {"target-url": "https://api.together.xyz"}]`), reqBody(chatBody))
	ir := replies[0].GetImmediateResponse()
	if ir == nil || ir.GetStatus().GetCode() != 400 || !strings.Contains(string(ir.GetBody()), "Helicone-Fallbacks entry 1 target-url https://api.together.xyz: this call's provider key comes from the key vault") {
		t.Fatalf("reply %v, want a 400 naming entry 1", replies[0])
	}

	s, _ = newTestServer(t, testVault(t))
	step, done := startRouterStream(t, s)
	defer done()
	key := linkOf(step(reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer "+testProxyKey,
		"helicone-fallback", `[{"headers": {"authorization": "Bearer sk-other"}}, {"model": "b"}]`)))
	step(reqBody(chatBody))
	got := func(n int) string {
		return setHeaders(runAttempt(t, s, attemptHeaders(key, false, attemptCountHeader, itoa(n)))[0].GetRequestHeaders().GetResponse())["authorization"]
	}
	for n, want := range map[int]string{1: "Bearer " + testProviderKey, 2: "Bearer sk-other", 3: "Bearer " + testProviderKey} {
		if v := got(n); v != want {
			t.Errorf("attempt %d sends authorization %q, want %q", n, v, want)
		}
	}
}

// An upstream-level stream has no call: trailers sent to it anyway (a
// configuration that asks for them) get empty replies, not a crash.
func TestUpstreamLevelTrailersAnswered(t *testing.T) {
	s, _ := newTestServer(t)
	r := runAttempt(t, s,
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: &extprocv3.HttpTrailers{}}},
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{}}})
	if r[0].GetRequestTrailers() == nil || r[1].GetResponseTrailers() == nil {
		t.Fatalf("replies %v", r)
	}
}
