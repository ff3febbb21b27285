package processor

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

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
// processor removes every one of those it does not set (and only those:
// TestClientRouterHeadersRemovedEnvoysOwnKept).
func TestClientEnvoyHeadersRemoved(t *testing.T) {
	s, _ := newTestServer(t)
	replies, _ := run(s, nil,
		reqHeaders(true, ":method", "GET", ":path", "/v1/models",
			"x-envoy-max-retries", "10", "x-envoy-retry-on", "5xx", "x-envoy-upstream-rq-timeout-ms", "1"),
		respHeaders(true, ":status", "200"))
	cr := replies[0].GetRequestHeaders().GetResponse()
	for _, h := range []string{"x-envoy-max-retries", "x-envoy-retry-on", "x-envoy-upstream-rq-timeout-ms"} {
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
		reqHeaders(true, ":method", "GET", ":path", "/v1/models", "helicone-retry-enabled", "true", "helicone-retry-num", "3",
			"x-envoy-max-retries", "10", "x-envoy-hedge-on-per-try-timeout", "true"),
		respHeaders(true, ":status", "200"))
	cr := replies[0].GetRequestHeaders().GetResponse()
	// Helicone-Retry-Num 3: three attempts, two retries.
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

// "*" in the allowed target origins stands for any public https://
// provider: an http:// origin, or a host that is an internal IP literal or
// an internal-by-definition name, must be listed exactly (the gateway
// Envoy's admin port, cloud metadata, Tollgate's own API). What is listed
// exactly stays allowed.
func TestTargetURLWildcardCoversPublicHTTPSOnly(t *testing.T) {
	s, _ := newTestServer(t, func(o *Options) {
		o.AllowedTargetOrigins = []string{"*", "http://127.0.0.1:9000", "https://10.0.0.7:8443", "HTTP://[::1]:9001/"}
	})
	for _, tc := range []struct {
		target string
		allow  bool
		why    string // in the 403 message
	}{
		{"https://api.together.xyz/v1", true, ""},
		{"https://api.together.xyz:8443", true, ""},
		{"https://8.8.8.8", true, ""},
		{"https://[2606:4700::1111]", true, ""},
		{"http://127.0.0.1:9000/v1", true, ""}, // listed exactly
		{"https://10.0.0.7:8443", true, ""},
		{"http://[::1]:9001", true, ""},
		{"http://api.together.xyz", false, "https:// origins only"},
		{"http://127.0.0.1:9901/quitquitquit", false, "https:// origins only"},
		{"http://169.254.169.254/latest/meta-data/", false, "https:// origins only"},
		{"http://127.0.0.1:8080", false, "https:// origins only"},
		{"https://127.0.0.1:9901", false, "loopback"},
		{"https://127.8.9.10", false, "loopback"},
		{"https://[::1]:9901", false, "loopback"},
		{"https://[::ffff:127.0.0.1]:9901", false, "loopback"},
		{"https://169.254.169.254", false, "link-local"},
		{"https://[fe80::1]", false, "link-local"},
		{"https://[fe80::1%25eth0]", false, "link-local"},
		{"https://0.0.0.0:9901", false, "unspecified"},
		{"https://[::]:9901", false, "unspecified"},
		{"https://10.0.0.7", false, "private"},
		{"https://172.16.0.1", false, "private"},
		{"https://192.168.1.1", false, "private"},
		{"https://[fd00:ec2::254]", false, "private"},
		{"https://100.100.100.200", false, "carrier-grade NAT"},
		{"https://[64:ff9b::a9fe:a9fe]", false, "IPv4-embedding"},
		{"https://127.1", false, "non-standard form"},
		{"https://2130706433", false, "non-standard form"},
		{"https://0x7f000001", false, "non-standard form"},
		{"https://127.0.0.1.", false, "loopback"},
		{"https://localhost:9901", false, "localhost"},
		{"https://admin.localhost", false, "localhost"},
		{"https://kubernetes", false, "single-label"},
		{"https://kubernetes.default.svc", false, ".svc"},
		{"https://tollgate.tollgate.svc.cluster.local", false, ".local"},
		{"https://metadata.google.internal", false, ".internal"},
	} {
		replies, _ := run(s, nil,
			reqHeaders(true, ":method", "GET", ":path", "/v1/models", "helicone-target-url", tc.target),
			respHeaders(true, ":status", "200"))
		imm := replies[0].GetImmediateResponse()
		if tc.allow {
			if imm != nil {
				t.Errorf("%s: refused with %s, want allowed", tc.target, imm.GetBody())
			} else if got := setHeaders(replies[0].GetRequestHeaders().GetResponse())[upstreamOriginHeader]; got == "" {
				t.Errorf("%s: allowed but no upstream set", tc.target)
			}
			continue
		}
		if imm == nil || imm.GetStatus().GetCode() != 403 {
			t.Errorf("%s: got %v, want a 403", tc.target, replies[0])
			continue
		}
		msg := gjson.GetBytes(imm.GetBody(), "error.message").String()
		if !strings.Contains(msg, "Helicone-Target-URL") || !strings.Contains(msg, tc.why) ||
			gjson.GetBytes(imm.GetBody(), "error.code").String() != "target_not_allowed" {
			t.Errorf("%s: message %q, want one naming Helicone-Target-URL and %q", tc.target, msg, tc.why)
		}
	}
}

// A fallback's target-url is held to the same rule as Helicone-Target-URL.
func TestFallbackTargetURLWildcardCoversPublicHTTPSOnly(t *testing.T) {
	s, _ := newTestServer(t, func(o *Options) { o.AllowedTargetOrigins = []string{"*"} })
	replies, _ := run(s, nil,
		reqHeaders(true, ":method", "GET", ":path", "/v1/models",
			"helicone-fallbacks", `[{"target-url": "http://169.254.169.254"}]`),
		respHeaders(true, ":status", "200"))
	imm := replies[0].GetImmediateResponse()
	if imm == nil || imm.GetStatus().GetCode() != 403 ||
		!strings.Contains(gjson.GetBytes(imm.GetBody(), "error.message").String(), "https:// origins only") {
		t.Fatalf("got %v, want a 403 for the fallback's http:// target-url", replies[0])
	}
}
