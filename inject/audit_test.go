package inject

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// apiServer answers the three lists the audit makes, from pods it holds,
// as the Kubernetes API does (label selectors on namespaces and pods).
type apiServer struct {
	mu         sync.Mutex
	namespaces map[string]map[string]string // name -> labels
	pods       []corev1.Pod
	refuse     bool
	tokens     []string
}

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = append(s.tokens, r.Header.Get("Authorization"))
	if s.refuse {
		http.Error(w, `{"kind":"Status","reason":"Forbidden"}`, http.StatusForbidden)
		return
	}
	sel := r.URL.Query().Get("labelSelector")
	if sel != "" && sel != KeyInject+"=enabled" {
		http.Error(w, "unexpected selector "+sel, http.StatusBadRequest)
		return
	}
	switch {
	case r.URL.Path == "/api/v1/namespaces":
		var items []corev1.Namespace
		for name, labels := range s.namespaces {
			if sel == "" || labels[KeyInject] == "enabled" {
				items = append(items, corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"kind": "NamespaceList", "items": items})
	case r.URL.Path == "/api/v1/pods" || r.PathValue("ns") != "":
		var items []corev1.Pod
		for _, p := range s.pods {
			if (r.PathValue("ns") == "" || p.Namespace == r.PathValue("ns")) && (sel == "" || p.Labels[KeyInject] == "enabled") {
				items = append(items, p)
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"kind": "PodList", "items": items})
	default:
		http.NotFound(w, r)
	}
}

func auditPod(ns, name string, mutate func(p *corev1.Pod)) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if mutate != nil {
		mutate(&p)
	}
	return p
}

func injected(p *corev1.Pod) {
	p.Annotations = map[string]string{AnnotationStatus: StatusInjected}
	p.Spec.InitContainers = []corev1.Container{{Name: BootstrapContainer}, {Name: ProcessorContainer}, {Name: EnvoyContainer}}
}

func uninjectedGauge(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	return byFirstLabel(t, reg, "tollgate_injector_uninjected_pods")
}

// TestAuditCountsUninjectedPods: pods that asked for the sidecars and run
// without them show in tollgate_injector_uninjected_pods, by namespace;
// injected, opted-out, host-network and finished pods do not, nor
// namespaces the webhooks never see.
func TestAuditCountsUninjectedPods(t *testing.T) {
	label := func(p *corev1.Pod) { p.Labels = map[string]string{KeyInject: "enabled"} }
	api := &apiServer{
		namespaces: map[string]map[string]string{
			"shop":        {KeyInject: "enabled"},
			"tollgate":    {KeyInject: "enabled"}, // the injector's own: never injected
			"research":    nil,
			"kube-system": nil,
		},
		pods: []corev1.Pod{
			auditPod("shop", "checkout-1", injected),
			auditPod("shop", "checkout-2", nil), // created before the opt-in, or admitted uninjected
			auditPod("shop", "legacy", func(p *corev1.Pod) { p.Annotations = map[string]string{KeyInject: "false"} }),
			auditPod("shop", "agent", func(p *corev1.Pod) { p.Spec.HostNetwork = true }),
			auditPod("shop", "migrate", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
			auditPod("shop", "marked-only", func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationStatus: StatusInjected} }),
			auditPod("tollgate", "tollgate-injector-1", nil),
			auditPod("research", "notebook", label),
			auditPod("research", "batch", func(p *corev1.Pod) { label(p); injected(p) }),
			auditPod("research", "plain", nil),
			auditPod("kube-system", "dns", label),
		},
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/namespaces", api)
	mux.Handle("/api/v1/namespaces/{ns}/pods", api)
	mux.Handle("/api/v1/pods", api)
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"major":"1","minor":"31","gitVersion":"v1.31.4"}`))
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("sa-token-1\n"), 0o600)
	client := NewKubeClient(srv.URL, tokenFile, srv.Client())

	reg := prometheus.NewRegistry()
	a := NewAuditor(client, 1, "tollgate", reg, nil)
	if err := a.Audit(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := uninjectedGauge(t, reg)
	want := map[string]float64{"shop": 2, "research": 1}
	if len(got) != len(want) || got["shop"] != want["shop"] || got["research"] != want["research"] {
		t.Fatalf("tollgate_injector_uninjected_pods = %v, want %v", got, want)
	}
	if api.tokens[0] != "Bearer sa-token-1" {
		t.Fatalf("Authorization %q", api.tokens[0])
	}

	// The pods restarted and injected: the count drops to zero; a rotated
	// token is read again.
	api.mu.Lock()
	injected(&api.pods[1])
	injected(&api.pods[5])
	api.pods[7].Labels[KeyInject] = "disabled"
	api.tokens = nil
	api.mu.Unlock()
	os.WriteFile(tokenFile, []byte("sa-token-2"), 0o600)
	if err := a.Audit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := uninjectedGauge(t, reg); got["shop"] != 0 || got["research"] != 0 {
		t.Fatalf("after the restarts: %v", got)
	}
	if api.tokens[0] != "Bearer sa-token-2" {
		t.Fatalf("Authorization %q after rotation", api.tokens[0])
	}

	if v, err := client.ServerVersion(context.Background()); err != nil || v != "v1.31.4" || CheckKubernetesVersion(v) != nil {
		t.Fatalf("version %q %v", v, err)
	}

	// Refused by the API server (RBAC missing): an error, which Run counts
	// in tollgate_injector_audit_errors_total.
	api.mu.Lock()
	api.refuse = true
	api.mu.Unlock()
	if err := a.Audit(context.Background()); err == nil {
		t.Fatal("a refused listing was not an error")
	}
}
