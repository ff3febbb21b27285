package envoy_test

import (
	"slices"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate-dev/tollgate/dataplane"
)

// Two clusters per upstream: a call without retries or fallbacks must not
// open the upstream-level ext_proc stream. Upstream filters are set per
// cluster, so each upstream has a plain cluster (no upstream filters) and a
// *_attempts twin (the upstream ext_proc), and each plain route a twin just
// before it that matches the same requests when x-tollgate-attempts is
// present: the processor sets that header with clear_route_cache, and
// Envoy's router-level ext_proc clears the route cache when the reply also
// mutates headers (processor_state.cc, DecodingProcessorState::
// clearRouteCache), so the route is picked again.

func isAttemptsMatch(hm *routev3.HeaderMatcher) bool {
	return hm.GetName() == dataplane.AttemptsHeader && hm.GetPresentMatch()
}

// attemptsRoute reports whether r matches only requests with
// x-tollgate-attempts.
func attemptsRoute(r *routev3.Route) bool {
	for _, hm := range r.GetMatch().GetHeaders() {
		if isAttemptsMatch(hm) {
			return true
		}
	}
	return false
}

// plainRoutes leaves out the *_attempts routes.
func plainRoutes(routes []*routev3.Route) []*routev3.Route {
	var out []*routev3.Route
	for _, r := range routes {
		if !attemptsRoute(r) {
			out = append(out, r)
		}
	}
	return out
}

// attemptClusters are the clusters whose requests need the upstream-level
// filter: those of the *_attempts and fallback chain routes.
func attemptClusters(t *testing.T, b *bootstrapv3.Bootstrap) []*clusterv3.Cluster {
	t.Helper()
	var out []*clusterv3.Cluster
	routes := egressManager(t, b).GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
	for _, r := range routes {
		name := r.GetRoute().GetCluster()
		if name == "" || !attemptsRoute(r) && !isChainRoute(r) {
			continue
		}
		c := cluster(b, name)
		if c == nil {
			t.Fatalf("route %q: no cluster %q", r.GetName(), name)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("no route reaches a cluster with the upstream filter")
	}
	return out
}

func isChainRoute(r *routev3.Route) bool {
	hs := r.GetMatch().GetHeaders()
	return len(hs) == 1 && hs[0].GetName() == dataplane.FallbackChainHeader
}

func TestTwoClustersPerUpstream(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			hcm := egressManager(t, b)
			vh := hcm.GetRouteConfig().GetVirtualHosts()[0]
			routes := vh.GetRoutes()
			twins := 0
			for i, r := range routes {
				if r.GetRoute().GetCluster() == "" || isChainRoute(r) || attemptsRoute(r) {
					continue
				}
				plain := cluster(b, r.GetRoute().GetCluster())
				if n := len(protocolOptions(t, plain).GetHttpFilters()); n != 0 {
					t.Errorf("route %q: cluster %q has %d upstream filters: a plain call must not open the upstream-level stream", r.GetName(), plain.GetName(), n)
				}
				if !slices.Contains(r.GetRequestHeadersToRemove(), "x-envoy-attempt-count") {
					t.Errorf("route %q must remove x-envoy-attempt-count: no upstream filter drops it on its way to the provider", r.GetName())
				}
				if i == 0 || !attemptsRoute(routes[i-1]) {
					t.Errorf("route %q has no *_attempts twin just before it", r.GetName())
					continue
				}
				twin := routes[i-1]
				twins++
				checkTwinRoute(t, r, twin)
				checkTwinCluster(t, plain, cluster(b, twin.GetRoute().GetCluster()))
			}
			if twins < 4 {
				t.Errorf("%d routes with an *_attempts twin, want openai, anthropic and the two target-url routes", twins)
			}
			// Only the processor may pick the attempts routes, and the
			// header goes no further.
			early := false
			for _, m := range earlyRemovals(t, hcm) {
				early = early || m.GetRemove() == dataplane.AttemptsHeader
			}
			if !early {
				t.Errorf("a client's %s is not removed before routing", dataplane.AttemptsHeader)
			}
			if !slices.Contains(vh.GetRequestHeadersToRemove(), dataplane.AttemptsHeader) {
				t.Errorf("%s must be removed before the request goes upstream", dataplane.AttemptsHeader)
			}
			if !slices.Contains(dataplane.EarlyRemovedHeaders, dataplane.AttemptsHeader) {
				t.Errorf("the data plane's early removals lack %s", dataplane.AttemptsHeader)
			}
		})
	}
}

// checkTwinRoute: the twin matches what the plain route matches, plus the
// header, and routes it alike to its own cluster, keeping the attempt count
// for the upstream filter.
func checkTwinRoute(t *testing.T, plain, twin *routev3.Route) {
	t.Helper()
	m := proto.Clone(twin.GetMatch()).(*routev3.RouteMatch)
	var hs []*routev3.HeaderMatcher
	for _, hm := range m.GetHeaders() {
		if !isAttemptsMatch(hm) {
			hs = append(hs, hm)
		}
	}
	m.Headers = hs
	if !proto.Equal(m, plain.GetMatch()) {
		t.Errorf("route %q matches %v, want %v plus %s", twin.GetName(), twin.GetMatch(), plain.GetMatch(), dataplane.AttemptsHeader)
	}
	if twin.GetName() != plain.GetName()+"_attempts" || twin.GetRoute().GetCluster() != plain.GetRoute().GetCluster()+"_attempts" {
		t.Errorf("route %q to %q: want %s_attempts to %s_attempts", twin.GetName(), twin.GetRoute().GetCluster(), plain.GetName(), plain.GetRoute().GetCluster())
	}
	a, p := proto.Clone(twin.GetRoute()).(*routev3.RouteAction), proto.Clone(plain.GetRoute()).(*routev3.RouteAction)
	a.ClusterSpecifier, p.ClusterSpecifier = nil, nil
	if !proto.Equal(a, p) {
		t.Errorf("route %q acts unlike %q: %v, %v", twin.GetName(), plain.GetName(), a, p)
	}
	if !proto.Equal(&routev3.Route{TypedPerFilterConfig: twin.GetTypedPerFilterConfig()}, &routev3.Route{TypedPerFilterConfig: plain.GetTypedPerFilterConfig()}) {
		t.Errorf("route %q: typed_per_filter_config differs from %q", twin.GetName(), plain.GetName())
	}
	if slices.Contains(twin.GetRequestHeadersToRemove(), "x-envoy-attempt-count") {
		t.Errorf("route %q removes x-envoy-attempt-count, which its upstream filter reads", twin.GetName())
	}
}

// checkTwinCluster: the twin is the plain cluster with the upstream filters
// (TestUpstreamExtProc checks them), under its own name.
func checkTwinCluster(t *testing.T, plain, twin *clusterv3.Cluster) {
	t.Helper()
	if twin == nil {
		t.Fatalf("cluster %s_attempts missing", plain.GetName())
	}
	if len(protocolOptions(t, twin).GetHttpFilters()) == 0 {
		t.Errorf("cluster %q has no upstream filters", twin.GetName())
	}
	strip := func(c *clusterv3.Cluster) *clusterv3.Cluster {
		c = proto.Clone(c).(*clusterv3.Cluster)
		c.Name = ""
		if la := c.GetLoadAssignment(); la != nil {
			la.ClusterName = ""
		}
		po := protocolOptions(t, c)
		po.HttpFilters = nil
		a, err := anypb.New(po)
		if err != nil {
			t.Fatal(err)
		}
		c.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] = a
		return c
	}
	if !proto.Equal(strip(plain), strip(twin)) {
		t.Errorf("cluster %q differs from %q in more than its name and upstream filters", twin.GetName(), plain.GetName())
	}
}
