package envoy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	istioapi "istio.io/api/networking/v1alpha3"
	istionet "istio.io/client-go/pkg/apis/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The examples attach Tollgate to data planes other control planes manage.
// They are decoded with those projects' API types, unknown fields refused,
// and the Envoy configuration inside them is validated like ours.

func TestEnvoyGatewayExample(t *testing.T) {
	docs := yamlDocs(t, filepath.Join("examples", "envoy-gateway.yaml"))
	backends := map[string]*egv1a1.Backend{}
	var policies []*egv1a1.EnvoyExtensionPolicy
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
			strictDecode[egv1a1.BackendTrafficPolicy](t, doc)
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
}

func isMode(m *egv1a1.ExtProcBodyProcessingMode, want egv1a1.ExtProcBodyProcessingMode) bool {
	return m != nil && *m == want
}

func TestIstioExample(t *testing.T) {
	docs := yamlDocs(t, filepath.Join("examples", "istio-envoyfilter.yaml"))
	if len(docs) != 1 || docKind(t, docs[0]) != "EnvoyFilter" {
		t.Fatalf("want one EnvoyFilter document")
	}
	ef := decodeEnvoyFilter(t, docs[0])

	var filterCluster string
	addedClusters := map[string]bool{}
	for i, cp := range ef.Spec.GetConfigPatches() {
		value, err := protojson.Marshal(cp.GetPatch().GetValue())
		if err != nil {
			t.Fatal(err)
		}
		where := fmt.Sprintf("patch %d (%s %s)", i, cp.GetApplyTo(), cp.GetPatch().GetOperation())
		complete := cp.GetPatch().GetOperation() != istioapi.EnvoyFilter_Patch_MERGE
		switch cp.GetApplyTo() {
		case istioapi.EnvoyFilter_HTTP_FILTER:
			hf := decodeEnvoy[hcmv3.HttpFilter](t, where, value, complete)
			if !hf.GetTypedConfig().MessageIs(&extprocv3.ExternalProcessor{}) {
				t.Fatalf("%s: not an ext_proc filter", where)
			}
			if sub := cp.GetMatch().GetListener().GetFilterChain().GetFilter().GetSubFilter().GetName(); sub != "envoy.filters.http.router" ||
				cp.GetPatch().GetOperation() != istioapi.EnvoyFilter_Patch_INSERT_BEFORE {
				t.Errorf("%s: ext_proc must be inserted before the router", where)
			}
			ep := unpack[extprocv3.ExternalProcessor](t, hf.GetTypedConfig())
			checkExtProc(t, ep)
			filterCluster = ep.GetGrpcService().GetEnvoyGrpc().GetClusterName()
		case istioapi.EnvoyFilter_CLUSTER:
			c := decodeEnvoy[clusterv3.Cluster](t, where, value, complete)
			addedClusters[c.GetName()] = true
			if po := protocolOptions(t, c); po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
				t.Errorf("%s: cluster %q must speak HTTP/2 for gRPC", where, c.GetName())
			}
		case istioapi.EnvoyFilter_LISTENER:
			l := decodeEnvoy[listenerv3.Listener](t, where, value, complete)
			if l.GetPerConnectionBufferLimitBytes().GetValue() < 32<<20 {
				t.Errorf("%s: buffer limit below 32 MiB", where)
			}
		default:
			t.Errorf("%s: not checked by this test; add a case", where)
		}
	}
	if filterCluster == "" || !addedClusters[filterCluster] {
		t.Errorf("the ext_proc filter names cluster %q, which no patch adds", filterCluster)
	}
}

// decodeEnvoyFilter decodes strictly. Istio's own UnmarshalJSON ignores
// unknown fields, so the spec goes through protojson, which does not.
func decodeEnvoyFilter(t *testing.T, doc []byte) *istionet.EnvoyFilter {
	t.Helper()
	var raw struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              json.RawMessage `json:"spec"`
	}
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("EnvoyFilter: %v", err)
	}
	ef := &istionet.EnvoyFilter{TypeMeta: raw.TypeMeta, ObjectMeta: raw.ObjectMeta}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(raw.Spec, &ef.Spec); err != nil {
		t.Fatalf("EnvoyFilter spec: %v", err)
	}
	if ef.APIVersion != "networking.istio.io/v1alpha3" || ef.Name == "" {
		t.Errorf("EnvoyFilter: apiVersion %q, name %q", ef.APIVersion, ef.Name)
	}
	return ef
}

// decodeEnvoy reads a patch value as the Envoy message it stands for and,
// when it is a whole one (not a MERGE fragment), validates it.
func decodeEnvoy[T any, PT interface {
	*T
	proto.Message
}](t *testing.T, where string, js []byte, complete bool) PT {
	t.Helper()
	m := PT(new(T))
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, m); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if complete {
		if err := validate(m); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
	}
	return m
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
