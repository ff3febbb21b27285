package helm_test

import (
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestVariantsRender: every variant renders, every object decodes
// strictly (render fails otherwise), no two objects share a kind and name,
// and every selector selects pods of its release with the ports it names.
func TestVariantsRender(t *testing.T) {
	for name, values := range variants {
		t.Run(name, func(t *testing.T) {
			r := render(t, "edge", "llm", values)
			seen := map[string]bool{}
			for _, o := range r.objects {
				key := o.kind + "/" + o.name
				if seen[key] {
					t.Errorf("%s twice", key)
				}
				seen[key] = true
				if ns := objectMeta(o.obj).Namespace; ns != "" {
					t.Errorf("%s sets its namespace %q; helm -n does", key, ns)
				}
			}
			checkWiring(t, r)
			for pod, spec := range podSpecs(r.objects) {
				checkLockedDown(t, pod, spec)
			}
		})
	}
}

// checkWiring: Services, disruption budgets, network policies, monitors
// and the autoscaler find the pods (and ports) they are meant for, and
// only this release's.
func checkWiring(t *testing.T, r *release) {
	t.Helper()
	type pod struct {
		labels map[string]string
		spec   *corev1.PodSpec
	}
	var pods []pod
	for _, d := range of[appsv1.Deployment](r.objects) {
		sel := mustSelector(t, d.Spec.Selector)
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s: its selector misses its own pods", d.Name)
		}
		if d.Spec.Selector.MatchLabels["app.kubernetes.io/instance"] != r.name {
			t.Errorf("Deployment %s: selector %v would take another release's pods", d.Name, d.Spec.Selector.MatchLabels)
		}
		pods = append(pods, pod{d.Spec.Template.Labels, &d.Spec.Template.Spec})
	}
	selected := func(what string, sel labels.Selector) []pod {
		var out []pod
		for _, p := range pods {
			if sel.Matches(labels.Set(p.labels)) {
				out = append(out, p)
			}
		}
		if len(out) != 1 {
			t.Errorf("%s selects %d Deployments' pods, want 1", what, len(out))
		}
		return out
	}
	hasPort := func(spec *corev1.PodSpec, port intstr.IntOrString) bool {
		for _, c := range spec.Containers {
			for _, p := range c.Ports {
				if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
					return true
				}
			}
		}
		return false
	}
	for _, s := range of[corev1.Service](r.objects) {
		for _, p := range selected("Service "+s.Name, labels.SelectorFromSet(s.Spec.Selector)) {
			for _, port := range s.Spec.Ports {
				if !hasPort(p.spec, port.TargetPort) {
					t.Errorf("Service %s: targetPort %s is no port of its pods", s.Name, port.TargetPort.String())
				}
			}
		}
	}
	for _, b := range of[policyv1.PodDisruptionBudget](r.objects) {
		selected("PodDisruptionBudget "+b.Name, mustSelector(t, b.Spec.Selector))
	}
	for _, np := range of[networkingv1.NetworkPolicy](r.objects) {
		for _, p := range selected("NetworkPolicy "+np.Name, mustSelector(t, &np.Spec.PodSelector)) {
			for _, rule := range np.Spec.Ingress {
				for _, port := range rule.Ports {
					if !hasPort(p.spec, *port.Port) {
						t.Errorf("NetworkPolicy %s admits port %s, which its pods do not serve", np.Name, port.Port.String())
					}
				}
			}
		}
	}
	for _, m := range of[podMonitor](r.objects) {
		for _, p := range selected("PodMonitor "+m.Name, mustSelector(t, &m.Spec.Selector)) {
			for _, e := range m.Spec.PodMetricsEndpoints {
				if !hasPort(p.spec, intstr.FromString(e.Port)) {
					t.Errorf("PodMonitor %s scrapes port %s, which its pods do not name", m.Name, e.Port)
				}
			}
		}
	}
	for _, h := range of[autoscalingv2.HorizontalPodAutoscaler](r.objects) {
		found := false
		for _, d := range of[appsv1.Deployment](r.objects) {
			found = found || d.Name == h.Spec.ScaleTargetRef.Name
		}
		if !found {
			t.Errorf("HorizontalPodAutoscaler %s scales %s, which the release does not make", h.Name, h.Spec.ScaleTargetRef.Name)
		}
	}
	for _, mwc := range of[admissionv1.MutatingWebhookConfiguration](r.objects) {
		for _, h := range mwc.Webhooks {
			svc := h.ClientConfig.Service
			if svc == nil || svc.Namespace != r.namespace {
				t.Errorf("webhook %s calls %+v, want a Service in %s", h.Name, svc, r.namespace)
				continue
			}
			s := one[corev1.Service](t, r.objects, svc.Name)
			if svc.Port == nil || len(s.Spec.Ports) == 0 || s.Spec.Ports[0].Port != *svc.Port {
				t.Errorf("webhook %s calls port %v of Service %s", h.Name, svc.Port, s.Name)
			}
			// The injector never waits for itself.
			for _, e := range h.NamespaceSelector.MatchExpressions {
				if e.Key == "kubernetes.io/metadata.name" && (e.Operator != metav1.LabelSelectorOpNotIn || !containsStr(e.Values, r.namespace)) {
					t.Errorf("webhook %s: namespace selector %+v must exclude the release's namespace %s", h.Name, e, r.namespace)
				}
			}
		}
	}
}

func mustSelector(t *testing.T, ls *metav1.LabelSelector) labels.Selector {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil || sel.Empty() {
		t.Fatalf("selector %v: %v", ls, err)
	}
	return sel
}

// TestReleaseNames: with a release not named tollgate, every object's
// name starts with "<release>-tollgate-", and references follow (the
// service accounts bound, the Secrets, ConfigMaps, certificates and
// webhook Service named), so two releases can share a cluster: their
// cluster-wide objects differ too.
func TestReleaseNames(t *testing.T) {
	a, b := render(t, "edge", "llm", nil), render(t, "tollgate", "tollgate", nil)
	names := map[string]bool{}
	for _, o := range a.objects {
		if !strings.HasPrefix(o.name, "edge-tollgate-") {
			t.Errorf("%s %s: want the prefix edge-tollgate-", o.kind, o.name)
		}
		names[o.kind+"/"+o.name] = true
	}
	for _, o := range b.objects {
		if names[o.kind+"/"+o.name] {
			t.Errorf("releases edge and tollgate both make %s %s", o.kind, o.name)
		}
	}
	if want := "http://edge-tollgate-gateway.llm.svc:10000/v1"; !strings.Contains(a.notes, want) {
		t.Errorf("NOTES.txt does not give the base URL %s:\n%s", want, a.notes)
	}
	crb := one[rbacv1.ClusterRoleBinding](t, a.objects, "edge-tollgate-injector")
	if s := crb.Subjects[0]; s.Name != "edge-tollgate-injector" || s.Namespace != "llm" || crb.RoleRef.Name != "edge-tollgate-injector" {
		t.Errorf("ClusterRoleBinding binds %+v to %s", s, crb.RoleRef.Name)
	}
	for name, spec := range podSpecs(a.objects) {
		if spec.ServiceAccountName != "" && a.find("v1 ServiceAccount", spec.ServiceAccountName) == nil {
			t.Errorf("%s runs as ServiceAccount %s, which the release does not make", name, spec.ServiceAccountName)
		}
		for _, v := range spec.Volumes {
			if v.ConfigMap != nil && a.find("v1 ConfigMap", v.ConfigMap.Name) == nil {
				t.Errorf("%s mounts ConfigMap %s, which the release does not make", name, v.ConfigMap.Name)
			}
		}
		for _, c := range spec.Containers {
			for _, e := range c.EnvFrom {
				if e.ConfigMapRef != nil && a.find("v1 ConfigMap", e.ConfigMapRef.Name) == nil {
					t.Errorf("%s/%s reads ConfigMap %s, which the release does not make", name, c.Name, e.ConfigMapRef.Name)
				}
			}
		}
	}
}
