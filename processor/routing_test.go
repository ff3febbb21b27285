package processor

import "testing"

// A client that sends the routing headers itself (a config without the early
// header mutation lets them reach the processor) gets them removed, and the
// reply clears the route cache so Envoy re-picks the route it chose from the
// client's headers.
func TestClientUpstreamHeadersRemovedWithRouteCleared(t *testing.T) {
	s, _ := newTestServer(t)
	replies, _ := run(s, nil,
		reqHeaders(true, ":method", "GET", ":path", "/v1/models",
			"x-tollgate-upstream", "https://evil.example", "x-tollgate-upstream-host", "evil.example", "host", "evil.example"),
		respHeaders(true, ":status", "200"))
	cr := replies[0].GetRequestHeaders().GetResponse()
	for _, h := range []string{upstreamOriginHeader, upstreamHostHeader} {
		if !removed(cr, h) {
			t.Errorf("%s from the client not removed", h)
		}
	}
	if !cr.GetClearRouteCache() || cr.GetHeaderMutation() == nil {
		t.Error("the route must be re-picked: clear_route_cache with the header mutation")
	}
}

// With Helicone-Target-URL the processor's own values replace the client's.
func TestClientUpstreamHeadersReplacedByTarget(t *testing.T) {
	s, _ := newTestServer(t)
	replies, _ := run(s, nil,
		reqHeaders(true, ":method", "GET", ":path", "/v1/models", "helicone-target-url", "https://api.together.xyz",
			"x-tollgate-upstream-host", "evil.example"),
		respHeaders(true, ":status", "200"))
	cr := replies[0].GetRequestHeaders().GetResponse()
	if got := setHeaders(cr)[upstreamHostHeader]; got != "api.together.xyz" || removed(cr, upstreamHostHeader) {
		t.Fatalf("upstream host %q (removed: %v)", got, removed(cr, upstreamHostHeader))
	}
}

// Envoy's router obeys x-envoy-* request headers: a client's
// x-envoy-max-retries would buy it paid calls past the retry cap. The
// processor removes every one it does not set.
func TestClientEnvoyHeadersRemoved(t *testing.T) {
	s, _ := newTestServer(t)
	replies, _ := run(s, nil,
		reqHeaders(true, ":method", "GET", ":path", "/v1/models",
			"x-envoy-max-retries", "10", "x-envoy-retry-on", "5xx", "x-envoy-upstream-rq-timeout-ms", "1",
			"x-envoy-external-address", "10.0.0.1"),
		respHeaders(true, ":status", "200"))
	cr := replies[0].GetRequestHeaders().GetResponse()
	for _, h := range []string{"x-envoy-max-retries", "x-envoy-retry-on", "x-envoy-upstream-rq-timeout-ms", "x-envoy-external-address"} {
		if !removed(cr, h) {
			t.Errorf("%s from the client not removed", h)
		}
	}
}

// The retry headers the processor sets from Helicone-Retry-* stay, with its
// own values; the client's others go.
func TestClientEnvoyHeadersReplacedByRetryPlan(t *testing.T) {
	s, _ := newTestServer(t)
	replies, _ := run(s, nil,
		reqHeaders(true, ":method", "GET", ":path", "/v1/models", "helicone-retry-enabled", "true", "helicone-retry-num", "2",
			"x-envoy-max-retries", "10", "x-envoy-hedge-on-per-try-timeout", "true"),
		respHeaders(true, ":status", "200"))
	cr := replies[0].GetRequestHeaders().GetResponse()
	if got := setHeaders(cr)["x-envoy-max-retries"]; got != "2" || removed(cr, "x-envoy-max-retries") {
		t.Errorf("x-envoy-max-retries set to %q, removed %v; want the processor's 2", got, removed(cr, "x-envoy-max-retries"))
	}
	if !removed(cr, "x-envoy-hedge-on-per-try-timeout") {
		t.Error("the client's x-envoy-hedge-on-per-try-timeout was kept")
	}
}

// Helicone-Target-URL: the origin header carries the scheme, which picks the
// plaintext or the TLS forward-proxy route in envoy/*.yaml; the host header
// is host[:port] for the forward proxy's DNS lookup and Host.
func TestTargetURLSchemeSelectsRoute(t *testing.T) {
	s, _ := newTestServer(t, func(o *Options) {
		o.AllowedTargetOrigins = []string{"http://vllm.models.svc:8000", "https://api.together.xyz"}
	})
	for _, tc := range []struct{ target, origin, host string }{
		{"http://vllm.models.svc:8000/v1", "http://vllm.models.svc:8000", "vllm.models.svc:8000"},
		{"https://api.together.xyz", "https://api.together.xyz", "api.together.xyz"},
	} {
		replies, _ := run(s, nil,
			reqHeaders(true, ":method", "GET", ":path", "/v1/models", "helicone-target-url", tc.target),
			respHeaders(true, ":status", "200"))
		cr := replies[0].GetRequestHeaders().GetResponse()
		got := setHeaders(cr)
		if got[upstreamOriginHeader] != tc.origin || got[upstreamHostHeader] != tc.host || !cr.GetClearRouteCache() {
			t.Errorf("%s: set %v, clear_route_cache %v", tc.target, got, cr.GetClearRouteCache())
		}
	}
}
