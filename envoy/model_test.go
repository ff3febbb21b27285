package envoy_test

import (
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
)

// TestConfigsStayInsideTheDataPlaneModel: the local data plane (dataplane/)
// leaves out Envoy features that Tollgate's configurations do not use, and
// its documentation ("Where it still differs from Envoy") says so. This test
// is what keeps that true: a configuration that starts using one of them
// must first teach the data plane, or tests would pass on a model that no
// longer matches production.
func TestConfigsStayInsideTheDataPlaneModel(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			hcm := egressManager(t, b)

			// The connection manager: early mutations only remove headers.
			for _, m := range earlyRemovals(t, hcm) {
				if m.GetRemove() == "" && m.GetRemoveOnMatch() == nil {
					t.Errorf("early header mutation %v: the data plane models removals only", m)
				}
			}
			if !hcm.GetSkipXffAppend() {
				t.Error("skip_xff_append must be true: the data plane does not append X-Forwarded-For")
			}

			checkModelledExtProc(t, "router-level ext_proc", routerExtProc(t, hcm))
			for _, c := range providerClusters(t, b) {
				for _, hf := range protocolOptions(t, c).GetHttpFilters() {
					if tc := hf.GetTypedConfig(); tc.MessageIs(&extprocv3.ExternalProcessor{}) {
						checkModelledExtProc(t, "cluster "+c.GetName()+" upstream ext_proc", unpack[extprocv3.ExternalProcessor](t, tc))
					}
				}
			}

			filters := hcm.GetHttpFilters()
			router := unpack[routerv3.Router](t, filters[len(filters)-1].GetTypedConfig())
			if !router.GetSuppressEnvoyHeaders() {
				t.Error("router suppress_envoy_headers must be true: the data plane adds no x-envoy-* headers to requests or responses")
			}

			for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
				// The data plane's router models the retry priority
				// previous_priorities (chain_test.go), no host predicate.
				if len(vh.GetRetryPolicy().GetRetryHostPredicate()) != 0 || vh.GetRetryPolicy().GetHostSelectionRetryMaxAttempts() != 0 {
					t.Errorf("virtual host %q: retry host predicates are not modelled", vh.GetName())
				}
				for _, h := range vh.GetRetryPolicy().GetRateLimitedRetryBackOff().GetResetHeaders() {
					if h.GetFormat() != routev3.RetryPolicy_SECONDS {
						t.Errorf("virtual host %q: reset header %s has format %s; the data plane reads SECONDS only", vh.GetName(), h.GetName(), h.GetFormat())
					}
				}
				for _, r := range vh.GetRoutes() {
					if pr := r.GetRoute().GetRetryPolicy(); pr != nil {
						t.Errorf("route %q has a retry policy of its own; the data plane applies the virtual host's", r.GetName())
					}
					if r.GetRoute().GetHedgePolicy() != nil || vh.GetHedgePolicy() != nil || vh.GetRetryPolicy().GetPerTryTimeout() != nil {
						t.Errorf("route %q: per-try timeouts and hedging are not modelled", r.GetName())
					}
					if _, ok := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_proc"]; ok {
						t.Errorf("route %q: per-route ext_proc settings are not modelled; every request meets the processor", r.GetName())
					}
				}
				if _, ok := vh.GetTypedPerFilterConfig()["envoy.filters.http.ext_proc"]; ok {
					t.Errorf("virtual host %q: per-route ext_proc settings are not modelled", vh.GetName())
				}
			}
		})
	}
}

// checkModelledExtProc: the ext_proc settings the data plane does not model
// stay at their defaults. Two of them the processor relies on besides: the
// SSE override (response body STREAMED, response trailers SEND) must not be
// refused by allowed_override_modes, and Helicone-Target-URL needs
// clear_route_cache to re-pick the route.
func checkModelledExtProc(t *testing.T, what string, ep *extprocv3.ExternalProcessor) {
	t.Helper()
	if len(ep.GetAllowedOverrideModes()) != 0 {
		t.Errorf("%s: allowed_override_modes would refuse the processor's mode overrides", what)
	}
	if ep.GetDisableClearRouteCache() || ep.GetRouteCacheAction() != extprocv3.ExternalProcessor_DEFAULT {
		t.Errorf("%s: route cache handling must be the default (clear_route_cache honoured with a header mutation)", what)
	}
	if len(ep.GetRequestAttributes()) != 0 || len(ep.GetResponseAttributes()) != 0 {
		t.Errorf("%s: attributes are not modelled", what)
	}
	// Untyped dynamic metadata, received and forwarded by namespace, is
	// modelled (dataplane Config.ReceivingNamespaces, ForwardingNamespaces);
	// typed metadata and cluster metadata are not.
	if mo := ep.GetMetadataOptions(); len(mo.GetForwardingNamespaces().GetTyped()) != 0 ||
		len(mo.GetReceivingNamespaces().GetTyped()) != 0 || mo.GetClusterMetadataForwardingNamespaces() != nil {
		t.Errorf("%s: typed and cluster metadata forwarding are not modelled", what)
	}
	if ep.GetObservabilityMode() || ep.GetSendBodyWithoutWaitingForHeaderResponse() {
		t.Errorf("%s: observability mode and early body sending are not modelled", what)
	}
	if ep.GetMaxMessageTimeout() != nil {
		t.Errorf("%s: max_message_timeout is not modelled (override_message_timeout is dropped)", what)
	}
}
