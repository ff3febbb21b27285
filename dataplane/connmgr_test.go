package dataplane

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// sentHeader returns the value of key in the stream's request_headers
// message, and whether it was there.
func sentHeader(t *testing.T, s *streamRec, key string) (string, bool) {
	t.Helper()
	msgs := s.messages()
	if len(msgs) == 0 || msgs[0].GetRequestHeaders() == nil {
		t.Fatal("no request_headers message")
	}
	for _, h := range msgs[0].GetRequestHeaders().GetHeaders().GetHeaders() {
		if h.GetKey() == key {
			return string(h.GetRawValue()), true
		}
	}
	return "", false
}

// The route is picked from the client's headers when the request arrives,
// before any filter: without the early removal a client's UpstreamHeader
// chooses the upstream, and a processor that changes headers without
// clear_route_cache does not undo it. This is the defect Envoy has with
// such a config; the data plane must have it too.
func TestClientUpstreamHeaderRoutesWithoutEarlyRemoval(t *testing.T) {
	evil := newUpstream(t, nil)
	h := newHarness(t, harnessOpts{script: func(req *extprocv3.ProcessingRequest) step {
		if kind(req) == "request_headers" {
			// Removes the header, but keeps the cached route.
			return step{resp: reply(req, &extprocv3.CommonResponse{HeaderMutation: mutation(nil, UpstreamHeader)})}
		}
		return continueAll(req)
	}})
	code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{}`, map[string]string{UpstreamHeader: evil.URL, "Host": "evil.example"})
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if evil.hits.Load() != 1 || h.openai.hits.Load() != 0 {
		t.Fatalf("evil got %d, openai %d: the route should be the client's choice, as in Envoy", evil.hits.Load(), h.openai.hits.Load())
	}
}

// With the early removal (what envoy/sidecar.yaml configures), the client's
// header is gone before routing and before the processor sees it.
func TestEarlyRemovalStripsClientUpstream(t *testing.T) {
	evil := newUpstream(t, nil)
	h := newHarness(t, harnessOpts{config: func(c *Config) { c.EarlyRemoveHeaders = EarlyRemovedHeaders }})
	code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{}`, map[string]string{
		UpstreamHeader: evil.URL, "X-Tollgate-Upstream-Host": "evil.example", "X-Tollgate-Link": "k",
		"X-Tollgate-Workload-Name": "admin", "X-Other": "kept",
	})
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if evil.hits.Load() != 0 || h.openai.hits.Load() != 1 {
		t.Fatalf("evil got %d, openai %d", evil.hits.Load(), h.openai.hits.Load())
	}
	s := h.stream(t)
	for _, k := range []string{UpstreamHeader, "x-tollgate-upstream-host", "x-tollgate-link", "x-tollgate-workload-name"} {
		if v, ok := sentHeader(t, s, k); ok {
			t.Errorf("processor saw %s: %q", k, v)
		}
	}
	if _, ok := sentHeader(t, s, "x-other"); !ok {
		t.Error("the early removal removed an unrelated header")
	}
}

// clear_route_cache re-picks the route only when the same reply mutates
// headers (Envoy's processor_state.cc); alone it is ignored. The headers
// reply drops the client's UpstreamHeader without clearing the cache, the
// body reply then asks for a re-pick with or without a mutation.
func TestClearRouteCacheNeedsHeaderMutation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mutation *extprocv3.HeaderMutation
		wantEvil bool
	}{
		{"flag alone is ignored", nil, true},
		{"with a mutation the route is re-picked", mutation([]*corev3.HeaderValueOption{setHdr("x-a", "1")}), false},
		{"an empty mutation counts", &extprocv3.HeaderMutation{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evil := newUpstream(t, nil)
			h := newHarness(t, harnessOpts{script: func(req *extprocv3.ProcessingRequest) step {
				switch kind(req) {
				case "request_headers":
					return step{resp: reply(req, &extprocv3.CommonResponse{HeaderMutation: mutation(nil, UpstreamHeader)})}
				case "request_body":
					return step{resp: reply(req, &extprocv3.CommonResponse{HeaderMutation: tc.mutation, ClearRouteCache: true})}
				}
				return continueAll(req)
			}})
			if code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{}`, map[string]string{UpstreamHeader: evil.URL}); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			if got := evil.hits.Load() == 1; got != tc.wantEvil {
				t.Fatalf("evil reached = %v, want %v (openai %d)", got, tc.wantEvil, h.openai.hits.Load())
			}
		})
	}
}

// A reply to the buffered body may set headers and clear the route cache
// too; the route is re-picked then.
func TestClearRouteCacheOnBodyReply(t *testing.T) {
	other := newUpstream(t, nil)
	h := newHarness(t, harnessOpts{script: func(req *extprocv3.ProcessingRequest) step {
		if kind(req) == "request_body" {
			return step{resp: reply(req, &extprocv3.CommonResponse{
				HeaderMutation:  mutation([]*corev3.HeaderValueOption{setHdr(UpstreamHeader, other.URL)}),
				ClearRouteCache: true,
			})}
		}
		return continueAll(req)
	}})
	if code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{}`, nil); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if other.hits.Load() != 1 || h.openai.hits.Load() != 0 {
		t.Fatalf("other %d, openai %d", other.hits.Load(), h.openai.hits.Load())
	}
}

var clientEnvoyHeaders = map[string]string{
	"X-Envoy-Max-Retries":            "10",
	"X-Envoy-Retry-On":               "5xx",
	"X-Envoy-Retriable-Status-Codes": "503",
	"X-Envoy-Upstream-Rq-Timeout-Ms": "1",
	"X-Envoy-Internal":               "true",
}

// An external request (nothing in InternalAddresses, Envoy's default) loses
// the x-envoy-* headers the router obeys before any filter: no retries of
// the client's, and the processor never sees them.
func TestExternalRequestLosesEnvoyHeaders(t *testing.T) {
	h := newHarness(t, harnessOpts{
		upstream: textReply(503, "down"),
		config:   func(c *Config) { c.InternalAddresses = nil; fastRetries(c) },
	})
	code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{}`, clientEnvoyHeaders)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", code)
	}
	if n := h.openai.hits.Load(); n != 1 {
		t.Fatalf("%d upstream attempts, want 1", n)
	}
	s := h.stream(t)
	for k := range clientEnvoyHeaders {
		if v, ok := sentHeader(t, s, strings.ToLower(k)); ok {
			t.Errorf("processor saw %s: %q", k, v)
		}
	}
	up := h.openai.next(t)
	for k := range clientEnvoyHeaders {
		if v := up.header.Get(k); v != "" {
			t.Errorf("upstream got %s: %q", k, v)
		}
	}
}

// A request from an internal address keeps them all (but x-envoy-internal,
// which only the connection manager sets): with no processor removing them,
// the router retries as the client asked.
func TestInternalRequestKeepsEnvoyHeaders(t *testing.T) {
	h := newHarness(t, harnessOpts{
		upstream: textReply(503, "down"),
		config: func(c *Config) {
			c.InternalAddresses = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			fastRetries(c)
		},
	})
	hdr := map[string]string{"X-Envoy-Max-Retries": "2", "X-Envoy-Retry-On": "5xx", "X-Envoy-Internal": "true"}
	if code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{}`, hdr); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", code)
	}
	if n := h.openai.hits.Load(); n != 3 {
		t.Fatalf("%d upstream attempts, want 3", n)
	}
	s := h.stream(t)
	for _, k := range []string{"x-envoy-max-retries", "x-envoy-retry-on"} {
		if _, ok := sentHeader(t, s, k); !ok {
			t.Errorf("processor did not see %s", k)
		}
	}
	if _, ok := sentHeader(t, s, "x-envoy-internal"); ok {
		t.Error("the client's x-envoy-internal reached the processor")
	}
}

// With use_remote_address the connection's scheme is the truth, not the
// client's x-forwarded-proto.
func TestForwardedProtoIsTheConnections(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if code, _, _ := h.do(t, "GET", "/v1/models", "", map[string]string{"X-Forwarded-Proto": "https"}); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if v, _ := sentHeader(t, h.stream(t), "x-forwarded-proto"); v != "http" {
		t.Fatalf("x-forwarded-proto %q, want http", v)
	}
}

// With use_remote_address the connection manager sets
// x-envoy-external-address to the peer's IP on an external request, over
// whatever the client sent, before any filter; the processor sees it, the
// provider does not (every route in envoy/ removes it). An internal
// request gets none.
func TestExternalRequestCarriesExternalAddress(t *testing.T) {
	forged := map[string]string{"X-Envoy-External-Address": "203.0.113.7"}
	h := newHarness(t, harnessOpts{config: func(c *Config) { c.InternalAddresses = nil }})
	if code, _, _ := h.do(t, "GET", "/v1/models", "", forged); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if v, ok := sentHeader(t, h.stream(t), "x-envoy-external-address"); v != "127.0.0.1" {
		t.Errorf("processor saw x-envoy-external-address %q (present %v), want the peer's 127.0.0.1", v, ok)
	}
	if v := h.openai.next(t).header.Get("x-envoy-external-address"); v != "" {
		t.Errorf("the provider got x-envoy-external-address %q", v)
	}

	in := newHarness(t, harnessOpts{config: func(c *Config) {
		c.InternalAddresses = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}})
	// (an internal request keeps what its sender put there; this one sent none)
	if code, _, _ := in.do(t, "GET", "/v1/models", "", nil); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if v, ok := sentHeader(t, in.stream(t), "x-envoy-external-address"); ok {
		t.Errorf("an internal request got x-envoy-external-address %q", v)
	}
}
