package helm_test

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The objects only one side has, and why. Everything else is on both and
// compared whole: containers, images, commands, args, ports, probes,
// lifecycle, resources, security contexts, volumes, selectors, webhook
// rules and failure policy, certificates, network policy, alerts.
var (
	onlyKustomize = map[string]string{
		"v1 Namespace/tollgate": "Helm makes the release's namespace (helm install -n tollgate --create-namespace); a chart does not own it",
	}
	onlyChart = map[string]string{
		"autoscaling/v2 HorizontalPodAutoscaler/tollgate-gateway": "the gateway scales on CPU (gateway.autoscaling)",
		"monitoring.coreos.com/v1 PodMonitor/tollgate-gateway":    "scrapes the gateway's Tollgate and Envoy (k8s/ leaves scraping to you)",
		"monitoring.coreos.com/v1 PodMonitor/tollgate-injector":   "scrapes the injector's audit",
		"v1 ConfigMap/tollgate-injector":                          "the injector's --config: injected processors read the stores' URLs from a Secret in their namespace",
	}
	// ConfigMaps kustomize generates from files: only their data compares
	// (kustomize adds a content hash to the name and no labels).
	generated = []string{"tollgate-envoy", "tollgate-policy", "tollgate-prompts"}
)

// TestChartMatchesKustomize: installed as release "tollgate" (whose names
// then carry no other prefix: see TestReleaseNames for the others), the
// chart with its default values makes the kustomize bases' objects, with
// the differences written out below, each with its reason.
func TestChartMatchesKustomize(t *testing.T) {
	chart := render(t, "tollgate", "tollgate", nil)
	kust := loadKustomize(t)
	index := func(objs []object) map[string]object {
		m := map[string]object{}
		for _, o := range objs {
			key := o.kind + "/" + o.name
			if _, dup := m[key]; dup {
				t.Errorf("%s twice", key)
			}
			m[key] = o
		}
		return m
	}
	k, c := index(kust), index(chart.objects)
	for _, key := range sortedKeys(k) {
		if _, ok := c[key]; !ok && onlyKustomize[key] == "" {
			t.Errorf("%s (k8s/%s) is not in the chart", key, k[key].source)
		}
	}
	for _, key := range sortedKeys(c) {
		if _, ok := k[key]; !ok && onlyChart[key] == "" {
			t.Errorf("%s (%s) is in the chart only; add it to the kustomize base or to onlyChart with a reason", key, c[key].source)
		}
	}
	for key := range onlyChart {
		if _, ok := c[key]; !ok {
			t.Errorf("onlyChart lists %s, which the chart does not make", key)
		}
	}
	for key := range onlyKustomize {
		if _, ok := k[key]; !ok {
			t.Errorf("onlyKustomize lists %s, which k8s/ does not have", key)
		}
	}

	for _, key := range sortedKeys(k) {
		ko, ok := k[key]
		co, inChart := c[key]
		if !ok || !inChart {
			continue
		}
		want, got := ko.obj, co.obj
		if cm, ok := got.(*corev1.ConfigMap); ok && slices.Contains(generated, cm.Name) {
			cm.Labels = nil
		}
		if fix := differences[key]; fix != nil {
			fix(t, want, got)
		}
		if d := cmp.Diff(generic(t, want), stripHelmLabels(generic(t, got), chart.name)); d != "" {
			t.Errorf("%s: chart (+) and k8s/%s (-) differ:\n%s", key, ko.source, d)
		}
	}
}

// differences turn a kustomize object into what the chart makes of it, or
// set aside what the chart adds; each says why.
var differences = map[string]func(t *testing.T, kust, chart any){
	"apps/v1 Deployment/tollgate-gateway": func(t *testing.T, kust, chart any) {
		k, c := kust.(*appsv1.Deployment), chart.(*appsv1.Deployment)
		// The autoscaler owns the count (an upgrade must not reset it).
		k.Spec.Replicas = nil
		// kustomize rolls the pods with hashed ConfigMap names; the chart
		// with a checksum of them (TestConfigChangeRollsPods).
		delete(c.Spec.Template.Annotations, "checksum/config")
		if len(c.Spec.Template.Annotations) == 0 {
			c.Spec.Template.Annotations = nil
		}
		tg := container(t, &k.Spec.Template.Spec, "tollgate")
		// The stores' URLs carry passwords: from the release's Secret, not
		// from the settings ConfigMap; the API key from that Secret too.
		var env []corev1.EnvVar
		env = append(env, secretEnv("TOLLGATE_REDIS", "tollgate", "redis-url"), secretEnv("TOLLGATE_CLICKHOUSE", "tollgate", "clickhouse-url"))
		for _, e := range tg.Env {
			if e.Name == "TOLLGATE_API_KEY" {
				e = secretEnv("TOLLGATE_API_KEY", "tollgate", "api-key")
			}
			env = append(env, e)
		}
		tg.Env = env
	},
	"v1 ConfigMap/tollgate-config": func(t *testing.T, kust, chart any) {
		k := kust.(*corev1.ConfigMap)
		// In the Secret instead (above).
		delete(k.Data, "TOLLGATE_REDIS")
		delete(k.Data, "TOLLGATE_CLICKHOUSE")
	},
	// k8s/migrate's Job and its ServiceAccount are Helm hooks here, run
	// before every install and upgrade (TestMigrationHook): you do not
	// delete and re-apply the Job by hand.
	"batch/v1 Job/tollgate-migrate":      stripHookAnnotations,
	"v1 ServiceAccount/tollgate-migrate": stripHookAnnotations,
	"apps/v1 Deployment/tollgate-injector": func(t *testing.T, kust, chart any) {
		k, c := kust.(*appsv1.Deployment), chart.(*appsv1.Deployment)
		delete(c.Spec.Template.Annotations, "checksum/config")
		if len(c.Spec.Template.Annotations) == 0 {
			c.Spec.Template.Annotations = nil
		}
		spec := &k.Spec.Template.Spec
		w := container(t, spec, "webhook")
		// The sidecars run the release's image (image.tag), and the stores'
		// URLs reach them through the --config file (the ConfigMap
		// tollgate-injector), as references to a Secret in their own
		// namespace, instead of the gateway's settings copied into pods.
		w.Args = append(w.Args, "--image=ghcr.io/tollgate-dev/tollgate:latest", "--config=/etc/tollgate/inject/config.yaml")
		w.EnvFrom = nil
		w.VolumeMounts = append(w.VolumeMounts, corev1.VolumeMount{Name: "config", MountPath: "/etc/tollgate/inject", ReadOnly: true})
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "tollgate-injector"}},
		}})
	},
}

func stripHookAnnotations(t *testing.T, kust, chart any) {
	meta := chart.(metav1.ObjectMetaAccessor).GetObjectMeta()
	a := meta.GetAnnotations()
	for k := range a {
		if strings.HasPrefix(k, "helm.sh/hook") {
			delete(a, k)
		}
	}
	if len(a) == 0 {
		a = nil
	}
	meta.SetAnnotations(a)
}

func secretEnv(name, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key,
	}}}
}

func container(t *testing.T, spec *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

// generic is an object as JSON values, the form both sides compare in.
func generic(t *testing.T, obj any) any {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// stripHelmLabels removes the labels the chart adds to every label set
// (metadata, selectors, pod templates): the release, which keeps two
// releases' selectors apart, and Helm's bookkeeping.
func stripHelmLabels(v any, releaseName string) any {
	switch v := v.(type) {
	case map[string]any:
		if v["app.kubernetes.io/instance"] == releaseName {
			delete(v, "app.kubernetes.io/instance")
		}
		delete(v, "app.kubernetes.io/managed-by")
		delete(v, "helm.sh/chart")
		for k, e := range v {
			v[k] = stripHelmLabels(e, releaseName)
		}
	case []any:
		for i, e := range v {
			v[i] = stripHelmLabels(e, releaseName)
		}
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
