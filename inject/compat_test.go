package inject

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestInjectRefusesKubernetesWithoutNativeSidecars(t *testing.T) {
	for v, ok := range map[string]bool{
		"": true, "1.29": true, "v1.29.3-eks-adc7111": true, "1.30": true, "v1.33.1+k3s1": true, "2.0": true,
		"1.28": false, "v1.28.9-gke.1000": false, "1.27": false, "latest": false,
	} {
		p := appPod()
		_, err := Pod(&p.ObjectMeta, &p.Spec, Workload{Name: "chat"}, Config{KubeVersion: v})
		if ok != (err == nil) {
			t.Errorf("kube-version %q: err = %v", v, err)
		}
		if err != nil && v != "latest" && (!strings.Contains(err.Error(), "native sidecars") || !strings.Contains(err.Error(), "1.29")) {
			t.Errorf("kube-version %q: the error does not say why: %v", v, err)
		}
	}
	// tollgate inject: the whole run fails, naming the workload.
	src := []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: app, image: app}]}\n")
	if _, err := Manifests(src, Config{KubeVersion: "1.28"}, nil); err == nil || !strings.Contains(err.Error(), "native sidecars") {
		t.Fatalf("Manifests on 1.28: %v", err)
	}
}

// On a cluster without native sidecars the webhook refuses a pod that asked
// for the sidecars, saying why: admitted as it is, it would reach the
// providers with no policy and no record (the webhooks fail closed for
// opted-in pods). Pods that did not ask are still admitted.
func TestWebhookRefusesKubernetesWithoutNativeSidecars(t *testing.T) {
	h, err := NewWebhook(Config{KubeVersion: "v1.28.5"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, via := range []string{"/namespace", "/pod"} {
		rec, resp := postReview(t, h, via, reviewOf(t, admissionv1.Create, podKind, webhookPod(nil)))
		if resp == nil {
			t.Fatalf("%s: %d %s", via, rec.Code, rec.Body)
		}
		if resp.Allowed || len(resp.Patch) != 0 {
			t.Fatalf("%s: allowed %v, patch %s: want the pod refused", via, resp.Allowed, resp.Patch)
		}
		if resp.Result == nil || resp.Result.Code != http.StatusBadRequest {
			t.Fatalf("%s: result %+v, want a 400 status", via, resp.Result)
		}
		for _, says := range []string{"native sidecars", "1.28", "1.29", "refused", KeyInject + ": disabled"} {
			if !strings.Contains(resp.Result.Message, says) {
				t.Errorf("%s: the refusal does not say %q: %s", via, says, resp.Result.Message)
			}
		}
	}
	// Not asked for: admitted unchanged, whatever the version.
	_, resp := postReview(t, h, "", reviewOf(t, admissionv1.Create, podKind, webhookPod(nil)))
	if resp == nil || !resp.Allowed || len(resp.Patch) != 0 {
		t.Fatalf("a pod that did not opt in: %+v, want it admitted unchanged", resp)
	}
	// Opted out inside an opted-in namespace: admitted too.
	_, resp = postReview(t, h, "/namespace", reviewOf(t, admissionv1.Create, podKind, webhookPod(map[string]string{KeyInject: "disabled"})))
	if resp == nil || !resp.Allowed || len(resp.Patch) != 0 {
		t.Fatalf("an opted-out pod: %+v, want it admitted unchanged", resp)
	}
}

func TestInjectRefusesPortCollisions(t *testing.T) {
	httpProbeOn := func(port intstr.IntOrString) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: port}}}
	}
	tests := map[string]struct {
		change func(p *corev1.PodSpec)
		says   string // "" means no collision
	}{
		"listener port": {func(p *corev1.PodSpec) { p.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 10000}} }, `"web" declares port 10000, which is envoy's listener`},
		"ops port in an init container": {func(p *corev1.PodSpec) {
			p.InitContainers[0].Ports = []corev1.ContainerPort{{ContainerPort: 9902, Protocol: corev1.ProtocolTCP}}
		}, `"migrate" declares port 9902`},
		"probe of the processor's port": {func(p *corev1.PodSpec) { p.Containers[1].ReadinessProbe = httpProbeOn(intstr.FromInt32(15080)) }, `"worker" probes port 15080`},
		"tcp probe of the ops port": {func(p *corev1.PodSpec) {
			p.Containers[1].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9902)}}}
		}, "port 9902"},
		// ext_proc is a Unix socket now: 50051 is the application's to use
		// (a gRPC server's usual port).
		"gRPC server on 50051": {func(p *corev1.PodSpec) {
			p.Containers[1].Ports = []corev1.ContainerPort{{Name: "grpc", ContainerPort: 50051}}
			p.Containers[1].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 50051}}}
		}, ""},
		// Envoy's admin is a Unix socket too: 9901 is free.
		"server on 9901": {func(p *corev1.PodSpec) {
			p.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 9901}}
			p.Containers[0].StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9901}}}
		}, ""},
		"grpc probe of the listener": {func(p *corev1.PodSpec) {
			p.Containers[0].StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 10000}}}
		}, "port 10000, which is envoy's listener"},
		"UDP on the same number": {func(p *corev1.PodSpec) {
			p.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 10000, Protocol: corev1.ProtocolUDP}}
		}, ""},
		"other ports, named probe": {func(p *corev1.PodSpec) {
			p.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
			p.Containers[0].ReadinessProbe = httpProbeOn(intstr.FromString("http"))
		}, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := appPod()
			tt.change(&p.Spec)
			_, err := Pod(&p.ObjectMeta, &p.Spec, Workload{Name: "chat"}, Config{})
			if tt.says == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "port collision") || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v, want a port collision saying %s", err, tt.says)
			}
		})
	}

	// The webhook refuses such a pod with the reason.
	h, _ := NewWebhook(Config{}, nil)
	pod := webhookPod(nil)
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 15080}}
	_, resp := postReview(t, h, "/namespace", reviewOf(t, admissionv1.Create, podKind, pod))
	if resp == nil || resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, "port collision") {
		t.Fatalf("webhook answer %+v", resp)
	}
}

func istioInitContainer(name string, native bool) corev1.Container {
	c := corev1.Container{Name: name, Image: "istio/proxyv2"}
	if native {
		c.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
	}
	return c
}

// Istio's containers stay in front of Tollgate's, in the order Istio's
// injector gives them, whether istio-proxy is a native sidecar or not.
func TestInjectOrdersAfterIstio(t *testing.T) {
	tests := map[string]struct {
		inits      []corev1.Container
		proxyInApp bool
		want       string
	}{
		"native istio-proxy": {[]corev1.Container{istioInitContainer("istio-init", false), istioInitContainer("istio-proxy", true), {Name: "migrate", Image: "app"}}, false,
			"istio-init,istio-proxy,tollgate-bootstrap,tollgate,envoy,migrate"},
		"native with CNI": {[]corev1.Container{istioInitContainer("istio-validation", false), istioInitContainer("istio-proxy", true), {Name: "migrate", Image: "app"}}, false,
			"istio-validation,istio-proxy,tollgate-bootstrap,tollgate,envoy,migrate"},
		"classic istio-proxy, CNI": {[]corev1.Container{istioInitContainer("istio-validation", false), {Name: "migrate", Image: "app"}}, true,
			"istio-validation,tollgate-bootstrap,tollgate,envoy,migrate"},
		"classic istio-proxy, istio-init last": {[]corev1.Container{{Name: "migrate", Image: "app"}, istioInitContainer("istio-init", false)}, true,
			"tollgate-bootstrap,tollgate,envoy,migrate,istio-init"},
		"no istio": {[]corev1.Container{{Name: "migrate", Image: "app"}}, false, "tollgate-bootstrap,tollgate,envoy,migrate"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			before := appPod()
			before.Spec.InitContainers = tt.inits
			if tt.proxyInApp {
				before.Spec.Containers = append(before.Spec.Containers, istioInitContainer("istio-proxy", false))
			}
			after := before.DeepCopy()
			if _, err := Pod(&after.ObjectMeta, &after.Spec, Workload{Name: "chat"}, Config{}); err != nil {
				t.Fatal(err)
			}
			if got := initNames(&after.Spec); got != tt.want {
				t.Fatalf("init containers %s, want %s", got, tt.want)
			}
			// The webhook's patch gives the same order.
			ops, err := Patch(before, after)
			if err != nil {
				t.Fatal(err)
			}
			doc, _ := toJSONValue(before)
			got, err := applyPatch(doc, "", ops)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := toJSONValue(after)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("the patch gives another pod: %v", ops)
			}
		})
	}
}

// Under Istio the injector warns about probes STRICT mTLS would refuse,
// unless the pod keeps the sidecars' probe ports out of the mesh.
func TestInjectWarnsAboutIstioProbes(t *testing.T) {
	h, _ := NewWebhook(Config{}, nil)
	pod := webhookPod(nil)
	pod.Spec.InitContainers = []corev1.Container{istioInitContainer("istio-init", false), istioInitContainer("istio-proxy", true)}
	_, resp := postReview(t, h, "/namespace", reviewOf(t, admissionv1.Create, podKind, pod))
	if resp == nil || !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("not injected: %+v", resp)
	}
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "traffic.sidecar.istio.io/excludeInboundPorts") || !strings.Contains(resp.Warnings[0], "15080,9902") {
		t.Fatalf("warnings %q", resp.Warnings)
	}

	pod.Annotations = map[string]string{"traffic.sidecar.istio.io/excludeInboundPorts": "9902, 15080"}
	if _, resp := postReview(t, h, "/namespace", reviewOf(t, admissionv1.Create, podKind, pod)); resp == nil || len(resp.Warnings) != 0 {
		t.Fatalf("warnings with the ports excluded: %+v", resp)
	}
	if _, resp := postReview(t, h, "/namespace", reviewOf(t, admissionv1.Create, podKind, webhookPod(nil))); resp == nil || len(resp.Warnings) != 0 {
		t.Fatalf("warnings without Istio: %+v", resp)
	}
}

// `tollgate inject` says the same on standard error.
func TestInjectNotesIstioProbes(t *testing.T) {
	src := []byte(`apiVersion: v1
kind: Pod
metadata: {name: meshed}
spec:
  initContainers:
  - {name: istio-init, image: istio/proxyv2}
  - {name: istio-proxy, image: istio/proxyv2, restartPolicy: Always}
  containers:
  - {name: app, image: app}
`)
	var notes []string
	out, err := Manifests(src, Config{}, func(n string) { notes = append(notes, n) })
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "Pod meshed: warning:") || !strings.Contains(notes[0], "excludeInboundPorts") {
		t.Fatalf("notes %q", notes)
	}
	if !strings.Contains(string(out), "name: istio-proxy") || strings.Index(string(out), "name: istio-proxy") > strings.Index(string(out), "name: tollgate-bootstrap") {
		t.Fatalf("istio-proxy is not ahead of the sidecars:\n%s", out)
	}
}
