package envoy_test

import (
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	dfpclusterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dynamic_forward_proxy/v3"
	"google.golang.org/protobuf/proto"
)

// targetScheme returns "https" or "http" when r is a Helicone-Target-URL
// route: it matches on the presence of x-tollgate-upstream-host (the host
// the forward proxy resolves) and on the scheme that starts
// x-tollgate-upstream (the origin), both set only by the processor. ""
// for any other route.
func targetScheme(t *testing.T, r *routev3.Route) string {
	t.Helper()
	host, scheme, n := false, "", 0
	for _, hm := range r.GetMatch().GetHeaders() {
		n++
		switch {
		case isAttemptsMatch(hm):
			n-- // the *_attempts twin (attempts_test.go)
		case hm.GetName() == "x-tollgate-upstream-host" && hm.GetPresentMatch():
			host = true
		case hm.GetName() == "x-tollgate-upstream" && hm.GetStringMatch().GetPrefix() == "https://":
			scheme = "https"
		case hm.GetName() == "x-tollgate-upstream" && hm.GetStringMatch().GetPrefix() == "http://":
			scheme = "http"
		}
	}
	if !host || n != 2 || r.GetMatch().GetPrefix() != "/" {
		return ""
	}
	return scheme
}

// plaintextClusters names the clusters that only http:// target-url routes
// reach: the one place a call may leave without TLS.
func plaintextClusters(t *testing.T, b *bootstrapv3.Bootstrap) map[string]bool {
	t.Helper()
	plain, other := map[string]bool{}, map[string]bool{}
	for _, vh := range egressManager(t, b).GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if targetScheme(t, r) == "http" {
				plain[r.GetRoute().GetCluster()] = true
			} else {
				other[r.GetRoute().GetCluster()] = true
			}
		}
	}
	for name := range plain {
		if other[name] {
			t.Errorf("cluster %q is reached by http:// origins and by other routes", name)
			delete(plain, name)
		}
	}
	return plain
}

// TestPlainHTTPTargetOrigins: an http:// Helicone-Target-URL origin (a model
// server inside the cluster) is reached over plain HTTP, an https:// one
// over verified TLS; both through the forward proxy with the upstream-level
// filter that rewrites each attempt on their *_attempts routes.
func TestPlainHTTPTargetOrigins(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			routes := egressManager(t, b).GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
			byScheme := map[string]*routev3.Route{}
			for _, r := range routes {
				if s := targetScheme(t, r); s != "" && attemptsRoute(r) {
					if byScheme[s] != nil {
						t.Fatalf("two %s target-url routes", s)
					}
					byScheme[s] = r
				}
			}
			if byScheme["http"] == nil || byScheme["https"] == nil {
				t.Fatalf("want one target-url route for https:// and one for http:// origins, got %v", byScheme)
			}
			plain := cluster(b, byScheme["http"].GetRoute().GetCluster())
			tls := cluster(b, byScheme["https"].GetRoute().GetCluster())
			if plain == nil || tls == nil || plain == tls {
				t.Fatal("the two target-url routes must use two defined clusters")
			}
			if plain.GetTransportSocket() != nil {
				t.Errorf("cluster %q for http:// origins has a transport socket: the origin speaks plain HTTP", plain.GetName())
			}
			if tls.GetTransportSocket() == nil {
				t.Errorf("cluster %q for https:// origins has no TLS", tls.GetName())
			}
			if !plaintextClusters(t, b)[plain.GetName()] {
				t.Errorf("cluster %q must be reached by http:// origins only", plain.GetName())
			}
			cc := unpack[dfpclusterv3.ClusterConfig](t, plain.GetClusterType().GetTypedConfig())
			// Envoy refuses a forward-proxy cluster with protocol options but
			// without auto_sni/auto_san_validation unless told that it is
			// meant (source/extensions/clusters/dynamic_forward_proxy/cluster.cc).
			if !cc.GetAllowInsecureClusterOptions() {
				t.Error("the plaintext forward-proxy cluster needs allow_insecure_cluster_options")
			}
			pf, tf := protocolOptions(t, plain).GetHttpFilters(), protocolOptions(t, tls).GetHttpFilters()
			if len(pf) == 0 || len(pf) != len(tf) {
				t.Fatalf("upstream filters: plaintext %d, TLS %d; the attempt filter must run for both", len(pf), len(tf))
			}
			for i := range pf {
				if !proto.Equal(pf[i], tf[i]) {
					t.Errorf("upstream filter %d differs between %q and %q", i, plain.GetName(), tls.GetName())
				}
			}
		})
	}
}
