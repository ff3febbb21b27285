package envoy_test

import (
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
)

// The upstream-level ext_proc (DESIGN.md section 4, fallback) runs once per
// attempt on every cluster a *_attempts or fallback chain route reaches
// (attempts_test.go). Its contract with the processor: the
// gRPC stream carries x-tollgate-filter-level: upstream, and the attempt
// carries x-envoy-attempt-count and the x-tollgate-link header the
// router-level stream set.
const (
	filterLevelKey = "x-tollgate-filter-level"
	linkHeader     = "x-tollgate-link"
)

func TestUpstreamExtProc(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			hcm := egressManager(t, b)
			routerLevel := routerExtProc(t, hcm)
			for _, c := range attemptClusters(t, b) {
				po := protocolOptions(t, c)
				filters := po.GetHttpFilters()
				if len(filters) != 2 || !filters[0].GetTypedConfig().MessageIs(&extprocv3.ExternalProcessor{}) {
					t.Errorf("cluster %q: upstream http_filters must be [ext_proc, upstream_codec], got %d filters", c.GetName(), len(filters))
					continue
				}
				ep := unpack[extprocv3.ExternalProcessor](t, filters[0].GetTypedConfig())
				what := "cluster " + c.GetName() + " upstream ext_proc"
				if got, want := ep.GetGrpcService().GetEnvoyGrpc().GetClusterName(), routerLevel.GetGrpcService().GetEnvoyGrpc().GetClusterName(); got != want {
					t.Errorf("%s talks to cluster %q, want the router level's %q", what, got, want)
				}
				if level := initialMetadata(ep)[filterLevelKey]; level != "upstream" {
					t.Errorf("%s: initial_metadata %s = %q, want \"upstream\"", what, filterLevelKey, level)
				}
				checkModes(t, what, ep.GetProcessingMode(), map[string]extprocv3.ProcessingMode_HeaderSendMode{
					"request_header_mode":   extprocv3.ProcessingMode_SEND,
					"response_header_mode":  extprocv3.ProcessingMode_SKIP,
					"request_trailer_mode":  extprocv3.ProcessingMode_SKIP,
					"response_trailer_mode": extprocv3.ProcessingMode_SKIP,
				}, extprocv3.ProcessingMode_NONE, extprocv3.ProcessingMode_NONE)
				if !ep.GetAllowModeOverride() {
					t.Errorf("%s: allow_mode_override must be true: the processor asks for response headers when a call has fallbacks", what)
				}
				checkCommonExtProc(t, what, ep)
			}
		})
	}
}

// TestUpstreamCodecLast: Envoy rejects a cluster whose upstream filters do
// not end with the codec, at start-up rather than in validation.
func TestUpstreamCodecLast(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			for _, c := range b.GetStaticResources().GetClusters() {
				filters := protocolOptions(t, c).GetHttpFilters()
				for i, hf := range filters {
					isCodec := hf.GetTypedConfig().MessageIs(&upstreamcodecv3.UpstreamCodec{})
					if last := i == len(filters)-1; isCodec != last {
						t.Errorf("cluster %q: upstream filter %d (%s): the upstream codec must be last and only last", c.GetName(), i, hf.GetName())
					}
				}
			}
		})
	}
}

// TestAttemptsAreVisible: the upstream-level processor must see which
// attempt it handles and which call it belongs to.
func TestAttemptsAreVisible(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			for _, vh := range egressManager(t, b).GetRouteConfig().GetVirtualHosts() {
				if !vh.GetIncludeRequestAttemptCount() {
					t.Errorf("virtual host %q: include_request_attempt_count must be true", vh.GetName())
				}
				// Route-level removal happens before the upstream filters
				// run, which would hide the link from the processor.
				removed := vh.GetRequestHeadersToRemove()
				for _, r := range vh.GetRoutes() {
					removed = append(removed, r.GetRequestHeadersToRemove()...)
				}
				for _, h := range removed {
					if h == linkHeader {
						t.Errorf("virtual host %q removes %s before the upstream ext_proc can read it", vh.GetName(), linkHeader)
					}
				}
			}
		})
	}
}

func initialMetadata(ep *extprocv3.ExternalProcessor) map[string]string {
	out := map[string]string{}
	for _, h := range ep.GetGrpcService().GetInitialMetadata() {
		out[h.GetKey()] = h.GetValue()
	}
	return out
}
