package inject

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func appPod() *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "chat"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "migrate", Image: "app"}, {Name: "warm-cache", Image: "app"}},
			Containers: []corev1.Container{
				{Name: "web", Image: "app", Env: []corev1.EnvVar{{Name: "OPENAI_BASE_URL", Value: "http://vllm:8000/v1"}}},
				{Name: "worker", Image: "app"},
			},
		},
	}
}

func initNames(spec *corev1.PodSpec) string {
	var names []string
	for _, c := range spec.InitContainers {
		names = append(names, c.Name)
	}
	return strings.Join(names, ",")
}

func envValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func TestInjectPodTwiceIsANoOp(t *testing.T) {
	p := appPod()
	changed, err := Pod(&p.ObjectMeta, &p.Spec, Workload{Kind: "Deployment", Name: "chat"}, Config{})
	if err != nil || !changed {
		t.Fatalf("first injection: changed=%v err=%v", changed, err)
	}
	once := p.DeepCopy()
	changed, err = Pod(&p.ObjectMeta, &p.Spec, Workload{Kind: "Deployment", Name: "chat"}, Config{Image: "other"})
	if err != nil || changed {
		t.Fatalf("second injection: changed=%v err=%v", changed, err)
	}
	if !equality.Semantic.DeepEqual(once, p) {
		t.Fatal("the second injection changed the pod")
	}
	if r, _ := SkipReason(&p.ObjectMeta, &p.Spec); r != "already injected" {
		t.Fatalf("SkipReason = %q", r)
	}
}

func TestInjectKeepsAppInitContainersAfterTheSidecars(t *testing.T) {
	p := appPod()
	if _, err := Pod(&p.ObjectMeta, &p.Spec, Workload{}, Config{}); err != nil {
		t.Fatal(err)
	}
	if got, want := initNames(&p.Spec), "tollgate-bootstrap,tollgate,envoy,migrate,warm-cache"; got != want {
		t.Fatalf("init containers %s, want %s", got, want)
	}
	for _, c := range p.Spec.InitContainers {
		native := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		if want := c.Name == ProcessorContainer || c.Name == EnvoyContainer; native != want {
			t.Errorf("%s: native sidecar = %v, want %v", c.Name, native, want)
		}
		if _, ok := envValue(c, "OPENAI_BASE_URL"); ok {
			t.Errorf("init container %s got OPENAI_BASE_URL", c.Name)
		}
	}
}

func TestInjectBaseURLs(t *testing.T) {
	p := appPod()
	if _, err := Pod(&p.ObjectMeta, &p.Spec, Workload{}, Config{}); err != nil {
		t.Fatal(err)
	}
	web, worker := p.Spec.Containers[0], p.Spec.Containers[1]
	if v, _ := envValue(web, "OPENAI_BASE_URL"); v != "http://vllm:8000/v1" {
		t.Errorf("an explicit OPENAI_BASE_URL was changed to %q", v)
	}
	if v, _ := envValue(web, "ANTHROPIC_BASE_URL"); v != "http://127.0.0.1:10000" {
		t.Errorf("web ANTHROPIC_BASE_URL = %q", v)
	}
	if v, _ := envValue(worker, "OPENAI_BASE_URL"); v != "http://127.0.0.1:10000/v1" {
		t.Errorf("worker OPENAI_BASE_URL = %q", v)
	}

	kept := appPod()
	kept.Annotations = map[string]string{AnnotationKeepBaseURLs: "true"}
	if _, err := Pod(&kept.ObjectMeta, &kept.Spec, Workload{}, Config{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := envValue(kept.Spec.Containers[1], "OPENAI_BASE_URL"); ok {
		t.Error("keep-base-urls: OPENAI_BASE_URL was set")
	}
}

func TestInjectWorkloadIdentity(t *testing.T) {
	p := appPod()
	cfg := Config{Env: []corev1.EnvVar{{Name: "TOLLGATE_REDIS", Value: "redis://from-env:6379"}, {Name: "EXTRA", Value: "1"}}, Redis: "redis://cfg:6379"}
	if _, err := Pod(&p.ObjectMeta, &p.Spec, Workload{Kind: "Deployment", Name: "chat"}, cfg); err != nil {
		t.Fatal(err)
	}
	proc := p.Spec.InitContainers[1]
	if v, _ := envValue(proc, EnvWorkloadName); v != "chat" {
		t.Errorf("%s = %q", EnvWorkloadName, v)
	}
	if v, _ := envValue(proc, EnvWorkloadLabelsFile); v != LabelsFile {
		t.Errorf("%s = %q", EnvWorkloadLabelsFile, v)
	}
	if v, _ := envValue(proc, "TOLLGATE_REDIS"); v != "redis://from-env:6379" {
		t.Errorf("Config.Env did not replace TOLLGATE_REDIS: %q", v)
	}
	if v, _ := envValue(proc, "EXTRA"); v != "1" {
		t.Errorf("EXTRA = %q", v)
	}
	for name, path := range map[string]string{EnvWorkloadNamespace: "metadata.namespace", EnvWorkloadServiceAccount: "spec.serviceAccountName"} {
		i := envIndex(proc.Env, name)
		if i < 0 || proc.Env[i].ValueFrom == nil || proc.Env[i].ValueFrom.FieldRef.FieldPath != path {
			t.Errorf("%s: want fieldRef %s", name, path)
		}
	}

	named := appPod()
	named.Annotations = map[string]string{AnnotationWorkloadName: "chat-v2"}
	if _, err := Pod(&named.ObjectMeta, &named.Spec, Workload{Kind: "Pod", Name: "chat-5d8f"}, Config{}); err != nil {
		t.Fatal(err)
	}
	if v, _ := envValue(named.Spec.InitContainers[1], EnvWorkloadName); v != "chat-v2" {
		t.Errorf("workload-name annotation: %s = %q", EnvWorkloadName, v)
	}
}

func TestInjectOptOutWins(t *testing.T) {
	for _, meta := range []metav1.ObjectMeta{
		{Annotations: map[string]string{KeyInject: "false"}, Labels: map[string]string{KeyInject: "enabled"}},
		{Annotations: map[string]string{KeyInject: "disabled"}},
		{Labels: map[string]string{KeyInject: "false"}},
	} {
		p := appPod()
		p.ObjectMeta = meta
		before := p.DeepCopy()
		changed, err := Pod(&p.ObjectMeta, &p.Spec, Workload{}, Config{})
		if err != nil || changed || !equality.Semantic.DeepEqual(before, p) {
			t.Errorf("%v: changed=%v err=%v", meta, changed, err)
		}
		if Requested(&meta, true) {
			t.Errorf("%v: requested although opted out, even with the namespace selected", meta)
		}
	}
}

func TestInjectRequested(t *testing.T) {
	tests := []struct {
		name              string
		labels, annots    map[string]string
		namespaceSelected bool
		want              bool
	}{
		{"nothing", nil, nil, false, false},
		{"namespace", nil, nil, true, true},
		{"pod label", map[string]string{KeyInject: "enabled"}, nil, false, true},
		{"pod annotation enabled", nil, map[string]string{KeyInject: "enabled"}, false, true},
		{"pod annotation true", nil, map[string]string{KeyInject: "true"}, false, true},
		{"other value", nil, map[string]string{KeyInject: "maybe"}, false, false},
		{"opt-out beats namespace", nil, map[string]string{KeyInject: "false"}, true, false},
	}
	for _, tt := range tests {
		meta := metav1.ObjectMeta{Labels: tt.labels, Annotations: tt.annots}
		if got := Requested(&meta, tt.namespaceSelected); got != tt.want {
			t.Errorf("%s: Requested = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestInjectRefusesCollisionsAndHalfInjectedPods(t *testing.T) {
	tests := map[string]func(p *corev1.PodTemplateSpec){
		"app container named envoy": func(p *corev1.PodTemplateSpec) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: EnvoyContainer})
		},
		"init container named tollgate": func(p *corev1.PodTemplateSpec) {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: ProcessorContainer})
		},
		"volume name taken": func(p *corev1.PodTemplateSpec) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: podInfoVolume})
		},
		"marked but sidecars gone": func(p *corev1.PodTemplateSpec) {
			p.Annotations = map[string]string{AnnotationStatus: StatusInjected}
		},
		"no containers": func(p *corev1.PodTemplateSpec) { p.Spec.Containers = nil },
	}
	for name, breakIt := range tests {
		p := appPod()
		breakIt(p)
		changed, err := Pod(&p.ObjectMeta, &p.Spec, Workload{}, Config{})
		if err == nil || changed {
			t.Errorf("%s: changed=%v err=%v, want an error", name, changed, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestInjectSkipsHostNetwork(t *testing.T) {
	p := appPod()
	p.Spec.HostNetwork = true
	changed, err := Pod(&p.ObjectMeta, &p.Spec, Workload{}, Config{})
	if err != nil || changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
}

func TestInjectRejectsBadConfig(t *testing.T) {
	p := appPod()
	_, err := Pod(&p.ObjectMeta, &p.Spec, Workload{}, Config{Redis: "localhost:6379", ImagePullPolicy: "Sometimes"})
	if err == nil || !strings.Contains(err.Error(), "redis") || !strings.Contains(err.Error(), "image-pull-policy") {
		t.Fatalf("want both problems reported, got %v", err)
	}
}

func TestInjectHashFollowsTheConfiguration(t *testing.T) {
	hash := func(cfg Config) string {
		p := appPod()
		if _, err := Pod(&p.ObjectMeta, &p.Spec, Workload{Name: "chat"}, cfg); err != nil {
			t.Fatal(err)
		}
		return p.Annotations[AnnotationTemplateHash]
	}
	if a, b := hash(Config{}), hash(Config{}); a != b || a == "" {
		t.Fatalf("same configuration, hashes %q and %q", a, b)
	}
	if hash(Config{}) == hash(Config{Image: "registry.example.com/tollgate:1"}) {
		t.Fatal("a different image kept the hash")
	}
}
