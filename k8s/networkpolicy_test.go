package k8s_test

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// destination is where a pod sends a packet. pod and namespace labels are
// set when it is a pod (peers with selectors can match it); ip always.
type destination struct {
	ip          string
	proto       corev1.Protocol
	port        int32
	podLabels   map[string]string
	nsLabels    map[string]string
	description string
}

func (d destination) String() string {
	return fmt.Sprintf("%s (%s %s:%d)", d.description, d.proto, d.ip, d.port)
}

var kubeDNSPod = struct{ pod, ns map[string]string }{
	pod: map[string]string{"k8s-app": "kube-dns"},
	ns:  map[string]string{"kubernetes.io/metadata.name": "kube-system"},
}

// egressAllowed evaluates the egress rules of the policies that select a
// pod, as the NetworkPolicy API defines them: allowed if any rule of any
// policy allows it (a rule with no peers allows every destination, one
// with no ports every port and protocol; a port's protocol defaults to TCP;
// endPort makes a range).
func egressAllowed(t *testing.T, nps []*networkingv1.NetworkPolicy, d destination) bool {
	t.Helper()
	ip := netip.MustParseAddr(d.ip)
	for _, np := range nps {
		for _, rule := range np.Spec.Egress {
			if peersMatch(t, rule.To, ip, d) && portsMatch(rule.Ports, d) {
				return true
			}
		}
	}
	return false
}

func peersMatch(t *testing.T, peers []networkingv1.NetworkPolicyPeer, ip netip.Addr, d destination) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if b := p.IPBlock; b != nil {
			if netip.MustParsePrefix(b.CIDR).Contains(ip) && !excepted(b.Except, ip) {
				return true
			}
			continue
		}
		if d.podLabels == nil {
			continue // selectors match pods only
		}
		nsOK := p.NamespaceSelector == nil || anySelector(t, p.NamespaceSelector).Matches(labels.Set(d.nsLabels))
		podOK := p.PodSelector == nil || anySelector(t, p.PodSelector).Matches(labels.Set(d.podLabels))
		if nsOK && podOK {
			return true
		}
	}
	return false
}

func excepted(except []string, ip netip.Addr) bool {
	for _, e := range except {
		if netip.MustParsePrefix(e).Contains(ip) {
			return true
		}
	}
	return false
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, d destination) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if proto != d.proto {
			continue
		}
		if p.Port == nil {
			return true
		}
		lo, hi := p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if p.Port.Type == 0 && lo <= d.port && d.port <= hi {
			return true
		}
	}
	return false
}

// policiesFor returns the NetworkPolicies of a base that select a pod with
// these labels and restrict its egress.
func policiesFor(t *testing.T, tr *tree, base string, podLabels map[string]string) []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for _, np := range of[networkingv1.NetworkPolicy](tr, base) {
		egress := false
		for _, pt := range np.Spec.PolicyTypes {
			egress = egress || pt == networkingv1.PolicyTypeEgress
		}
		if egress && anySelector(t, &np.Spec.PodSelector).Matches(labels.Set(podLabels)) {
			out = append(out, np)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no NetworkPolicy restricts the egress of pods labeled %v", base, podLabels)
	}
	return out
}

// Destinations both policies are judged on. Public addresses are
// documentation ranges standing for a provider; 169.254.20.10 is
// NodeLocal DNSCache's default address, 10.96.0.10 a typical kube-dns
// Service IP (which NodeLocal DNSCache also answers on in iptables mode:
// https://kubernetes.io/docs/tasks/administer-cluster/nodelocaldns/).
var (
	dnsPodUDP      = destination{ip: "10.244.1.7", proto: corev1.ProtocolUDP, port: 53, podLabels: kubeDNSPod.pod, nsLabels: kubeDNSPod.ns, description: "DNS at a kube-dns pod"}
	dnsPodTCP      = destination{ip: "10.244.1.7", proto: corev1.ProtocolTCP, port: 53, podLabels: kubeDNSPod.pod, nsLabels: kubeDNSPod.ns, description: "DNS over TCP at a kube-dns pod"}
	nodeLocalUDP   = destination{ip: "169.254.20.10", proto: corev1.ProtocolUDP, port: 53, description: "DNS at NodeLocal DNSCache"}
	nodeLocalTCP   = destination{ip: "169.254.20.10", proto: corev1.ProtocolTCP, port: 53, description: "DNS over TCP at NodeLocal DNSCache"}
	dnsServiceIP   = destination{ip: "10.96.0.10", proto: corev1.ProtocolUDP, port: 53, description: "DNS at the kube-dns Service IP (NodeLocal DNSCache, iptables mode)"}
	publicHTTPS    = destination{ip: "203.0.113.10", proto: corev1.ProtocolTCP, port: 443, description: "HTTPS to a public address"}
	publicQUIC     = destination{ip: "203.0.113.10", proto: corev1.ProtocolUDP, port: 443, description: "HTTP/3 (QUIC) to a public address"}
	publicHTTP     = destination{ip: "203.0.113.10", proto: corev1.ProtocolTCP, port: 80, description: "HTTP to a public address"}
	publicAltHTTPS = destination{ip: "198.51.100.20", proto: corev1.ProtocolTCP, port: 8443, description: "HTTPS on another port to a public address"}
	publicDNS      = destination{ip: "198.51.100.53", proto: corev1.ProtocolUDP, port: 53, description: "DNS to a public resolver"}
	metadata       = destination{ip: "169.254.169.254", proto: corev1.ProtocolTCP, port: 80, description: "the cloud metadata service"}
)

// TestAppNamespaceEgress: application pods reach the cluster (the gateway
// among it) and DNS, with or without NodeLocal DNSCache, and nothing on a
// public address, whatever the port or protocol.
func TestAppNamespaceEgress(t *testing.T) {
	nps := policiesFor(t, loadTree(t), "app-namespace", map[string]string{"app": "anything"})
	gateway := destination{ip: "10.96.12.34", proto: corev1.ProtocolTCP, port: 10000, description: "the gateway's Service"}
	inCluster := destination{ip: "172.20.3.4", proto: corev1.ProtocolTCP, port: 443, description: "an in-cluster HTTPS service"}
	for _, d := range []destination{gateway, inCluster, dnsPodUDP, dnsPodTCP, nodeLocalUDP, nodeLocalTCP, dnsServiceIP} {
		if !egressAllowed(t, nps, d) {
			t.Errorf("app-namespace must allow %s", d)
		}
	}
	for _, d := range []destination{publicHTTPS, publicQUIC, publicHTTP, publicAltHTTPS, publicDNS, metadata} {
		if egressAllowed(t, nps, d) {
			t.Errorf("app-namespace must refuse %s", d)
		}
	}
}

// TestGatewayEgress: the gateway reaches the providers over HTTPS, DNS
// with or without NodeLocal DNSCache, Redis and ClickHouse, and nothing
// else.
func TestGatewayEgress(t *testing.T) {
	nps := policiesFor(t, loadTree(t), "gateway", map[string]string{"app.kubernetes.io/name": "tollgate", "app.kubernetes.io/component": "gateway"})
	redis := destination{ip: "10.244.2.9", proto: corev1.ProtocolTCP, port: 6379, podLabels: map[string]string{"app": "redis"}, nsLabels: map[string]string{"kubernetes.io/metadata.name": "tollgate"}, description: "Redis"}
	for _, d := range []destination{publicHTTPS, dnsPodUDP, dnsPodTCP, nodeLocalUDP, nodeLocalTCP, dnsServiceIP, redis} {
		if !egressAllowed(t, nps, d) {
			t.Errorf("the gateway must reach %s", d)
		}
	}
	for _, d := range []destination{publicQUIC, publicHTTP, publicAltHTTPS, publicDNS, modelServer} {
		if egressAllowed(t, nps, d) {
			t.Errorf("the gateway must not reach %s", d)
		}
	}
}

// modelServer is an in-cluster vLLM behind http://vllm.models.svc:8000, a
// plain-HTTP Helicone-Target-URL origin: a pod, on the port it listens on.
var modelServer = destination{ip: "10.244.7.21", proto: corev1.ProtocolTCP, port: 8000,
	podLabels: map[string]string{"app.kubernetes.io/name": "vllm"}, nsLabels: map[string]string{"kubernetes.io/metadata.name": "models"},
	description: "an in-cluster model server (vLLM) on port 8000"}

// TestGatewayModelServerExample: the gateway's policy shuts out plain-HTTP
// model servers by default (TestGatewayEgress) and carries, commented out,
// the rule that lets one in. Uncommented, that rule is a valid egress rule
// that reaches the example vLLM and nothing else the policy refuses.
func TestGatewayModelServerExample(t *testing.T) {
	const file = "gateway/networkpolicy.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rule []string
	for _, line := range strings.Split(string(data), "\n") {
		switch body, ok := strings.CutPrefix(line, "  # "); {
		case ok && (strings.HasPrefix(body, "- to:") || len(rule) > 0 && strings.HasPrefix(body, "  ")):
			rule = append(rule, body)
		case len(rule) > 0 && strings.TrimSpace(line) != "":
			t.Fatalf("%s: text after the commented model-server rule: %q", file, line)
		}
	}
	if len(rule) == 0 {
		t.Fatalf("%s: no commented example rule (\"# - to:\") for an in-cluster model server", file)
	}
	var rules []networkingv1.NetworkPolicyEgressRule
	if err := yaml.UnmarshalStrict([]byte(strings.Join(rule, "\n")), &rules); err != nil {
		t.Fatalf("%s: the commented rule does not decode: %v\n%s", file, err, strings.Join(rule, "\n"))
	}
	example := &networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{Egress: rules}}
	if !egressAllowed(t, []*networkingv1.NetworkPolicy{example}, modelServer) {
		t.Errorf("%s: the example rule does not reach %s", file, modelServer)
	}
	elsewhere := modelServer
	elsewhere.nsLabels = map[string]string{"kubernetes.io/metadata.name": "team-a"}
	elsewhere.description = "a pod of the same name in another namespace"
	for _, d := range []destination{publicHTTP, publicAltHTTPS, publicQUIC, publicDNS, metadata, elsewhere} {
		if egressAllowed(t, []*networkingv1.NetworkPolicy{example}, d) {
			t.Errorf("%s: the example rule also opens %s", file, d)
		}
	}
}

// anySelector is a label selector where an empty one (every pod, every
// namespace) is meant.
func anySelector(t *testing.T, ls *metav1.LabelSelector) labels.Selector {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}
