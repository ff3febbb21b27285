package envoy_test

import (
	"os"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	dfpclusterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dynamic_forward_proxy/v3"
	dfpfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// The processor relies on these properties of every configuration (DESIGN.md
// section 2); they are checked on the typed configuration, so formatting,
// comments or field order cannot fool the test.

func TestExtProcContract(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			managers := httpManagers(t, b)
			if len(managers) == 0 {
				t.Fatal("no http_connection_manager in any listener")
			}
			for _, hcm := range managers {
				filters := hcm.GetHttpFilters()
				if len(filters) == 0 {
					t.Fatalf("%s: no HTTP filters", hcm.GetStatPrefix())
				}
				if !filters[len(filters)-1].GetTypedConfig().MessageIs(&routerv3.Router{}) {
					t.Errorf("%s: last HTTP filter is %q, want the router", hcm.GetStatPrefix(), filters[len(filters)-1].GetName())
				}
				extProcAt, routerAt := -1, -1
				for i, hf := range filters {
					switch tc := hf.GetTypedConfig(); {
					case tc.MessageIs(&extprocv3.ExternalProcessor{}):
						if extProcAt >= 0 {
							t.Errorf("%s: more than one ext_proc filter", hcm.GetStatPrefix())
						}
						extProcAt = i
					case tc.MessageIs(&routerv3.Router{}) && routerAt < 0:
						routerAt = i
					}
				}
				if extProcAt < 0 {
					t.Fatalf("%s: no ext_proc filter", hcm.GetStatPrefix())
				}
				if extProcAt > routerAt {
					t.Errorf("%s: ext_proc (filter %d) must come before the router (filter %d)", hcm.GetStatPrefix(), extProcAt, routerAt)
				}
				ep := unpack[extprocv3.ExternalProcessor](t, filters[extProcAt].GetTypedConfig())
				checkExtProc(t, ep)
				checkGRPCCluster(t, b, ep.GetGrpcService().GetEnvoyGrpc().GetClusterName())
				checkRouteClusters(t, b, hcm)
			}
		})
	}
}

func checkExtProc(t *testing.T, ep *extprocv3.ExternalProcessor) {
	t.Helper()
	m := ep.GetProcessingMode()
	type mode struct {
		name      string
		got, want string
	}
	for _, c := range []mode{
		{"request_header_mode", m.GetRequestHeaderMode().String(), extprocv3.ProcessingMode_SEND.String()},
		{"response_header_mode", m.GetResponseHeaderMode().String(), extprocv3.ProcessingMode_SEND.String()},
		{"request_body_mode", m.GetRequestBodyMode().String(), extprocv3.ProcessingMode_BUFFERED.String()},
		{"response_body_mode", m.GetResponseBodyMode().String(), extprocv3.ProcessingMode_BUFFERED.String()},
		{"request_trailer_mode", m.GetRequestTrailerMode().String(), extprocv3.ProcessingMode_SKIP.String()},
		{"response_trailer_mode", m.GetResponseTrailerMode().String(), extprocv3.ProcessingMode_SKIP.String()},
	} {
		if c.got != c.want {
			t.Errorf("ext_proc %s = %s, want %s", c.name, c.got, c.want)
		}
	}
	if !ep.GetAllowModeOverride() {
		t.Error("ext_proc allow_mode_override must be true: the processor streams SSE responses by overriding the body mode")
	}
	if ep.GetFailureModeAllow() {
		t.Error("ext_proc failure_mode_allow must be false: limits and logging must not be skipped")
	}
	if d := ep.GetMessageTimeout().AsDuration(); d <= 0 {
		t.Error("ext_proc message_timeout must be set; Envoy's default of 200ms is too short under load")
	}
	if !ep.GetMutationRules().GetAllowEnvoy().GetValue() {
		t.Error("ext_proc mutation_rules.allow_envoy must be true: the processor sets x-envoy-* retry headers")
	}
}

// checkGRPCCluster: ext_proc is gRPC, and gRPC only runs over HTTP/2.
func checkGRPCCluster(t *testing.T, b *bootstrapv3.Bootstrap, name string) {
	t.Helper()
	c := cluster(b, name)
	if c == nil {
		t.Fatalf("ext_proc cluster %q is not defined", name)
	}
	opts, ok := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if !ok {
		t.Fatalf("cluster %q has no HttpProtocolOptions, so it speaks HTTP/1.1", name)
	}
	po := unpack[upstreamhttpv3.HttpProtocolOptions](t, opts)
	if po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Errorf("cluster %q must set explicit_http_config.http2_protocol_options for gRPC", name)
	}
}

func checkRouteClusters(t *testing.T, b *bootstrapv3.Bootstrap, hcm *hcmv3.HttpConnectionManager) {
	t.Helper()
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if name := r.GetRoute().GetCluster(); name != "" && cluster(b, name) == nil {
				t.Errorf("route %q sends to undefined cluster %q", r.GetName(), name)
			}
		}
	}
}

// TestSidecarRouting checks the routing sidecar.yaml promises the processor
// and the users: which path goes where, and the Helicone-Target-URL path.
func TestSidecarRouting(t *testing.T) {
	b := mustLoad(t, "sidecar.yaml")
	managers := httpManagers(t, b)
	if len(managers) != 1 {
		t.Fatalf("want one http_connection_manager, got %d", len(managers))
	}
	hcm := managers[0]
	vhs := hcm.GetRouteConfig().GetVirtualHosts()
	if len(vhs) != 1 {
		t.Fatalf("want one virtual host, got %d", len(vhs))
	}
	routes := vhs[0].GetRoutes()
	if len(routes) < 3 {
		t.Fatalf("want at least 3 routes, got %d", len(routes))
	}

	// First: the processor's upstream override, matched on header presence.
	first := routes[0]
	hm := first.GetMatch().GetHeaders()
	if len(hm) != 1 || hm[0].GetName() != "x-tollgate-upstream-host" || !hm[0].GetPresentMatch() {
		t.Fatalf("first route must match on the presence of x-tollgate-upstream-host, got %v", first.GetMatch())
	}
	dfp := cluster(b, first.GetRoute().GetCluster())
	if dfp.GetClusterType().GetName() != "envoy.clusters.dynamic_forward_proxy" {
		t.Fatalf("first route goes to %q, not a dynamic forward proxy cluster", first.GetRoute().GetCluster())
	}
	perRoute, ok := first.GetTypedPerFilterConfig()["envoy.filters.http.dynamic_forward_proxy"]
	if !ok || unpack[dfpfilterv3.PerRouteConfig](t, perRoute).GetHostRewriteHeader() != "x-tollgate-upstream-host" {
		t.Error("first route must rewrite the host from x-tollgate-upstream-host for the forward proxy")
	}
	removed := map[string]bool{}
	for _, h := range append(vhs[0].GetRequestHeadersToRemove(), first.GetRequestHeadersToRemove()...) {
		removed[h] = true
	}
	for _, h := range []string{"x-tollgate-upstream", "x-tollgate-upstream-host"} {
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
	clusterCache := unpack[dfpclusterv3.ClusterConfig](t, dfp.GetClusterType().GetTypedConfig()).GetDnsCacheConfig()
	if !proto.Equal(filterCache, clusterCache) {
		t.Errorf("dns_cache_config differs between filter and cluster:\n%v\n%v", filterCache, clusterCache)
	}

	// Then the providers.
	for _, r := range routes {
		if r.GetRoute().GetTimeout().AsDuration().Seconds() < 600 {
			t.Errorf("route %q timeout %v: LLM calls need 600s", r.GetName(), r.GetRoute().GetTimeout().AsDuration())
		}
	}
	anthropic, openai := routes[1], routes[len(routes)-1]
	if anthropic.GetMatch().GetPathSeparatedPrefix() != "/v1/messages" || anthropic.GetRoute().GetCluster() != "anthropic" ||
		anthropic.GetRoute().GetHostRewriteLiteral() != "api.anthropic.com" {
		t.Errorf("second route must send /v1/messages to anthropic: %v", anthropic)
	}
	if openai.GetMatch().GetPrefix() != "/" || openai.GetRoute().GetCluster() != "openai" ||
		openai.GetRoute().GetHostRewriteLiteral() != "api.openai.com" {
		t.Errorf("last route must send everything else to openai: %v", openai)
	}

	// Buffered bodies must fit: 32 MiB on the listener and every cluster.
	const minBuffer = 32 << 20
	for _, l := range b.GetStaticResources().GetListeners() {
		if l.GetPerConnectionBufferLimitBytes().GetValue() < minBuffer {
			t.Errorf("listener %q buffer limit below 32 MiB", l.GetName())
		}
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetPerConnectionBufferLimitBytes().GetValue() < minBuffer {
			t.Errorf("cluster %q buffer limit below 32 MiB", c.GetName())
		}
	}
}

func mustLoad(t *testing.T, file string) *bootstrapv3.Bootstrap {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b, err := load(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return b
}

func httpManagers(t *testing.T, b *bootstrapv3.Bootstrap) []*hcmv3.HttpConnectionManager {
	t.Helper()
	var out []*hcmv3.HttpConnectionManager
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetTypedConfig().MessageIs(&hcmv3.HttpConnectionManager{}) {
					out = append(out, unpack[hcmv3.HttpConnectionManager](t, f.GetTypedConfig()))
				}
			}
		}
	}
	return out
}

func cluster(b *bootstrapv3.Bootstrap, name string) *clusterv3.Cluster {
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == name {
			return c
		}
	}
	return nil
}

func unpack[T any, PT interface {
	*T
	proto.Message
}](t *testing.T, a *anypb.Any) PT {
	t.Helper()
	m := PT(new(T))
	if err := a.UnmarshalTo(m); err != nil {
		t.Fatalf("unpack %s: %v", a.GetTypeUrl(), err)
	}
	return m
}
