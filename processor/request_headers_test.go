package processor

import (
	"context"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// The request headers of a call as Envoy sends them with use_remote_address:
// x-envoy-external-address is Envoy's own, on every external request.
func envoyRequestHeaders(extra ...string) *extprocv3.HttpHeaders {
	kv := append([]string{
		":authority", "127.0.0.1:10000", ":method", "POST", ":path", "/v1/chat/completions", ":scheme", "http",
		"authorization", "Bearer sk-test", "content-type", "application/json", "user-agent", "OpenAI/Python 1.50.0",
		"x-forwarded-proto", "http", "x-request-id", "5f0c1f0e-5d3c-4bd4-9a4e-3f0b7f3b8f11",
	}, extra...)
	return &extprocv3.HttpHeaders{Headers: headerMap(kv...)}
}

// Only the x-envoy-* headers Envoy's router obeys are a client's to lose;
// Envoy's own (x-envoy-external-address) and any other x-envoy-* header
// reach the provider as Envoy left them.
func TestClientRouterHeadersRemovedEnvoysOwnKept(t *testing.T) {
	s, _ := newTestServer(t)
	replies, _ := run(s, nil,
		reqHeaders(true, ":method", "GET", ":path", "/v1/models",
			"x-envoy-external-address", "203.0.113.7", "x-envoy-peer-metadata-id", "sidecar~10.0.0.1~app",
			"x-envoy-max-retries", "10", "x-envoy-retry-on", "5xx", "x-envoy-upstream-rq-timeout-ms", "1",
			"x-envoy-hedge-on-per-try-timeout", "true", "x-envoy-original-url", "http://x/"),
		respHeaders(true, ":status", "200"))
	cr := replies[0].GetRequestHeaders().GetResponse()
	for _, h := range []string{"x-envoy-max-retries", "x-envoy-retry-on", "x-envoy-upstream-rq-timeout-ms",
		"x-envoy-hedge-on-per-try-timeout", "x-envoy-original-url"} {
		if !removed(cr, h) {
			t.Errorf("the client's %s was kept", h)
		}
	}
	for _, h := range []string{"x-envoy-external-address", "x-envoy-peer-metadata-id"} {
		if removed(cr, h) {
			t.Errorf("%s, set by Envoy (or Istio), was removed", h)
		}
	}
	if cr.GetClearRouteCache() {
		t.Error("router headers do not pick the route: no clear_route_cache")
	}
}

// Envoy adds x-envoy-external-address to every external request: it must
// cost the request-headers phase nothing.
func TestEnvoysExternalAddressCostsNoAllocation(t *testing.T) {
	s, _ := newTestServer(t)
	plain, withAddr := envoyRequestHeaders(), envoyRequestHeaders("x-envoy-external-address", "203.0.113.7")
	allocs := func(h *extprocv3.HttpHeaders) float64 {
		return testing.AllocsPerRun(200, func() { s.onRequestHeaders(s.newCall(context.Background()), h) })
	}
	a, b := allocs(plain), allocs(withAddr)
	if b != a {
		t.Fatalf("request headers: %v allocations, %v with x-envoy-external-address; want no difference", a, b)
	}
	if reply := s.onRequestHeaders(s.newCall(context.Background()), withAddr); removed(reply.GetRequestHeaders().GetResponse(), "x-envoy-external-address") {
		t.Fatal("x-envoy-external-address removed")
	}
}

func BenchmarkRequestHeaders(b *testing.B) {
	s := New(Options{})
	for _, bc := range []struct {
		name string
		h    *extprocv3.HttpHeaders
	}{
		{"plain", envoyRequestHeaders()},
		{"external-address", envoyRequestHeaders("x-envoy-external-address", "203.0.113.7")},
		{"client-retry-headers", envoyRequestHeaders("x-envoy-external-address", "203.0.113.7", "x-envoy-max-retries", "10")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := s.newCall(context.Background())
				s.onRequestHeaders(c, bc.h)
				releaseCall(c) // as Process does: calls are pooled
			}
		})
	}
}
