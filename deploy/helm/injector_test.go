package helm_test

import (
	"encoding/base64"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/inject"
)

// injectorConfig decodes the webhook's --config file as `tollgate webhook`
// does (strictly, into inject.Config) and applies its image flags.
func injectorConfig(t *testing.T, r *release) inject.Config {
	t.Helper()
	prefix := r.name + "-tollgate"
	if strings.Contains(r.name, "tollgate") {
		prefix = r.name
	}
	d := one[appsv1.Deployment](t, r.objects, prefix+"-injector")
	w := container(t, &d.Spec.Template.Spec, "webhook")
	var path string
	var cfg inject.Config
	for _, a := range w.Args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			path = v
		}
	}
	cmName, key := mountedFile(t, &d.Spec.Template.Spec, w, path)
	data := one[corev1.ConfigMap](t, r.objects, cmName).Data[key]
	if err := yaml.UnmarshalStrict([]byte(data), &cfg); err != nil {
		t.Fatalf("the injector's --config %s: %v\n%s", path, err, data)
	}
	for _, a := range w.Args {
		if v, ok := strings.CutPrefix(a, "--image="); ok {
			cfg.Image = v
		}
		if v, ok := strings.CutPrefix(a, "--envoy-image="); ok {
			cfg.EnvoyImage = v
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the injector's configuration: %v", err)
	}
	return cfg
}

// mountedFile returns the ConfigMap and key a container reads file from.
func mountedFile(t *testing.T, spec *corev1.PodSpec, c *corev1.Container, file string) (configMap, key string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		dir := strings.TrimSuffix(m.MountPath, "/") + "/"
		if !strings.HasPrefix(file, dir) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				return v.ConfigMap.Name, strings.TrimPrefix(file, dir)
			}
		}
	}
	t.Fatalf("%s: %s is not in a mounted ConfigMap", c.Name, file)
	return "", ""
}

// TestInjectedPodsReadStoresFromTheirNamespace: a pod the chart's injector
// injects runs the release's images and takes TOLLGATE_REDIS and
// TOLLGATE_CLICKHOUSE from the Secret injector.storesSecret in its own
// namespace: the pod spec names the Secret, it never holds the URLs.
func TestInjectedPodsReadStoresFromTheirNamespace(t *testing.T) {
	r := render(t, "tollgate", "tollgate", vals("image.tag", "v0.3.0", "injector.storesSecret", "llm-stores"))
	cfg := injectorConfig(t, r)
	app := `apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout, namespace: team-a}
spec:
  selector: {matchLabels: {app: checkout}}
  template:
    metadata: {labels: {app: checkout}}
    spec:
      containers:
      - {name: app, image: example/checkout:1}
`
	out, err := inject.Manifests([]byte(app), cfg, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(out, &d); err != nil {
		t.Fatal(err)
	}
	var tg *corev1.Container
	for i, c := range d.Spec.Template.Spec.InitContainers {
		if c.Name == "tollgate" {
			tg = &d.Spec.Template.Spec.InitContainers[i]
		}
	}
	if tg == nil {
		t.Fatalf("no tollgate sidecar injected:\n%s", out)
	}
	if tg.Image != "ghcr.io/tollgate-dev/tollgate:v0.3.0" {
		t.Errorf("the sidecar runs %s, want the release's image", tg.Image)
	}
	for _, name := range []string{"TOLLGATE_REDIS", "TOLLGATE_CLICKHOUSE"} {
		var found bool
		for _, e := range tg.Env {
			if e.Name != name {
				continue
			}
			found = true
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "llm-stores" {
				t.Errorf("%s: %+v, want from Secret llm-stores", name, e)
			}
		}
		if !found {
			t.Errorf("the sidecar has no %s", name)
		}
	}

	r = render(t, "tollgate", "tollgate", vals("injector.storesSecret", ""))
	if cfg := injectorConfig(t, r); len(cfg.Env) != 0 {
		t.Errorf("injector.storesSecret empty: env %v, want none", cfg.Env)
	}
}

// TestInjectorCertificates: by default cert-manager issues the certificate
// the webhook mounts, for the name the API server calls, and fills the
// caBundle; with self-supplied certificates the chart mounts your Secret
// and writes your CA into both webhooks, and makes no cert-manager object
// (the API server would refuse their kinds without its CRDs).
func TestInjectorCertificates(t *testing.T) {
	r := render(t, "edge", "llm", nil)
	mwc := one[admissionv1.MutatingWebhookConfiguration](t, r.objects, "edge-tollgate-injector")
	if got := mwc.Annotations["cert-manager.io/inject-ca-from"]; got != "llm/edge-tollgate-injector-tls" {
		t.Errorf("inject-ca-from %q", got)
	}
	cert := one[certificate](t, r.objects, "edge-tollgate-injector-tls")
	d := one[appsv1.Deployment](t, r.objects, "edge-tollgate-injector")
	if s := secretVolume(&d.Spec.Template.Spec, "tls"); s != cert.Spec.SecretName {
		t.Errorf("the webhook mounts Secret %q, cert-manager writes %q", s, cert.Spec.SecretName)
	}
	for _, h := range mwc.Webhooks {
		want := h.ClientConfig.Service.Name + "." + h.ClientConfig.Service.Namespace + ".svc"
		if !containsStr(cert.Spec.DNSNames, want) {
			t.Errorf("certificate for %v, the API server calls %s", cert.Spec.DNSNames, want)
		}
		if len(h.ClientConfig.CABundle) != 0 {
			t.Errorf("webhook %s: a caBundle would overwrite cert-manager's on every upgrade", h.Name)
		}
	}

	r = render(t, "edge", "llm", variants["own TLS"])
	for _, o := range r.objects {
		if strings.HasPrefix(o.kind, "cert-manager.io/") {
			t.Errorf("self-supplied certificates: the chart still makes %s %s", o.kind, o.name)
		}
	}
	mwc = one[admissionv1.MutatingWebhookConfiguration](t, r.objects, "edge-tollgate-injector")
	if _, ok := mwc.Annotations["cert-manager.io/inject-ca-from"]; ok {
		t.Error("self-supplied certificates: the inject-ca-from annotation is left")
	}
	ca, _ := base64.StdEncoding.DecodeString(variants["own TLS"]["injector"].(map[string]any)["tls"].(map[string]any)["caBundle"].(string))
	for _, h := range mwc.Webhooks {
		if string(h.ClientConfig.CABundle) != string(ca) {
			t.Errorf("webhook %s: caBundle %q, want injector.tls.caBundle", h.Name, h.ClientConfig.CABundle)
		}
	}
	d = one[appsv1.Deployment](t, r.objects, "edge-tollgate-injector")
	if s := secretVolume(&d.Spec.Template.Spec, "tls"); s != "injector-tls" {
		t.Errorf("the webhook mounts Secret %q, want injector.tls.existingSecret", s)
	}
	for _, missing := range []string{"caBundle", "existingSecret"} {
		v := vals("injector.certManager.enabled", false, "injector.tls.existingSecret", "injector-tls", "injector.tls.caBundle", "TFMwdExTMUNSVWRKVGk=")
		v["injector"].(map[string]any)["tls"].(map[string]any)[missing] = ""
		if _, err := tryRender("edge", "llm", v); err == nil || !strings.Contains(err.Error(), "injector.tls."+missing) {
			t.Errorf("without cert-manager and injector.tls.%s: %v, want an error naming it", missing, err)
		}
	}
}

func secretVolume(spec *corev1.PodSpec, name string) string {
	for _, v := range spec.Volumes {
		if v.Name == name && v.Secret != nil {
			return v.Secret.SecretName
		}
	}
	return ""
}

// TestInjectorFailurePolicy: Fail by default, as in k8s/injector; Ignore
// when asked; nothing else.
func TestInjectorFailurePolicy(t *testing.T) {
	for _, policy := range []string{"Fail", "Ignore"} {
		r := render(t, "tollgate", "tollgate", vals("injector.failurePolicy", policy))
		for _, h := range one[admissionv1.MutatingWebhookConfiguration](t, r.objects, "tollgate-injector").Webhooks {
			if h.FailurePolicy == nil || string(*h.FailurePolicy) != policy {
				t.Errorf("injector.failurePolicy %s: webhook %s has %v", policy, h.Name, h.FailurePolicy)
			}
		}
	}
	if _, err := tryRender("tollgate", "tollgate", vals("injector.failurePolicy", "Open")); err == nil {
		t.Error("injector.failurePolicy Open: accepted")
	}
}
