package envoy_test

import (
	"slices"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	dfpclusterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dynamic_forward_proxy/v3"
	dfpfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/policies/attempts"
)

// TestProviderRouting checks the routing every configuration promises the
// processor and the users: which path goes where, the Helicone-Target-URL
// route, and room for buffered bodies.
func TestProviderRouting(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			hcm := egressManager(t, b)
			vhs := hcm.GetRouteConfig().GetVirtualHosts()
			if len(vhs) != 1 {
				t.Fatalf("want one virtual host, got %d", len(vhs))
			}
			routes := vhs[0].GetRoutes()
			if len(routes) < 4 {
				t.Fatalf("want at least 4 routes, got %d", len(routes))
			}

			// First the fallback chain routes and their catch-all
			// (chain_test.go), then the processor's upstream override
			// (Helicone-Target-URL), one route per scheme of the origin
			// (targets_test.go).
			// Each with its *_attempts twin first (attempts_test.go).
			routes = plainRoutes(routes[len(chainRoutes(t, routes)):])
			var dfps []*clusterv3.Cluster
			for i, r := range routes[:2] {
				scheme := targetScheme(t, r)
				if scheme == "" {
					t.Fatalf("route %d (%q) must be a target-url route: %v", i, r.GetName(), r.GetMatch())
				}
				dfp := cluster(b, r.GetRoute().GetCluster())
				if dfp.GetClusterType().GetName() != "envoy.clusters.dynamic_forward_proxy" {
					t.Fatalf("route %q goes to %q, not a dynamic forward proxy cluster", r.GetName(), r.GetRoute().GetCluster())
				}
				perRoute, ok := r.GetTypedPerFilterConfig()["envoy.filters.http.dynamic_forward_proxy"]
				if !ok || unpack[dfpfilterv3.PerRouteConfig](t, perRoute).GetHostRewriteHeader() != "x-tollgate-upstream-host" {
					t.Errorf("route %q must rewrite the host from x-tollgate-upstream-host for the forward proxy", r.GetName())
				}
				dfps = append(dfps, dfp)
			}
			if targetScheme(t, routes[0]) == targetScheme(t, routes[1]) {
				t.Fatal("the two target-url routes must serve https:// and http:// origins")
			}
			first := routes[0]
			removed := map[string]bool{}
			for _, h := range append(vhs[0].GetRequestHeadersToRemove(), first.GetRequestHeadersToRemove()...) {
				removed[h] = true
			}
			for _, h := range []string{"x-tollgate-upstream", "x-tollgate-upstream-host", "x-tollgate-fallback-chain"} {
				if !removed[h] {
					t.Errorf("%s must be removed before the request goes upstream", h)
				}
			}

			// The forward proxy filter and its cluster must share one DNS cache.
			var filterCache proto.Message
			dfpAt, routerAt := -1, len(hcm.GetHttpFilters())-1
			for i, hf := range hcm.GetHttpFilters() {
				if hf.GetTypedConfig().MessageIs(&dfpfilterv3.FilterConfig{}) {
					dfpAt = i
					filterCache = unpack[dfpfilterv3.FilterConfig](t, hf.GetTypedConfig()).GetDnsCacheConfig()
				}
			}
			if dfpAt < 0 || dfpAt > routerAt {
				t.Fatal("the dynamic_forward_proxy HTTP filter must be present, before the router")
			}
			for _, dfp := range dfps {
				clusterCache := unpack[dfpclusterv3.ClusterConfig](t, dfp.GetClusterType().GetTypedConfig()).GetDnsCacheConfig()
				if !proto.Equal(filterCache, clusterCache) {
					t.Errorf("dns_cache_config differs between filter and cluster %q:\n%v\n%v", dfp.GetName(), filterCache, clusterCache)
				}
			}

			// Then the providers.
			for _, r := range routes {
				if r.GetRoute().GetTimeout().AsDuration().Seconds() < 600 {
					t.Errorf("route %q timeout %v: LLM calls need 600s", r.GetName(), r.GetRoute().GetTimeout().AsDuration())
				}
			}
			if d := hcm.GetStreamIdleTimeout().AsDuration(); d.Seconds() < 300 {
				t.Errorf("stream_idle_timeout %v: a reasoning model may be silent for minutes", d)
			}
			// request_timeout covers receiving the request only (Envoy
			// disarms it once the request is in): it must be on, or a client
			// dripping its body holds a stream for good, and it is the local
			// data plane's default.
			if d, on := duration(hcm.GetRequestTimeout(), 0); !on || d != dataplane.DefaultRequestTimeout {
				t.Errorf("request_timeout %v: want %v, as the local data plane", d, dataplane.DefaultRequestTimeout)
			}
			if kb := hcm.GetMaxRequestHeadersKb(); kb == nil || kb.GetValue() != dataplane.DefaultMaxRequestHeadersKB {
				t.Errorf("max_request_headers_kb %v: want %d written out, as the local data plane", kb, dataplane.DefaultMaxRequestHeadersKB)
			}
			if n := hcm.GetCommonHttpProtocolOptions().GetMaxHeadersCount(); n == nil || n.GetValue() != dataplane.DefaultMaxHeadersCount {
				t.Errorf("common_http_protocol_options.max_headers_count %v: want %d written out, as the local data plane", n, dataplane.DefaultMaxHeadersCount)
			}
			anthropic, openai := routes[2], routes[len(routes)-1]
			if anthropic.GetMatch().GetPathSeparatedPrefix() != "/v1/messages" || anthropic.GetRoute().GetCluster() != "anthropic" ||
				anthropic.GetRoute().GetHostRewriteLiteral() != "api.anthropic.com" {
				t.Errorf("third route must send /v1/messages to anthropic: %v", anthropic)
			}
			if openai.GetMatch().GetPrefix() != "/" || openai.GetRoute().GetCluster() != "openai" ||
				openai.GetRoute().GetHostRewriteLiteral() != "api.openai.com" {
				t.Errorf("last route must send everything else to openai: %v", openai)
			}

			// Buffered bodies must fit: 32 MiB on the listener and on every
			// cluster a body travels through.
			const minBuffer = 32 << 20
			for _, l := range b.GetStaticResources().GetListeners() {
				if l.GetName() == egressListener && l.GetPerConnectionBufferLimitBytes().GetValue() < minBuffer {
					t.Errorf("listener %q buffer limit below 32 MiB", l.GetName())
				}
			}
			ep := routerExtProc(t, hcm)
			bodyClusters := append(providerClusters(t, b), cluster(b, ep.GetGrpcService().GetEnvoyGrpc().GetClusterName()))
			for _, c := range bodyClusters {
				if c.GetPerConnectionBufferLimitBytes().GetValue() < minBuffer {
					t.Errorf("cluster %q buffer limit below 32 MiB", c.GetName())
				}
			}
		})
	}
}

// TestRetryBackOff: Envoy does the retrying the processor asks for; the
// route sets how long it waits (DESIGN.md section 4, retries).
func TestRetryBackOff(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			for _, vh := range egressManager(t, b).GetRouteConfig().GetVirtualHosts() {
				rp := vh.GetRetryPolicy()
				if base := rp.GetRetryBackOff().GetBaseInterval().AsDuration(); base.Seconds() != 1 {
					t.Errorf("virtual host %q: retry back-off base %v, want 1s", vh.GetName(), base)
				}
				if maxi := rp.GetRetryBackOff().GetMaxInterval().AsDuration(); maxi.Seconds() != 10 {
					t.Errorf("virtual host %q: retry back-off max %v, want 10s", vh.GetName(), maxi)
				}
				// The wait the upstream-level processor sets for Helicone's
				// back-off first, then a provider's Retry-After; the data
				// plane reads the same list, and the processor sets no wait
				// above max_interval (Envoy would skip it).
				rl := rp.GetRateLimitedRetryBackOff()
				var names []string
				for _, h := range rl.GetResetHeaders() {
					names = append(names, h.GetName())
				}
				if want := []string{attempts.BackOffHeader, "retry-after"}; !slices.Equal(names, want) {
					t.Errorf("virtual host %q: reset headers %v, want %v", vh.GetName(), names, want)
				}
				if !slices.Equal(names, dataplane.DefaultRateLimitedResetHeaders) {
					t.Errorf("virtual host %q: reset headers %v, the data plane reads %v", vh.GetName(), names, dataplane.DefaultRateLimitedResetHeaders)
				}
				maxi := rl.GetMaxInterval().AsDuration()
				if maxi != attempts.MaxBackOff {
					t.Errorf("virtual host %q: rate-limited max interval %v, the processor's cap is %v", vh.GetName(), maxi, attempts.MaxBackOff)
				}
				if maxi != dataplane.DefaultRateLimitedRetryMaxInterval {
					t.Errorf("virtual host %q: rate-limited max interval %v, the data plane's is %v", vh.GetName(), maxi, dataplane.DefaultRateLimitedRetryMaxInterval)
				}
				if rp.GetNumRetries() != nil || rp.GetRetryOn() != "" {
					t.Errorf("virtual host %q: retries are per request (the processor's headers), not for every call", vh.GetName())
				}
			}
		})
	}
}
