package k8s_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestSelectorsAndPorts: within a base, every selector finds the pods it
// is meant for, and every named port it uses exists on them.
func TestSelectorsAndPorts(t *testing.T) {
	tr := loadTree(t)
	for base := range tr.bases {
		deployments := of[appsv1.Deployment](tr, base)
		for _, d := range deployments {
			if sel := mustSelector(t, d.Spec.Selector); !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("%s: Deployment %s does not select its own pods", base, d.Name)
			}
		}
		selected := func(what string, sel labels.Selector) []*appsv1.Deployment {
			var out []*appsv1.Deployment
			for _, d := range deployments {
				if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
					out = append(out, d)
				}
			}
			if len(out) == 0 {
				t.Errorf("%s: %s selects no pod of the base", base, what)
			}
			return out
		}
		for _, s := range of[corev1.Service](tr, base) {
			pods := selected("Service "+s.Name, labels.SelectorFromSet(s.Spec.Selector))
			for _, p := range s.Spec.Ports {
				for _, d := range pods {
					if !podHasPort(&d.Spec.Template.Spec, p.TargetPort) {
						t.Errorf("%s: Service %s port %s targets %s, which Deployment %s does not declare", base, s.Name, p.Name, p.TargetPort.String(), d.Name)
					}
				}
			}
		}
		for _, p := range of[policyv1.PodDisruptionBudget](tr, base) {
			selected("PodDisruptionBudget "+p.Name, mustSelector(t, p.Spec.Selector))
		}
		for _, np := range of[networkingv1.NetworkPolicy](tr, base) {
			if len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) == 0 {
				continue // every pod of the namespace, by design
			}
			for _, d := range selected("NetworkPolicy "+np.Name, mustSelector(t, &np.Spec.PodSelector)) {
				for _, rule := range np.Spec.Ingress {
					for _, p := range rule.Ports {
						if p.Port != nil && !podHasPort(&d.Spec.Template.Spec, *p.Port) {
							t.Errorf("%s: NetworkPolicy %s admits port %s, which Deployment %s does not serve", base, np.Name, p.Port.String(), d.Name)
						}
					}
				}
			}
		}
	}
}

// TestConfigReferences: volumes and envFrom name ConfigMaps the base makes
// (or marks the reference optional), and service accounts exist.
func TestConfigReferences(t *testing.T) {
	tr := loadTree(t)
	for base, k := range tr.bases {
		configMaps := k.generated()
		for _, cm := range of[corev1.ConfigMap](tr, base) {
			configMaps[cm.Name] = true
		}
		accounts := map[string]bool{}
		for _, sa := range of[corev1.ServiceAccount](tr, base) {
			accounts[sa.Name] = true
		}
		for _, d := range of[appsv1.Deployment](tr, base) {
			spec := d.Spec.Template.Spec
			if !accounts[spec.ServiceAccountName] {
				t.Errorf("%s: Deployment %s runs as ServiceAccount %q, not defined in the base", base, d.Name, spec.ServiceAccountName)
			}
			for _, v := range spec.Volumes {
				if cm := v.ConfigMap; cm != nil && !configMaps[cm.Name] && (cm.Optional == nil || !*cm.Optional) {
					t.Errorf("%s: Deployment %s mounts ConfigMap %q, which the base does not make", base, d.Name, cm.Name)
				}
			}
			for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
				for _, ef := range c.EnvFrom {
					if r := ef.ConfigMapRef; r != nil && !configMaps[r.Name] && (r.Optional == nil || !*r.Optional) {
						t.Errorf("%s: %s/%s reads ConfigMap %q, which the base does not make", base, d.Name, c.Name, r.Name)
					}
				}
				for _, m := range c.VolumeMounts {
					if !hasVolume(&spec, m.Name) {
						t.Errorf("%s: %s/%s mounts undefined volume %q", base, d.Name, c.Name, m.Name)
					}
				}
			}
		}
	}
}

func mustSelector(t *testing.T, ls *metav1.LabelSelector) labels.Selector {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		t.Fatal(err)
	}
	if sel.Empty() {
		t.Error("an empty selector selects everything")
	}
	return sel
}

func podHasPort(spec *corev1.PodSpec, port intstr.IntOrString) bool {
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			if port.Type == intstr.String && containerPort(&cs[i], port.StrVal) != 0 {
				return true
			}
			for _, p := range cs[i].Ports {
				if port.Type == intstr.Int && p.ContainerPort == port.IntVal {
					return true
				}
			}
		}
	}
	return false
}

// containerPort returns the number of a named port, 0 if none.
func containerPort(c *corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func probePort(p *corev1.Probe) intstr.IntOrString {
	switch {
	case p.HTTPGet != nil:
		return p.HTTPGet.Port
	case p.TCPSocket != nil:
		return p.TCPSocket.Port
	case p.GRPC != nil:
		return intstr.FromInt32(p.GRPC.Port)
	}
	return intstr.IntOrString{}
}

func hasVolume(spec *corev1.PodSpec, name string) bool {
	for _, v := range spec.Volumes {
		if v.Name == name {
			return true
		}
	}
	return false
}
