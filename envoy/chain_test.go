package envoy_test

import (
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	priorityv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"

	"github.com/tollgate-dev/tollgate/dataplane"
)

// chainRoutes returns the leading fallback chain routes of a virtual host:
// the routes on dataplane.FallbackChainHeader, chains first, their
// catch-all last.
func chainRoutes(t *testing.T, routes []*routev3.Route) []*routev3.Route {
	t.Helper()
	n := 0
	for _, r := range routes {
		hs := r.GetMatch().GetHeaders()
		if len(hs) != 1 || hs[0].GetName() != dataplane.FallbackChainHeader {
			break
		}
		n++
	}
	return routes[:n]
}

// TestFallbackChainRoutes: cross-origin Helicone-Fallbacks go to a fallback
// chain route, as the local data plane models it (Config.FallbackChains).
// Envoy picks the host before the upstream filters run
// (router/upstream_request.cc: acceptHeadersFromRouter asks the connection
// pool of the chosen host, then runs the filters), so the origin of an
// attempt is the priority level Envoy picks: the chain's cluster has one
// level per attempt, one endpoint each and no health checks, and the
// virtual host's retry priority previous_priorities (update_frequency 1)
// sends retry N to level N (previous_priorities.cc). The route's header
// value names the levels' origins in order, as the processor writes them.
// A chain no route serves is a 400 (the catch-all, last).
func TestFallbackChainRoutes(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			hcm := egressManager(t, b)
			vh := hcm.GetRouteConfig().GetVirtualHosts()[0]
			rp := vh.GetRetryPolicy().GetRetryPriority()
			if rp.GetName() != "envoy.retry_priorities.previous_priorities" ||
				unpack[priorityv3.PreviousPrioritiesConfig](t, rp.GetTypedConfig()).GetUpdateFrequency() != 1 {
				t.Errorf("virtual host retry_priority %v: want previous_priorities, update_frequency 1", rp)
			}
			chains := chainRoutes(t, vh.GetRoutes())
			if len(chains) < 2 {
				t.Fatalf("want at least one fallback chain route and the catch-all first, got %d", len(chains))
			}
			last := chains[len(chains)-1]
			if !last.GetMatch().GetHeaders()[0].GetPresentMatch() || last.GetDirectResponse().GetStatus() != 400 {
				t.Errorf("the last chain route must answer any other chain with a 400: %v", last)
			}
			for _, r := range chains[:len(chains)-1] {
				value := r.GetMatch().GetHeaders()[0].GetStringMatch().GetExact()
				c := cluster(b, r.GetRoute().GetCluster())
				if c == nil || !r.GetRoute().GetAutoHostRewrite().GetValue() {
					t.Errorf("route %q: want a cluster and auto_host_rewrite (each attempt's Host is its endpoint's)", r.GetName())
					continue
				}
				if c.GetHealthChecks() != nil || c.GetOutlierDetection() != nil {
					t.Errorf("cluster %q: a level without a healthy host would pass its attempts, with their keys, to the next origin", c.GetName())
				}
				var origins []string
				for i, le := range c.GetLoadAssignment().GetEndpoints() {
					if int(le.GetPriority()) != i || len(le.GetLbEndpoints()) != 1 {
						t.Errorf("cluster %q: level %d (priority %d) has %d endpoints; want priorities 0, 1, ... with one each", c.GetName(), i, le.GetPriority(), len(le.GetLbEndpoints()))
						continue
					}
					origins = append(origins, "https://"+le.GetLbEndpoints()[0].GetEndpoint().GetHostname())
				}
				if got := strings.Join(origins, " "); got != value {
					t.Errorf("route %q matches %q, its cluster's levels are %q", r.GetName(), value, got)
				}
				if len(origins) < 2 {
					t.Errorf("cluster %q: a chain needs two levels or more", c.GetName())
				}
			}
		})
	}
}
