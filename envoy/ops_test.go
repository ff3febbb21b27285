package envoy_test

import (
	"net/netip"
	"path"
	"strings"
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

// adminOnPipe says where each configuration's admin API listens: a
// sidecar's on a Unix socket, since the application shares its pod's
// loopback and the admin API stops, drains and reconfigures Envoy; the
// gateway's on loopback, which no untrusted container shares (a pod of its
// own: Envoy and Tollgate only).
var adminOnPipe = map[string]bool{
	"sidecar.yaml": true,
	"gateway.yaml": false,
}

// TestListenersAreGuarded: the egress listener binds where intended, the
// admin API is out of reach of whatever shares Envoy's network namespace,
// and any other listener can reach nothing but the read-only admin paths:
// no way around the processor, and no way to dump or stop Envoy from the
// network or from the application's container.
func TestListenersAreGuarded(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			admin := b.GetAdmin().GetAddress()
			onPipe, known := adminOnPipe[f]
			if !known {
				t.Fatalf("%s: say in adminOnPipe where its admin API listens", f)
			}
			if onPipe {
				checkAdminPipe(t, b, admin.GetPipe())
			} else if !isLoopback(admin.GetSocketAddress()) {
				t.Errorf("admin listens on %v; keep it on loopback", admin)
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
			// Only the ops listeners' cluster leads to the admin API.
			for _, c := range b.GetStaticResources().GetClusters() {
				if c.GetName() != adminCluster && reaches(c.GetLoadAssignment().GetEndpoints(), admin) {
					t.Errorf("cluster %q reaches the admin API; only %q may", c.GetName(), adminCluster)
				}
			}
		})
	}
}

// adminCluster is the cluster the ops listeners forward to.
const adminCluster = "envoy_admin"

// checkAdminPipe: the admin socket is a file (an abstract socket, @name,
// belongs to the network namespace, like a loopback port), readable and
// writable by its owner only, and not in the ext_proc socket's directory,
// which the processor's container mounts too.
func checkAdminPipe(t *testing.T, b *bootstrapv3.Bootstrap, p *corev3.Pipe) {
	t.Helper()
	if p == nil {
		t.Errorf("admin listens on %v; want a Unix socket (admin: address: pipe), which the application sharing the pod's loopback cannot reach", b.GetAdmin().GetAddress())
		return
	}
	if !strings.HasPrefix(p.GetPath(), "/") {
		t.Errorf("admin socket %q: want an absolute file path; an abstract socket is reachable from the whole network namespace", p.GetPath())
	}
	if m := p.GetMode(); m == 0 || m&0o077 != 0 {
		t.Errorf("admin socket mode %#o: want it set, owner only (0600)", m)
	}
	dir := path.Dir(p.GetPath())
	for _, c := range b.GetStaticResources().GetClusters() {
		for _, le := range c.GetLoadAssignment().GetEndpoints() {
			for _, lb := range le.GetLbEndpoints() {
				if other := lb.GetEndpoint().GetAddress().GetPipe(); other != nil && c.GetName() != adminCluster && path.Dir(other.GetPath()) == dir {
					t.Errorf("admin socket %s shares its directory with cluster %q's socket %s: another container mounts that one", p.GetPath(), c.GetName(), other.GetPath())
				}
			}
		}
	}
}

func checkOpsListener(t *testing.T, b *bootstrapv3.Bootstrap, name string, admin *corev3.Address) {
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
					t.Errorf("listener %q routes to %q, which is not the admin API at %v", name, r.GetRoute().GetCluster(), admin)
				}
			}
		}
	}
}

func isLoopback(sa *corev3.SocketAddress) bool {
	a, err := netip.ParseAddr(sa.GetAddress())
	return err == nil && a.IsLoopback()
}

// sameAddress compares two addresses as Envoy connects to them: a pipe by
// path, a socket address by host and port.
func sameAddress(a, b *corev3.Address) bool {
	if pa, pb := a.GetPipe(), b.GetPipe(); pa != nil || pb != nil {
		return pa != nil && pb != nil && pa.GetPath() == pb.GetPath()
	}
	sa, sb := a.GetSocketAddress(), b.GetSocketAddress()
	return sa != nil && sb != nil && sa.GetAddress() == sb.GetAddress() && sa.GetPortValue() == sb.GetPortValue()
}

// onlyAt says whether every endpoint is the given address.
func onlyAt(eps []*endpointv3.LocalityLbEndpoints, want *corev3.Address) bool {
	n := 0
	for _, le := range eps {
		for _, lb := range le.GetLbEndpoints() {
			if !sameAddress(lb.GetEndpoint().GetAddress(), want) {
				return false
			}
			n++
		}
	}
	return n > 0
}

// reaches says whether any endpoint is the given address.
func reaches(eps []*endpointv3.LocalityLbEndpoints, want *corev3.Address) bool {
	for _, le := range eps {
		for _, lb := range le.GetLbEndpoints() {
			if sameAddress(lb.GetEndpoint().GetAddress(), want) {
				return true
			}
		}
	}
	return false
}
