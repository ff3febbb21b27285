package envoy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/dataplane"
)

// The examples attach Tollgate to data planes other control planes manage.
// They are decoded with those projects' API types, unknown fields refused,
// and the Envoy configuration inside them is validated like ours.

func TestEnvoyGatewayExample(t *testing.T) {
	docs := yamlDocs(t, filepath.Join("examples", "envoy-gateway.yaml"))
	backends := map[string]*egv1a1.Backend{}
	var policies []*egv1a1.EnvoyExtensionPolicy
	var btps []*egv1a1.BackendTrafficPolicy
	routes := map[string]*gwapiv1.HTTPRoute{}
	for i, doc := range docs {
		switch kind := docKind(t, doc); kind {
		case "Backend":
			b := strictDecode[egv1a1.Backend](t, doc)
			backends[b.Name] = b
		case "EnvoyExtensionPolicy":
			policies = append(policies, strictDecode[egv1a1.EnvoyExtensionPolicy](t, doc))
		case "ClientTrafficPolicy":
			strictDecode[egv1a1.ClientTrafficPolicy](t, doc)
		case "BackendTrafficPolicy":
			btps = append(btps, strictDecode[egv1a1.BackendTrafficPolicy](t, doc))
		case "HTTPRoute":
			r := strictDecode[gwapiv1.HTTPRoute](t, doc)
			routes[r.Name] = r
		default:
			t.Errorf("document %d: unexpected kind %q", i, kind)
		}
	}
	if len(policies) != 1 {
		t.Fatalf("want one EnvoyExtensionPolicy, got %d", len(policies))
	}
	p := policies[0]
	if len(p.Spec.TargetRefs) == 0 || len(p.Spec.ExtProc) != 1 {
		t.Fatalf("the policy must target something and add one ext_proc: %+v", p.Spec)
	}
	ep := p.Spec.ExtProc[0]
	pm := ep.ProcessingMode
	if pm == nil || pm.Request == nil || pm.Response == nil ||
		!isMode(pm.Request.Body, egv1a1.BufferedExtProcBodyProcessingMode) ||
		!isMode(pm.Response.Body, egv1a1.BufferedExtProcBodyProcessingMode) || !pm.AllowModeOverride {
		t.Errorf("processingMode must send both headers, buffer both bodies and allow mode override: %+v", pm)
	}
	if ep.FailOpen == nil || *ep.FailOpen {
		t.Error("failOpen must be set to false")
	}
	if ep.MessageTimeout == nil || *ep.MessageTimeout == "" {
		t.Error("messageTimeout must be set; the default of 200ms is too short under load")
	}
	if len(ep.BackendRefs) != 1 {
		t.Fatalf("want one backendRef, got %d", len(ep.BackendRefs))
	}
	ref := ep.BackendRefs[0]
	b := backends[string(ref.Name)]
	if ref.Kind == nil || *ref.Kind != "Backend" || b == nil {
		t.Fatalf("the backendRef must name a Backend of this file, got %+v", ref)
	}
	if len(b.Spec.AppProtocols) != 1 || b.Spec.AppProtocols[0] != egv1a1.AppProtocolTypeH2C {
		t.Errorf("Backend %s must speak h2c: gRPC needs HTTP/2", b.Name)
	}
	if len(b.Spec.Endpoints) != 1 || b.Spec.Endpoints[0].FQDN == nil || b.Spec.Endpoints[0].FQDN.Port != 50051 {
		t.Errorf("Backend %s must point at Tollgate's gRPC port 50051", b.Name)
	}

	// The routes the processor is attached to are in this file, and none
	// lets the processor's routing headers through to a provider.
	for _, tr := range p.Spec.TargetRefs {
		if tr.Kind != "HTTPRoute" {
			continue
		}
		r := routes[string(tr.Name)]
		if r == nil {
			t.Errorf("the policy targets HTTPRoute %s, which this file does not define", tr.Name)
			continue
		}
		checkGatewayRoute(t, r, backends)
	}

	// The provider routes' timeouts, as in Tollgate's own bootstraps
	// (timeouts_test.go): a call may last the route timeout, and a quiet
	// non-streamed one is not cut earlier by the stream idle timeout.
	timed := false
	for _, btp := range btps {
		if !sameTargets(btp.Spec.TargetRefs, p.Spec.TargetRefs) {
			continue
		}
		timed = true
		var h *egv1a1.HTTPTimeout
		if btp.Spec.Timeout != nil {
			h = btp.Spec.Timeout.HTTP
		}
		if h == nil || h.RequestTimeout == nil || h.StreamIdleTimeout == nil {
			t.Errorf("BackendTrafficPolicy %s: set timeout.http.requestTimeout and streamIdleTimeout", btp.Name)
			continue
		}
		req, err1 := time.ParseDuration(string(*h.RequestTimeout))
		idle, err2 := time.ParseDuration(string(*h.StreamIdleTimeout))
		if err1 != nil || err2 != nil {
			t.Fatalf("BackendTrafficPolicy %s: %v %v", btp.Name, err1, err2)
		}
		if req != dataplane.DefaultRouteTimeout || (idle != 0 && idle < req) {
			t.Errorf("BackendTrafficPolicy %s: requestTimeout %v, streamIdleTimeout %v; want %v and an idle timeout at least as long", btp.Name, req, idle, dataplane.DefaultRouteTimeout)
		}
	}
	if !timed {
		t.Error("no BackendTrafficPolicy sets the timeouts of the routes the processor is attached to")
	}
}

// processorRoutingHeaders are the request headers Tollgate's processor
// sets for the routes of its own bootstraps (envoy/*.yaml), which remove
// them before the upstream; a route another control plane builds must
// remove them too.
var processorRoutingHeaders = []string{
	dataplane.AttemptsHeader, dataplane.FallbackChainHeader, dataplane.UpstreamHeader, "x-tollgate-upstream-host",
}

// checkGatewayRoute: every rule of an Envoy Gateway provider route removes
// processorRoutingHeaders and sends calls to a Backend of the example over
// TLS.
func checkGatewayRoute(t *testing.T, r *gwapiv1.HTTPRoute, backends map[string]*egv1a1.Backend) {
	t.Helper()
	if len(r.Spec.Rules) == 0 {
		t.Errorf("HTTPRoute %s: no rules", r.Name)
	}
	for i, rule := range r.Spec.Rules {
		var removed []string
		for _, f := range rule.Filters {
			if f.Type == gwapiv1.HTTPRouteFilterRequestHeaderModifier && f.RequestHeaderModifier != nil {
				removed = append(removed, f.RequestHeaderModifier.Remove...)
			}
		}
		for _, h := range processorRoutingHeaders {
			if !slices.Contains(removed, h) {
				t.Errorf("HTTPRoute %s rule %d: %s reaches the provider (remove it with a RequestHeaderModifier filter)", r.Name, i, h)
			}
		}
		if len(rule.BackendRefs) == 0 {
			t.Errorf("HTTPRoute %s rule %d: no backendRefs", r.Name, i)
		}
		for _, ref := range rule.BackendRefs {
			b := backends[string(ref.Name)]
			if ref.Kind == nil || *ref.Kind != "Backend" || b == nil || b.Spec.TLS == nil || ref.Port == nil || *ref.Port != 443 {
				t.Errorf("HTTPRoute %s rule %d: backendRef %s must be a Backend of this file reached over TLS on 443", r.Name, i, ref.Name)
			}
		}
	}
}

func sameTargets(a, b []gwapiv1.LocalPolicyTargetReferenceWithSectionName) bool {
	return slices.EqualFunc(a, b, func(x, y gwapiv1.LocalPolicyTargetReferenceWithSectionName) bool {
		return x.Group == y.Group && x.Kind == y.Kind && x.Name == y.Name
	})
}

func isMode(m *egv1a1.ExtProcBodyProcessingMode, want egv1a1.ExtProcBodyProcessingMode) bool {
	return m != nil && *m == want
}

// strictDecode decodes a Kubernetes-style document, refusing unknown fields.
func strictDecode[T any](t *testing.T, doc []byte) *T {
	t.Helper()
	v := new(T)
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("%T: %v", v, err)
	}
	return v
}

func docKind(t *testing.T, doc []byte) string {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatal(err)
	}
	return tm.Kind
}

// yamlDocs splits a multi-document YAML file, dropping empty documents.
func yamlDocs(t *testing.T, file string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range strings.Split("\n"+string(data), "\n---\n") {
		if !onlyComments(d) {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func onlyComments(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}
