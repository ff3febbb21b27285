package envoy_test

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// caBundle is where Envoy's image (Debian/Ubuntu based) keeps the system
// trust store.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// TestProvidersOverVerifiedTLS: every call leaves over TLS, and Envoy checks
// both the chain and the name; only an http:// origin the operator allowed
// is reached without. Envoy checks neither by default.
func TestProvidersOverVerifiedTLS(t *testing.T) {
	for _, f := range configFiles(t) {
		t.Run(f, func(t *testing.T) {
			b := mustLoad(t, f)
			plain := plaintextClusters(t, b)
			for _, c := range providerClusters(t, b) {
				if plain[c.GetName()] {
					continue // http:// target origins (targets_test.go)
				}
				ts := c.GetTransportSocket()
				if ts.GetName() != "envoy.transport_sockets.tls" || !ts.GetTypedConfig().MessageIs(&tlsv3.UpstreamTlsContext{}) {
					t.Errorf("cluster %q: no TLS transport socket", c.GetName())
					continue
				}
				tc := unpack[tlsv3.UpstreamTlsContext](t, ts.GetTypedConfig())
				vc := tc.GetCommonTlsContext().GetValidationContext()
				if got := vc.GetTrustedCa().GetFilename(); got != caBundle {
					t.Errorf("cluster %q: trusted_ca %q, want %s", c.GetName(), got, caBundle)
				}
				if vc.GetTrustChainVerification() != tlsv3.CertificateValidationContext_VERIFY_TRUST_CHAIN {
					t.Errorf("cluster %q: the certificate chain must be verified", c.GetName())
				}
				if c.GetClusterType().GetName() == "envoy.clusters.dynamic_forward_proxy" {
					checkPerOriginTLS(t, c)
					continue
				}
				if len(c.GetTransportSocketMatches()) > 0 {
					checkPerEndpointTLS(t, c, tc)
					continue
				}
				checkFixedHostTLS(t, c, tc)
			}
		})
	}
}

// checkPerOriginTLS: the forward proxy reaches many origins, so SNI and the
// name check follow the Host of each request.
func checkPerOriginTLS(t *testing.T, c *clusterv3.Cluster) {
	t.Helper()
	uo := protocolOptions(t, c).GetUpstreamHttpProtocolOptions()
	if !uo.GetAutoSni() || !uo.GetAutoSanValidation() {
		t.Errorf("cluster %q: a forward proxy cluster needs auto_sni and auto_san_validation", c.GetName())
	}
}

// checkFixedHostTLS: a provider cluster names its host; SNI and the
// certificate's name must be that host, on port 443.
func checkFixedHostTLS(t *testing.T, c *clusterv3.Cluster, tc *tlsv3.UpstreamTlsContext) {
	t.Helper()
	var hosts []string
	for _, le := range c.GetLoadAssignment().GetEndpoints() {
		for _, lb := range le.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			if sa.GetPortValue() != 443 {
				t.Errorf("cluster %q: endpoint %s port %d, want 443", c.GetName(), sa.GetAddress(), sa.GetPortValue())
			}
			hosts = append(hosts, sa.GetAddress())
		}
	}
	if len(hosts) != 1 {
		t.Fatalf("cluster %q: want one provider host, got %v", c.GetName(), hosts)
	}
	host := hosts[0]
	if tc.GetSni() != host {
		t.Errorf("cluster %q: sni %q, want %q", c.GetName(), tc.GetSni(), host)
	}
	sans := tc.GetCommonTlsContext().GetValidationContext().GetMatchTypedSubjectAltNames()
	matched := false
	for _, san := range sans {
		matched = matched || (san.GetSanType() == tlsv3.SubjectAltNameMatcher_DNS && san.GetMatcher().GetExact() == host)
	}
	if len(sans) != 1 || !matched {
		t.Errorf("cluster %q: the certificate must be checked for exactly the DNS name %q, got %v", c.GetName(), host, sans)
	}
}

// checkPerEndpointTLS: a fallback chain cluster reaches one origin per
// priority level; each endpoint's metadata picks a transport socket whose
// SNI and name check are that endpoint's host, and the cluster's own socket,
// for an endpoint that matched none, accepts no certificate.
func checkPerEndpointTLS(t *testing.T, c *clusterv3.Cluster, fallback *tlsv3.UpstreamTlsContext) {
	t.Helper()
	if sans := fallback.GetCommonTlsContext().GetValidationContext().GetMatchTypedSubjectAltNames(); len(sans) != 1 ||
		!strings.HasSuffix(sans[0].GetMatcher().GetExact(), ".invalid") {
		t.Errorf("cluster %q: the default transport socket must accept no certificate, got SANs %v", c.GetName(), sans)
	}
	for _, le := range c.GetLoadAssignment().GetEndpoints() {
		for _, lb := range le.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			host := sa.GetAddress()
			if sa.GetPortValue() != 443 || lb.GetEndpoint().GetHostname() != host {
				t.Errorf("cluster %q: endpoint %s:%d hostname %q, want port 443 and the host as hostname", c.GetName(), host, sa.GetPortValue(), lb.GetEndpoint().GetHostname())
			}
			md := lb.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"]
			var matched []*clusterv3.Cluster_TransportSocketMatch
			for _, m := range c.GetTransportSocketMatches() {
				if structSubset(m.GetMatch(), md) {
					matched = append(matched, m)
				}
			}
			if len(matched) == 0 {
				t.Errorf("cluster %q: endpoint %s matches no transport socket", c.GetName(), host)
				continue
			}
			// Envoy takes the first match.
			tc := unpack[tlsv3.UpstreamTlsContext](t, matched[0].GetTransportSocket().GetTypedConfig())
			vc := tc.GetCommonTlsContext().GetValidationContext()
			sans := vc.GetMatchTypedSubjectAltNames()
			if tc.GetSni() != host || vc.GetTrustedCa().GetFilename() != caBundle || len(sans) != 1 ||
				sans[0].GetSanType() != tlsv3.SubjectAltNameMatcher_DNS || sans[0].GetMatcher().GetExact() != host {
				t.Errorf("cluster %q: endpoint %s gets sni %q, CA %q, SANs %v", c.GetName(), host, tc.GetSni(), vc.GetTrustedCa().GetFilename(), sans)
			}
		}
	}
}

// structSubset: every field of match is in md with the same value, as a
// transport socket match is read.
func structSubset(match, md *structpb.Struct) bool {
	for k, v := range match.GetFields() {
		if !proto.Equal(v, md.GetFields()[k]) {
			return false
		}
	}
	return true
}
