package k8s_test

import (
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const injectLabel = "tollgate.io/inject"

// TestInjectionWebhook checks the contract of k8s/injector: which pods are
// sent to the injector, how, and what happens when it is down.
func TestInjectionWebhook(t *testing.T) {
	tr := loadTree(t)
	const base = "injector"
	mwcs := of[admissionv1.MutatingWebhookConfiguration](tr, base)
	if len(mwcs) != 1 {
		t.Fatalf("want one MutatingWebhookConfiguration in %s/, got %d", base, len(mwcs))
	}
	hooks := mwcs[0].Webhooks
	if len(hooks) != 2 {
		t.Fatalf("want two webhooks (by namespace, by pod), got %d", len(hooks))
	}
	namespace := tr.bases[base].Namespace
	names := map[string]bool{}
	var byNamespace, byPod *admissionv1.MutatingWebhook
	for i := range hooks {
		h := &hooks[i]
		if names[h.Name] || !strings.HasSuffix(h.Name, ".inject.tollgate.io") {
			t.Errorf("webhook %q: names must be unique and end in .inject.tollgate.io", h.Name)
		}
		names[h.Name] = true
		checkHookCall(t, tr, base, namespace, h)
		switch {
		case h.NamespaceSelector.MatchLabels[injectLabel] == "enabled":
			byNamespace = h
		case h.ObjectSelector.MatchLabels[injectLabel] == "enabled":
			byPod = h
		}
	}
	if byNamespace == nil || byPod == nil {
		t.Fatalf("want one webhook selecting namespaces labeled %s=enabled and one selecting pods so labeled", injectLabel)
	}
	if !excludes(byNamespace.ObjectSelector, injectLabel, "disabled") {
		t.Error("a pod labeled tollgate.io/inject=disabled must be able to opt out in an enabled namespace")
	}
	// The pod webhook must skip enabled namespaces (or pods would be
	// injected twice), the control plane and the injector's own namespace.
	for _, ns := range []string{"kube-system", namespace} {
		if !excludes(byPod.NamespaceSelector, "kubernetes.io/metadata.name", ns) {
			t.Errorf("webhook %s must not run in namespace %s", byPod.Name, ns)
		}
	}
	if !excludes(byPod.NamespaceSelector, injectLabel, "enabled") {
		t.Errorf("webhook %s must skip namespaces the other webhook covers", byPod.Name)
	}
	// The path tells the injector which selector matched: a pod of an
	// enabled namespace needs no label of its own.
	for h, want := range map[*admissionv1.MutatingWebhook]string{byNamespace: "/inject/namespace", byPod: "/inject/pod"} {
		if p := h.ClientConfig.Service.Path; p == nil || *p != want {
			t.Errorf("webhook %s: path %v, want %s", h.Name, p, want)
		}
	}
}

// checkHookCall: pod creation only, over the injector's Service, failing
// closed outside the namespaces it depends on, without side effects, once.
func checkHookCall(t *testing.T, tr *tree, base, namespace string, h *admissionv1.MutatingWebhook) {
	t.Helper()
	if len(h.Rules) != 1 || !slices.Equal(h.Rules[0].Operations, []admissionv1.OperationType{admissionv1.Create}) ||
		!slices.Equal(h.Rules[0].APIGroups, []string{""}) || !slices.Equal(h.Rules[0].Resources, []string{"pods"}) {
		t.Errorf("webhook %s: must be called on pod CREATE only, got %+v", h.Name, h.Rules)
	}
	// Opted-in pods: uninjected is a bypass, so fail closed (see
	// mutatingwebhook.yaml); only namespaces the injector never needs.
	if h.FailurePolicy == nil || *h.FailurePolicy != admissionv1.Fail {
		t.Errorf("webhook %s: failurePolicy must be Fail (see mutatingwebhook.yaml)", h.Name)
	}
	for _, ns := range []string{"kube-system", "kube-node-lease", namespace} {
		if !excludes(h.NamespaceSelector, "kubernetes.io/metadata.name", ns) {
			t.Errorf("webhook %s fails closed and must never run in namespace %s", h.Name, ns)
		}
	}
	if h.SideEffects == nil || *h.SideEffects != admissionv1.SideEffectClassNone {
		t.Errorf("webhook %s: sideEffects must be None", h.Name)
	}
	if !slices.Equal(h.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("webhook %s: admissionReviewVersions must be [v1]", h.Name)
	}
	if h.ReinvocationPolicy == nil || *h.ReinvocationPolicy != admissionv1.NeverReinvocationPolicy {
		t.Errorf("webhook %s: reinvocationPolicy must be Never", h.Name)
	}
	if h.TimeoutSeconds == nil || *h.TimeoutSeconds > 10 {
		t.Errorf("webhook %s: pod creation waits for it; set a short timeoutSeconds", h.Name)
	}
	svc := h.ClientConfig.Service
	if svc == nil || svc.Path == nil || !strings.HasPrefix(*svc.Path, "/inject/") || svc.Namespace != namespace {
		t.Fatalf("webhook %s: must call a path under /inject/ of a Service in namespace %s", h.Name, namespace)
	}
	// The Service must exist and lead to the webhook's TLS port.
	for _, s := range of[corev1.Service](tr, base) {
		if s.Name != svc.Name {
			continue
		}
		for _, p := range s.Spec.Ports {
			if svc.Port == nil || p.Port != *svc.Port {
				continue
			}
			for _, d := range of[appsv1.Deployment](tr, base) {
				checkWebhookServer(t, d, p.TargetPort.StrVal)
			}
			return
		}
	}
	t.Errorf("webhook %s: no Service %s with port %v in %s/", h.Name, svc.Name, svc.Port, base)
}

// checkWebhookServer: `tollgate webhook` with its certificate and key from
// the mounted TLS Secret, on the port the Service targets.
func checkWebhookServer(t *testing.T, d *appsv1.Deployment, portName string) {
	t.Helper()
	spec := &d.Spec.Template.Spec
	c := &spec.Containers[0]
	if len(spec.Containers) != 1 || len(c.Args) == 0 || c.Args[0] != "webhook" {
		t.Fatalf("Deployment %s: want one container running `tollgate webhook`", d.Name)
	}
	if containerPort(c, portName) != 8443 {
		t.Errorf("Deployment %s: the Service targets %q, want the webhook's port 8443", d.Name, portName)
	}
	for _, flag := range []string{"--tls-cert", "--tls-key"} {
		file := flagValue(c.Args, flag)
		if file == "" || !inSecretMount(spec, c, file) {
			t.Errorf("Deployment %s: %s %q is not in a mounted Secret", d.Name, flag, file)
		}
	}
}

func inSecretMount(spec *corev1.PodSpec, c *corev1.Container, file string) bool {
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				return true
			}
		}
	}
	return false
}

// excludes says whether a selector rules out objects whose label key has
// the value.
func excludes(sel *metav1.LabelSelector, key, value string) bool {
	if sel == nil {
		return false
	}
	for _, e := range sel.MatchExpressions {
		if e.Key == key && e.Operator == metav1.LabelSelectorOpNotIn && slices.Contains(e.Values, value) {
			return true
		}
	}
	return false
}
