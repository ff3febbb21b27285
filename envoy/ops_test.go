package envoy_test

import (
	"net/netip"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
)

// egressBind is where each configuration takes calls: a sidecar only from
// its own pod, a gateway from the network (behind a NetworkPolicy).
var egressBind = map[string]string{
	"sidecar.yaml": "127.0.0.1:10000",
	"gateway.yaml": "0.0.0.0:10000",
}

// opsPaths are the admin paths a listener other than the egress one may
// forward: readiness and Prometheus metrics, both read-only.
var opsPaths = map[string]bool{"/ready": true, "/stats/prometheus": true}

// TestListenersAreGuarded: the egress listener binds where intended, the
// admin API stays on loopback, and any other listener can reach nothing but
// the read-only admin paths: no way around the processor, and no way to
// dump or stop Envoy from the network.
func TestListenersAreGuarded(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			admin := b.GetAdmin().GetAddress().GetSocketAddress()
			if !isLoopback(admin) {
				t.Errorf("admin listens on %s; keep it on loopback", admin.GetAddress())
			}
			want, known := egressBind[f]
			if !known {
				t.Fatalf("%s: say in egressBind where its egress listener binds", f)
			}
			for _, l := range b.GetStaticResources().GetListeners() {
				sa := l.GetAddress().GetSocketAddress()
				if l.GetName() == egressListener {
					if got := netip.AddrPortFrom(netip.MustParseAddr(sa.GetAddress()), uint16(sa.GetPortValue())).String(); got != want {
						t.Errorf("egress listener binds %s, want %s", got, want)
					}
					continue
				}
				checkOpsListener(t, b, l.GetName(), admin)
			}
		})
	}
}

func checkOpsListener(t *testing.T, b *bootstrapv3.Bootstrap, name string, admin *corev3.SocketAddress) {
	t.Helper()
	hcms := managers(t, b)[name]
	if len(hcms) == 0 {
		t.Errorf("listener %q is not HTTP; only the egress listener and ops listeners are expected", name)
	}
	for _, hcm := range hcms {
		for _, hf := range hcm.GetHttpFilters() {
			if hf.GetTypedConfig().MessageIs(&extprocv3.ExternalProcessor{}) {
				t.Errorf("listener %q: a second ext_proc listener; name it %q or merge it", name, egressListener)
			}
		}
		for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				if r.GetDirectResponse() != nil {
					continue
				}
				if path := r.GetMatch().GetPath(); !opsPaths[path] {
					t.Errorf("listener %q forwards %v; only the exact paths /ready and /stats/prometheus may be", name, r.GetMatch())
				}
				c := cluster(b, r.GetRoute().GetCluster())
				if c == nil || !onlyAt(c.GetLoadAssignment().GetEndpoints(), admin) {
					t.Errorf("listener %q routes to %q, which is not the admin API", name, r.GetRoute().GetCluster())
				}
			}
		}
	}
}

func isLoopback(sa *corev3.SocketAddress) bool {
	a, err := netip.ParseAddr(sa.GetAddress())
	return err == nil && a.IsLoopback()
}

// onlyAt says whether every endpoint is the given address.
func onlyAt(eps []*endpointv3.LocalityLbEndpoints, want *corev3.SocketAddress) bool {
	n := 0
	for _, le := range eps {
		for _, lb := range le.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			if sa.GetAddress() != want.GetAddress() || sa.GetPortValue() != want.GetPortValue() {
				return false
			}
			n++
		}
	}
	return n > 0
}
