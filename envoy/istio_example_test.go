package envoy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	istioapi "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/processor"
	"github.com/tollgate-dev/tollgate/provider"
)

// TestIstioExample: the sidecar setup of Istio. Beyond decoding every
// resource strictly and validating the Envoy messages in the patches, it
// checks the scoping: the fail-closed, buffering filter sits disabled on
// the outbound listener and is enabled only for the providers' virtual
// hosts (those of the ServiceEntry, named host:port as Istio names them),
// every patch is limited to the sidecar's outbound side and the providers'
// port, the providers are reached over TLS the sidecar originates, and
// the sidecar does not retry provider calls behind the processor's back.
func TestIstioExample(t *testing.T) {
	var entries []*istioapi.ServiceEntry
	rules := map[string]*istioapi.DestinationRule{}
	var filters []*istioapi.EnvoyFilter
	var services []*istioapi.VirtualService
	for i, doc := range yamlDocs(t, filepath.Join("examples", "istio-envoyfilter.yaml")) {
		switch kind := docKind(t, doc); kind {
		case "ServiceEntry":
			se := &istioapi.ServiceEntry{}
			decodeIstio(t, doc, "networking.istio.io/v1", se)
			entries = append(entries, se)
		case "DestinationRule":
			dr := &istioapi.DestinationRule{}
			decodeIstio(t, doc, "networking.istio.io/v1", dr)
			rules[dr.GetHost()] = dr
		case "EnvoyFilter":
			ef := &istioapi.EnvoyFilter{}
			decodeIstio(t, doc, "networking.istio.io/v1alpha3", ef)
			filters = append(filters, ef)
		case "VirtualService":
			vs := &istioapi.VirtualService{}
			decodeIstio(t, doc, "networking.istio.io/v1", vs)
			services = append(services, vs)
		default:
			t.Errorf("document %d: unexpected kind %q", i, kind)
		}
	}
	if len(filters) != 1 || len(entries) == 0 {
		t.Fatalf("want one EnvoyFilter and the providers' ServiceEntry, got %d and %d", len(filters), len(entries))
	}
	ef := filters[0]
	if len(ef.GetWorkloadSelector().GetLabels()) == 0 {
		t.Error("the EnvoyFilter must select the applications' pods (workloadSelector), not every pod")
	}

	// The provider virtual hosts the sidecar will have: host:port for each
	// plain-HTTP port of the ServiceEntry, with TLS originated to 443.
	providers := map[string]bool{} // virtual host names
	ports := map[uint32]bool{}
	hosts := map[string]bool{}
	for _, se := range entries {
		if se.GetLocation() != istioapi.ServiceEntry_MESH_EXTERNAL {
			t.Errorf("ServiceEntry %v: the providers are MESH_EXTERNAL", se.GetHosts())
		}
		for _, p := range se.GetPorts() {
			if p.GetProtocol() != "HTTP" {
				t.Errorf("ServiceEntry port %d (%s): only plain HTTP can be read by the sidecar; an HTTPS port lets calls pass unseen", p.GetNumber(), p.GetProtocol())
				continue
			}
			if p.GetTargetPort() != 443 {
				t.Errorf("ServiceEntry port %d must send on to 443 (TLS origination), not %d", p.GetNumber(), p.GetTargetPort())
			}
			ports[p.GetNumber()] = true
			for _, h := range se.GetHosts() {
				hosts[h] = true
				providers[fmt.Sprintf("%s:%d", h, p.GetNumber())] = true
				checkTLSOrigination(t, rules[h], h, p.GetNumber())
			}
		}
	}
	for _, h := range []string{"api.openai.com", "api.anthropic.com"} {
		if !hosts[h] {
			t.Errorf("ServiceEntry: provider %s missing", h)
		}
	}
	azure := false
	for h := range hosts {
		azure = azure || strings.HasSuffix(h, ".openai.azure.com")
	}
	if !azure {
		t.Error("ServiceEntry: no Azure OpenAI resource (*.openai.azure.com) shows how one is added")
	}
	checkNoIstioRetries(t, services, hosts, ports)

	var filterName, filterCluster string
	addedClusters := map[string]bool{}
	enabled := map[string]bool{}        // virtual host -> ext_proc turned on
	timed := map[string]bool{}          // virtual host -> route timeouts set
	perVhost := map[string]*anypb.Any{} // virtual host -> per-filter configs, checked below
	for i, cp := range ef.GetConfigPatches() {
		value, err := protojson.Marshal(cp.GetPatch().GetValue())
		if err != nil {
			t.Fatal(err)
		}
		op := cp.GetPatch().GetOperation()
		where := fmt.Sprintf("patch %d (%s %s)", i, cp.GetApplyTo(), op)
		complete := op != istioapi.EnvoyFilter_Patch_MERGE
		match := cp.GetMatch()
		if match.GetContext() != istioapi.EnvoyFilter_SIDECAR_OUTBOUND {
			t.Errorf("%s: context %s; the patches are for the applications' outbound calls only (SIDECAR_OUTBOUND)", where, match.GetContext())
		}
		rc := match.GetRouteConfiguration()
		vhost := rc.GetVhost().GetName()
		switch cp.GetApplyTo() {
		case istioapi.EnvoyFilter_HTTP_FILTER:
			hf := decodeEnvoy[hcmv3.HttpFilter](t, where, value, complete)
			if !hf.GetTypedConfig().MessageIs(&extprocv3.ExternalProcessor{}) {
				t.Fatalf("%s: not an ext_proc filter", where)
			}
			l := match.GetListener()
			if l.GetFilterChain().GetFilter().GetSubFilter().GetName() != "envoy.filters.http.router" || op != istioapi.EnvoyFilter_Patch_INSERT_BEFORE {
				t.Errorf("%s: ext_proc must be inserted before the router", where)
			}
			if !ports[l.GetPortNumber()] {
				t.Errorf("%s: listener port %d; only the providers' port %v", where, l.GetPortNumber(), keys(ports))
			}
			if !hf.GetDisabled() {
				t.Errorf("%s: the filter must be disabled on the listener: it would buffer and fail closed every HTTP call the workload makes on that port", where)
			}
			ep := unpack[extprocv3.ExternalProcessor](t, hf.GetTypedConfig())
			checkExtProc(t, ep)
			filterName = hf.GetName()
			filterCluster = ep.GetGrpcService().GetEnvoyGrpc().GetClusterName()
		case istioapi.EnvoyFilter_VIRTUAL_HOST:
			vh := decodeEnvoy[routev3.VirtualHost](t, where, value, complete)
			if op != istioapi.EnvoyFilter_Patch_MERGE || !providers[vhost] || !ports[rc.GetPortNumber()] {
				t.Errorf("%s: must MERGE into a provider's virtual host (one of %v, by name and port), not %q port %d", where, keys(providers), vhost, rc.GetPortNumber())
				continue
			}
			for name, a := range vh.GetTypedPerFilterConfig() {
				if err := validate(a); err != nil {
					t.Errorf("%s: %s: %v", where, name, err)
				}
				if perVhost[vhost+" "+name] != nil {
					t.Errorf("%s: %s configured twice", where, name)
				}
				perVhost[vhost+" "+name] = a
			}
		case istioapi.EnvoyFilter_HTTP_ROUTE:
			r := decodeEnvoy[routev3.Route](t, where, value, complete)
			if op != istioapi.EnvoyFilter_Patch_MERGE || !providers[vhost] || !ports[rc.GetPortNumber()] {
				t.Errorf("%s: must MERGE into a provider's routes (one of %v), not %q port %d", where, keys(providers), vhost, rc.GetPortNumber())
				continue
			}
			if len(r.GetTypedPerFilterConfig()) > 0 {
				t.Errorf("%s: enable the filter per virtual host, where this test looks for it", where)
			}
			// Istio merges a patch field by field, skipping unset ones: a
			// zero inside num_retries is unset and leaves Istio's default
			// of 2 in place. Retries are disabled by the VirtualServices.
			if rp := r.GetRoute().GetRetryPolicy(); rp != nil && rp.GetNumRetries() != nil && rp.GetNumRetries().GetValue() == 0 {
				t.Errorf("%s: retry_policy.num_retries: 0 in a MERGE changes nothing (Istio skips zero values); disable retries with a VirtualService's retries.attempts: 0", where)
			}
			timeout, idle := r.GetRoute().GetTimeout().AsDuration(), r.GetRoute().GetIdleTimeout().AsDuration()
			if timeout != dataplane.DefaultRouteTimeout || idle < timeout {
				t.Errorf("%s: route timeout %v and idle_timeout %v; want %v and an idle timeout at least as long (a quiet non-streamed call)", where, timeout, idle, dataplane.DefaultRouteTimeout)
			}
			timed[vhost] = true
		case istioapi.EnvoyFilter_CLUSTER:
			c := decodeEnvoy[clusterv3.Cluster](t, where, value, complete)
			if op == istioapi.EnvoyFilter_Patch_MERGE {
				cm := match.GetCluster()
				if !hosts[cm.GetService()] || !ports[cm.GetPortNumber()] {
					t.Errorf("%s: may only change the providers' clusters, not %s port %d", where, cm.GetService(), cm.GetPortNumber())
				}
				if c.GetPerConnectionBufferLimitBytes().GetValue() < 32<<20 {
					t.Errorf("%s: buffered responses need a 32 MiB buffer", where)
				}
				continue
			}
			addedClusters[c.GetName()] = true
			if po := protocolOptions(t, c); po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
				t.Errorf("%s: cluster %q must speak HTTP/2 for gRPC", where, c.GetName())
			}
		case istioapi.EnvoyFilter_LISTENER:
			l := decodeEnvoy[listenerv3.Listener](t, where, value, complete)
			if !ports[match.GetListener().GetPortNumber()] {
				t.Errorf("%s: only the providers' listener (port %v), not port %d", where, keys(ports), match.GetListener().GetPortNumber())
			}
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
	for key, a := range perVhost {
		vhost, name, _ := strings.Cut(key, " ")
		if name != filterName {
			continue
		}
		// Any per-route config of a filter disabled on the listener turns
		// it on (Envoy's source/common/router/per_filter_config.cc), unless
		// it says disabled.
		if a.MessageIs(&routev3.FilterConfig{}) {
			enabled[vhost] = !unpack[routev3.FilterConfig](t, a).GetDisabled()
		} else {
			enabled[vhost] = !unpack[extprocv3.ExtProcPerRoute](t, a).GetDisabled()
		}
	}
	checkIstioNamesProviders(t, hosts, perVhost, filterName)
	for vh := range providers {
		if !enabled[vh] {
			t.Errorf("virtual host %s: the ext_proc filter (%q) is not enabled there", vh, filterName)
		}
		if !timed[vh] {
			t.Errorf("virtual host %s: no HTTP_ROUTE patch sets its timeouts", vh)
		}
	}
}

// checkIstioNamesProviders holds the example to the one provider list
// (provider.Builtins, with OpenAI and Anthropic): each provider's host is a
// provider of the ServiceEntry (so the checks above give it TLS
// origination, no retries, the filter and the timeouts), and its virtual
// host names it to the processor (processor.ProviderMetadata in the
// stream's gRPC metadata), because there the Host, not the path, picks the
// provider: a call to api.together.xyz/v1/chat/completions is Together's,
// not OpenAI's, and an OpenAI key-vault key is no key for it.
func checkIstioNamesProviders(t *testing.T, hosts map[string]bool, perVhost map[string]*anypb.Any, filterName string) {
	t.Helper()
	list := append([]provider.Upstream{{Name: provider.OpenAI, Origin: "https://api.openai.com"},
		{Name: provider.Anthropic, Origin: "https://api.anthropic.com"}}, provider.Builtins()...)
	for _, u := range list {
		host := strings.TrimPrefix(u.Origin, "https://")
		if !hosts[host] {
			t.Errorf("ServiceEntry: provider %s (%s) missing", u.Name, host)
			continue
		}
		a := perVhost[host+":80 "+filterName]
		if a == nil || !a.MessageIs(&extprocv3.ExtProcPerRoute{}) {
			t.Errorf("virtual host %s:80: no ExtProcPerRoute to name provider %s", host, u.Name)
			continue
		}
		var named []string
		for _, h := range unpack[extprocv3.ExtProcPerRoute](t, a).GetOverrides().GetGrpcInitialMetadata() {
			if h.GetKey() == processor.ProviderMetadata {
				named = append(named, h.GetValue())
			}
		}
		if !slices.Equal(named, []string{u.Name}) {
			t.Errorf("virtual host %s:80 names the provider %q to the processor, want %s in %s", host, named, u.Name, processor.ProviderMetadata)
		}
	}
}

// checkNoIstioRetries: the sidecar must not retry provider calls on its
// own. Without a VirtualService Istio gives each route its default retry
// policy (2 retries on connect-failure, refused-stream, unavailable,
// cancelled and 503), and the router retries below the ext_proc filter: the
// processor would see one call where the provider billed up to three. So
// every provider host (on every port of the ServiceEntry) has a
// VirtualService whose every HTTP route sets retries.attempts: 0 (nil
// retries means Istio's default) and sends the call to that provider.
func checkNoIstioRetries(t *testing.T, services []*istioapi.VirtualService, hosts map[string]bool, ports map[uint32]bool) {
	t.Helper()
	covered := map[string]bool{}
	for _, vs := range services {
		if len(vs.GetHttp()) == 0 {
			t.Errorf("VirtualService %v: no HTTP route", vs.GetHosts())
		}
		for _, h := range vs.GetHosts() {
			if !hosts[h] {
				t.Errorf("VirtualService for %s, which is not a provider of the ServiceEntry", h)
			}
		}
		for i, r := range vs.GetHttp() {
			if r.GetRetries() == nil || r.GetRetries().GetAttempts() != 0 {
				t.Errorf("VirtualService %v route %d: retries %v; want retries: {attempts: 0} (unset means Istio's default retries, unseen by the processor)", vs.GetHosts(), i, r.GetRetries())
			}
			if len(r.GetRoute()) == 0 {
				t.Errorf("VirtualService %v route %d: no destination", vs.GetHosts(), i)
			}
			// The processor's routing headers stay inside, and so does the
			// attempt count Istio's outbound virtual hosts add
			// (include_request_attempt_count: true).
			for _, h := range append(slices.Clone(processorRoutingHeaders), "x-envoy-attempt-count") {
				if !slices.Contains(r.GetHeaders().GetRequest().GetRemove(), h) {
					t.Errorf("VirtualService %v route %d: %s reaches the provider", vs.GetHosts(), i, h)
				}
			}
			for _, d := range r.GetRoute() {
				dest := d.GetDestination()
				if !slices.Contains(vs.GetHosts(), dest.GetHost()) || !ports[dest.GetPort().GetNumber()] {
					t.Errorf("VirtualService %v route %d: sends calls to %s port %d, not to the provider on %v", vs.GetHosts(), i, dest.GetHost(), dest.GetPort().GetNumber(), keys(ports))
				}
			}
		}
		for _, h := range vs.GetHosts() {
			covered[h] = covered[h] || len(vs.GetHttp()) > 0
		}
	}
	for h := range hosts {
		if !covered[h] {
			t.Errorf("provider %s: no VirtualService with retries.attempts: 0; Istio's default policy retries its calls (up to 3 paid calls under one record)", h)
		}
	}
}

// checkTLSOrigination: the DestinationRule for host originates TLS on port,
// and checks the provider's name.
func checkTLSOrigination(t *testing.T, dr *istioapi.DestinationRule, host string, port uint32) {
	t.Helper()
	if dr == nil {
		t.Errorf("no DestinationRule for %s: the sidecar would send the call in plain HTTP", host)
		return
	}
	for _, pls := range dr.GetTrafficPolicy().GetPortLevelSettings() {
		if pls.GetPort().GetNumber() != port {
			continue
		}
		tls := pls.GetTls()
		if tls.GetMode() != istioapi.ClientTLSSettings_SIMPLE || tls.GetSni() != host ||
			!slices.Contains(tls.GetSubjectAltNames(), host) || tls.GetCaCertificates() == "" || tls.GetInsecureSkipVerify().GetValue() {
			t.Errorf("DestinationRule %s port %d: want TLS mode SIMPLE, SNI and a verified subject alt name %s, got %v", host, port, host, tls)
		}
		return
	}
	t.Errorf("DestinationRule %s: no TLS settings for port %d", host, port)
}

func keys[K comparable, V any](m map[K]V) []K {
	var out []K
	for k := range m {
		out = append(out, k)
	}
	return out
}

// decodeIstio decodes an Istio resource strictly into spec. Istio's own
// UnmarshalJSON ignores unknown fields, so the spec goes through protojson,
// which does not.
func decodeIstio(t *testing.T, doc []byte, apiVersion string, spec proto.Message) {
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
		t.Fatalf("%T: %v", spec, err)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(raw.Spec, spec); err != nil {
		t.Fatalf("%s %s spec: %v", raw.Kind, raw.Name, err)
	}
	if raw.APIVersion != apiVersion || raw.Name == "" {
		t.Errorf("%s: apiVersion %q (want %q), name %q", raw.Kind, raw.APIVersion, apiVersion, raw.Name)
	}
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
