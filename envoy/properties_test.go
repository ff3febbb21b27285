package envoy_test

import (
	"os"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
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

// egressListener is the listener applications send their calls to, in
// every configuration here.
const egressListener = "llm_egress"

func TestExtProcContract(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			hcm := egressManager(t, b)
			ep := routerExtProc(t, hcm)
			checkExtProc(t, ep)
			checkGRPCCluster(t, b, ep.GetGrpcService().GetEnvoyGrpc().GetClusterName())
			checkRouteClusters(t, b, hcm)
			if level := initialMetadata(ep)[filterLevelKey]; level != "" {
				t.Errorf("router-level ext_proc sends %s=%q; only the upstream level is marked", filterLevelKey, level)
			}
		})
	}
}

// routerExtProc returns the one ext_proc filter of hcm, checking that the
// router is last and ext_proc runs before it.
func routerExtProc(t *testing.T, hcm *hcmv3.HttpConnectionManager) *extprocv3.ExternalProcessor {
	t.Helper()
	filters := hcm.GetHttpFilters()
	if len(filters) == 0 {
		t.Fatalf("%s: no HTTP filters", hcm.GetStatPrefix())
	}
	routerAt := len(filters) - 1
	if !filters[routerAt].GetTypedConfig().MessageIs(&routerv3.Router{}) {
		t.Fatalf("%s: last HTTP filter is %q, want the router", hcm.GetStatPrefix(), filters[routerAt].GetName())
	}
	extProcAt := -1
	for i, hf := range filters {
		if hf.GetTypedConfig().MessageIs(&extprocv3.ExternalProcessor{}) {
			if extProcAt >= 0 {
				t.Errorf("%s: more than one ext_proc filter", hcm.GetStatPrefix())
			}
			extProcAt = i
		}
	}
	if extProcAt < 0 {
		t.Fatalf("%s: no ext_proc filter", hcm.GetStatPrefix())
	}
	return unpack[extprocv3.ExternalProcessor](t, filters[extProcAt].GetTypedConfig())
}

func checkExtProc(t *testing.T, ep *extprocv3.ExternalProcessor) {
	t.Helper()
	checkModes(t, "ext_proc", ep.GetProcessingMode(), map[string]extprocv3.ProcessingMode_HeaderSendMode{
		"request_header_mode":   extprocv3.ProcessingMode_SEND,
		"response_header_mode":  extprocv3.ProcessingMode_SEND,
		"request_trailer_mode":  extprocv3.ProcessingMode_SKIP,
		"response_trailer_mode": extprocv3.ProcessingMode_SKIP,
	}, extprocv3.ProcessingMode_BUFFERED, extprocv3.ProcessingMode_BUFFERED)
	if !ep.GetAllowModeOverride() {
		t.Error("ext_proc allow_mode_override must be true: the processor streams SSE responses by overriding the body mode")
	}
	checkCommonExtProc(t, "ext_proc", ep)
}

// checkCommonExtProc holds what both ext_proc levels share.
func checkCommonExtProc(t *testing.T, what string, ep *extprocv3.ExternalProcessor) {
	t.Helper()
	if ep.GetFailureModeAllow() {
		t.Errorf("%s failure_mode_allow must be false: limits and logging must not be skipped", what)
	}
	if d := ep.GetMessageTimeout().AsDuration(); d <= 0 {
		t.Errorf("%s message_timeout must be set; Envoy's default of 200ms is too short under load", what)
	}
	if !ep.GetMutationRules().GetAllowEnvoy().GetValue() {
		t.Errorf("%s mutation_rules.allow_envoy must be true: the processor sets x-envoy-* headers", what)
	}
}

// checkModes compares a processing mode with the wanted header and trailer
// modes (by field name) and body modes.
func checkModes(t *testing.T, what string, m *extprocv3.ProcessingMode, want map[string]extprocv3.ProcessingMode_HeaderSendMode, reqBody, respBody extprocv3.ProcessingMode_BodySendMode) {
	t.Helper()
	got := map[string]extprocv3.ProcessingMode_HeaderSendMode{
		"request_header_mode":   m.GetRequestHeaderMode(),
		"response_header_mode":  m.GetResponseHeaderMode(),
		"request_trailer_mode":  m.GetRequestTrailerMode(),
		"response_trailer_mode": m.GetResponseTrailerMode(),
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s %s = %s, want %s", what, name, got[name], w)
		}
	}
	if m.GetRequestBodyMode() != reqBody {
		t.Errorf("%s request_body_mode = %s, want %s", what, m.GetRequestBodyMode(), reqBody)
	}
	if m.GetResponseBodyMode() != respBody {
		t.Errorf("%s response_body_mode = %s, want %s", what, m.GetResponseBodyMode(), respBody)
	}
}

// checkGRPCCluster: ext_proc is gRPC, and gRPC only runs over HTTP/2.
func checkGRPCCluster(t *testing.T, b *bootstrapv3.Bootstrap, name string) {
	t.Helper()
	c := cluster(b, name)
	if c == nil {
		t.Fatalf("ext_proc cluster %q is not defined", name)
	}
	po := protocolOptions(t, c)
	if po == nil {
		t.Fatalf("cluster %q has no HttpProtocolOptions, so it speaks HTTP/1.1", name)
	}
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

// managers returns every HTTP connection manager, by listener name.
func managers(t *testing.T, b *bootstrapv3.Bootstrap) map[string][]*hcmv3.HttpConnectionManager {
	t.Helper()
	out := map[string][]*hcmv3.HttpConnectionManager{}
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetTypedConfig().MessageIs(&hcmv3.HttpConnectionManager{}) {
					out[l.GetName()] = append(out[l.GetName()], unpack[hcmv3.HttpConnectionManager](t, f.GetTypedConfig()))
				}
			}
		}
	}
	return out
}

// egressManager returns the HTTP connection manager of the egress listener.
func egressManager(t *testing.T, b *bootstrapv3.Bootstrap) *hcmv3.HttpConnectionManager {
	t.Helper()
	m := managers(t, b)[egressListener]
	if len(m) != 1 {
		t.Fatalf("listener %q: want one http_connection_manager, got %d", egressListener, len(m))
	}
	return m[0]
}

// providerClusters returns the clusters the egress routes send calls to.
func providerClusters(t *testing.T, b *bootstrapv3.Bootstrap) []*clusterv3.Cluster {
	t.Helper()
	var out []*clusterv3.Cluster
	seen := map[string]bool{}
	for _, vh := range egressManager(t, b).GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			name := r.GetRoute().GetCluster()
			if name == "" || seen[name] {
				continue
			}
			seen[name] = true
			if c := cluster(b, name); c != nil {
				out = append(out, c)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("the egress routes reach no cluster")
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

// protocolOptions returns the cluster's upstream HTTP options, nil if none.
func protocolOptions(t *testing.T, c *clusterv3.Cluster) *upstreamhttpv3.HttpProtocolOptions {
	t.Helper()
	opts, ok := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if !ok {
		return nil
	}
	return unpack[upstreamhttpv3.HttpProtocolOptions](t, opts)
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
