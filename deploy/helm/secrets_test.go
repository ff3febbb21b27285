package helm_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/tollgate-dev/tollgate/internal/app"
)

// variants are the values the tests render besides the defaults.
var variants = map[string]map[string]any{
	"defaults":       nil,
	"own TLS":        vals("injector.certManager.enabled", false, "injector.tls.existingSecret", "injector-tls", "injector.tls.caBundle", "TFMwdExTMUNSVWRKVGk="),
	"no autoscaler":  vals("gateway.autoscaling.enabled", false),
	"no monitoring":  vals("monitoring.enabled", false),
	"no migration":   vals("migration.enabled", false),
	"gateway only":   vals("injector.enabled", false),
	"injector only":  vals("gateway.enabled", false, "migration.enabled", false),
	"own DDL secret": vals("migration.existingSecret", "tollgate-ddl", "migration.clickhouseKey", "clickhouse"),
}

// podSpecs returns every pod template of a release, hooks included.
func podSpecs(objects []object) map[string]*corev1.PodSpec {
	out := map[string]*corev1.PodSpec{}
	for _, d := range of[appsv1.Deployment](objects) {
		out[d.Name] = &d.Spec.Template.Spec
	}
	for _, j := range of[batchv1.Job](objects) {
		out[j.Name] = &j.Spec.Template.Spec
	}
	return out
}

var urlWithSecret = regexp.MustCompile(`[a-z]+://[^/\s@]*@|(?i)password`)

// TestNoSecretInConfigMapsOrArgs: the stores' URLs (which carry their
// passwords) and the API key reach the pods from Secrets only: never a
// ConfigMap, an argument or a plain env value, in any variant.
func TestNoSecretInConfigMapsOrArgs(t *testing.T) {
	secretVars := []string{"TOLLGATE_REDIS", "TOLLGATE_CLICKHOUSE", "TOLLGATE_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
	for name, values := range variants {
		r := render(t, "tollgate", "tollgate", values)
		for _, cm := range of[corev1.ConfigMap](r.objects) {
			for k, v := range cm.Data {
				for _, s := range secretVars {
					if k == s {
						t.Errorf("%s: ConfigMap %s holds %s", name, cm.Name, k)
					}
				}
				if cm.Name != "tollgate-envoy" && urlWithSecret.MatchString(v) {
					t.Errorf("%s: ConfigMap %s key %s looks like a credential: %q", name, cm.Name, k, v)
				}
			}
		}
		for pod, spec := range podSpecs(r.objects) {
			for _, c := range spec.Containers {
				for _, a := range append(append([]string{}, c.Command...), c.Args...) {
					if strings.Contains(a, "://") || urlWithSecret.MatchString(a) {
						t.Errorf("%s: %s/%s: argument %q: a store's URL belongs in a Secret", name, pod, c.Name, a)
					}
				}
				for _, e := range c.Env {
					if !containsStr(secretVars, e.Name) {
						continue
					}
					if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
						t.Errorf("%s: %s/%s: %s must come from a Secret", name, pod, c.Name, e.Name)
					}
				}
			}
		}
	}
	// Every setting that is a secret is refused in gateway.settings (it
	// would land in the ConfigMap), even with a value that looks harmless.
	secretSettings := []string{"TOLLGATE_REDIS", "TOLLGATE_CLICKHOUSE", "TOLLGATE_API_KEY",
		"TOLLGATE_SEMANTIC_CACHE_API_KEY", "TOLLGATE_PROMPT_LINK_SECRET"}
	for _, key := range secretSettings {
		_, err := tryRender("tollgate", "tollgate", vals("gateway.settings", map[string]any{key: "s3cr3t"}))
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "Secret") {
			t.Errorf("gateway.settings.%s: %v, want an error pointing to the Secret", key, err)
		}
	}
	// A secret setting added later is refused by its name's shape, and
	// a URL carrying credentials by its value.
	for key, value := range map[string]string{"TOLLGATE_WEBHOOK_TOKEN": "t", "TOLLGATE_SOMETHING_PASSWORD": "p",
		"TOLLGATE_OTEL_ENDPOINT": "https://user:pw@otel.example.com"} {
		if _, err := tryRender("tollgate", "tollgate", vals("gateway.settings", map[string]any{key: value})); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("gateway.settings.%s=%s: %v, want a render error", key, value, err)
		}
	}
	// The list above is complete: every setting of docs/configuration.md
	// named like a secret is in it, but the two that name where a key is.
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range regexp.MustCompile(`TOLLGATE_[A-Z0-9_]*_(KEY|SECRET|PASSWORD|TOKEN)\b`).FindAllString(string(doc), -1) {
		if !containsStr(secretSettings, key) && key != "TOLLGATE_PROVIDER_KEY" && key != "TOLLGATE_TLS_KEY" {
			t.Errorf("%s (docs/configuration.md) looks like a secret setting: refuse it in gateway.settings and offer it from secrets.existingSecret", key)
		}
	}
	// Those two are references, not secrets: allowed.
	if _, err := tryRender("tollgate", "tollgate", vals("gateway.settings", map[string]any{"TOLLGATE_PROVIDER_KEY": "anthropic=env:ANTHROPIC_API_KEY"})); err != nil {
		t.Errorf("TOLLGATE_PROVIDER_KEY (env:VAR references): %v", err)
	}
}

// TestOtherSecretsFromTheSecret: the semantic cache's API key and the
// prompt-link secret come from keys of secrets.existingSecret when those
// keys are named, and are not set otherwise.
func TestOtherSecretsFromTheSecret(t *testing.T) {
	gw := func(values map[string]any) *corev1.Container {
		r := render(t, "tollgate", "tollgate", values)
		return container(t, &one[appsv1.Deployment](t, r.objects, "tollgate-gateway").Spec.Template.Spec, "tollgate")
	}
	c := gw(vals("secrets.existingSecret", "llm-gateway", "secrets.semanticCacheAPIKeyKey", "embeddings-key", "secrets.promptLinkSecretKey", "prompt-links"))
	for env, key := range map[string]string{"TOLLGATE_SEMANTIC_CACHE_API_KEY": "embeddings-key", "TOLLGATE_PROMPT_LINK_SECRET": "prompt-links"} {
		if ref := envSecret(c.Env, env); ref == nil || ref.Name != "llm-gateway" || ref.Key != key {
			t.Errorf("%s from %+v, want Secret llm-gateway key %s", env, ref, key)
		}
	}
	for _, e := range gw(nil).Env {
		if e.Name == "TOLLGATE_SEMANTIC_CACHE_API_KEY" || e.Name == "TOLLGATE_PROMPT_LINK_SECRET" {
			t.Errorf("defaults set %s", e.Name)
		}
	}
}

// TestGatewaySecrets: the gateway's processor cannot start without its
// API key and stores (required keys of secrets.existingSecret), and the
// provider keys stay optional.
func TestGatewaySecrets(t *testing.T) {
	r := render(t, "tollgate", "tollgate", vals("secrets.existingSecret", "llm-gateway"))
	c := container(t, &one[appsv1.Deployment](t, r.objects, "tollgate-gateway").Spec.Template.Spec, "tollgate")
	for _, want := range []struct {
		env, secret, key string
		optional         bool
	}{
		{"TOLLGATE_REDIS", "llm-gateway", "redis-url", false},
		{"TOLLGATE_CLICKHOUSE", "llm-gateway", "clickhouse-url", false},
		{"TOLLGATE_API_KEY", "llm-gateway", "api-key", false},
		{"OPENAI_API_KEY", "tollgate-provider-keys", "openai-api-key", true},
		{"ANTHROPIC_API_KEY", "tollgate-provider-keys", "anthropic-api-key", true},
	} {
		ref := envSecret(c.Env, want.env)
		if ref == nil || ref.Name != want.secret || ref.Key != want.key || (ref.Optional != nil && *ref.Optional) != want.optional {
			t.Errorf("%s from %+v, want Secret %s key %s (optional %v)", want.env, ref, want.secret, want.key, want.optional)
		}
	}
}

// TestMigrationHook: `tollgate migrate` runs as a Helm hook before every
// install and upgrade, from the release's image, with a ClickHouse URL
// from a Secret of its own, as its own ServiceAccount, which is a hook
// too: a pre-install hook runs before the release's other objects exist.
func TestMigrationHook(t *testing.T) {
	r := render(t, "tollgate", "tollgate", nil)
	o, sa := r.find("batch/v1 Job", "tollgate-migrate"), r.find("v1 ServiceAccount", "tollgate-migrate")
	if o == nil || sa == nil {
		t.Fatal("no migration Job and ServiceAccount")
	}
	for _, h := range []*object{o, sa} {
		if h.hook != "pre-install,pre-upgrade" {
			t.Errorf("%s %s: hook %q, want pre-install,pre-upgrade", h.kind, h.name, h.hook)
		}
	}
	job := o.obj.(*batchv1.Job)
	if w := objectMeta(sa.obj).Annotations["helm.sh/hook-weight"]; w == "" || w[0] != '-' {
		t.Errorf("the ServiceAccount's hook-weight %q: it must come before the Job (weight 0)", w)
	}
	if p := job.Annotations["helm.sh/hook-delete-policy"]; !strings.Contains(p, "before-hook-creation") {
		t.Errorf("hook-delete-policy %q: the next attempt must replace the Job (a Job cannot be changed)", p)
	}
	spec := &job.Spec.Template.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever || job.Spec.BackoffLimit == nil || job.Spec.ActiveDeadlineSeconds == nil {
		t.Errorf("restartPolicy %q, backoffLimit %v, deadline %v: want bounded retries", spec.RestartPolicy, job.Spec.BackoffLimit, job.Spec.ActiveDeadlineSeconds)
	}
	if spec.ServiceAccountName != sa.name || spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("the Job runs as %q (token %v), want the hook ServiceAccount without a token", spec.ServiceAccountName, spec.AutomountServiceAccountToken)
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			t.Errorf("volume %s: ConfigMap %s does not exist yet when a pre-install hook runs", v.Name, v.ConfigMap.Name)
		}
	}
	c := spec.Containers[0]
	gw := container(t, &one[appsv1.Deployment](t, r.objects, "tollgate-gateway").Spec.Template.Spec, "tollgate")
	if len(c.Args) != 1 || c.Args[0] != "migrate" || c.Image != gw.Image {
		t.Errorf("Job runs %s %v, want %s migrate", c.Image, c.Args, gw.Image)
	}
	if ref := envSecret(c.Env, "TOLLGATE_CLICKHOUSE"); ref == nil || ref.Name != "tollgate-clickhouse-migrate" || ref.Key != "url" {
		t.Errorf("TOLLGATE_CLICKHOUSE from %+v, want Secret tollgate-clickhouse-migrate key url (k8s/migrate's)", ref)
	}

	r = render(t, "tollgate", "tollgate", variants["own DDL secret"])
	job = one[batchv1.Job](t, r.objects, "tollgate-migrate")
	if ref := envSecret(job.Spec.Template.Spec.Containers[0].Env, "TOLLGATE_CLICKHOUSE"); ref == nil || ref.Name != "tollgate-ddl" || ref.Key != "clickhouse" {
		t.Errorf("migration.existingSecret: TOLLGATE_CLICKHOUSE from %+v, want tollgate-ddl/clickhouse", ref)
	}
	// The gateway's cluster mode reaches the Job: a single-server schema
	// under cluster-mode pods would be refused by them.
	r = render(t, "tollgate", "tollgate", vals("gateway.settings", map[string]any{"TOLLGATE_CLICKHOUSE_CLUSTER": "tollgate"}))
	job = one[batchv1.Job](t, r.objects, "tollgate-migrate")
	if v := envValue(job.Spec.Template.Spec.Containers[0].Env, "TOLLGATE_CLICKHOUSE_CLUSTER"); v != "tollgate" {
		t.Errorf("gateway.settings.TOLLGATE_CLICKHOUSE_CLUSTER: the Job has %q, want tollgate", v)
	}
	r = render(t, "tollgate", "tollgate", variants["no migration"])
	if r.find("batch/v1 Job", "tollgate-migrate") != nil || r.find("v1 ServiceAccount", "tollgate-migrate") != nil {
		t.Error("migration.enabled false still makes the hook")
	}
}

// TestServingPodsDoNotMigrate: only the hook changes the schema; no
// `tollgate serve` of the chart turns --migrate on, in any variant.
func TestServingPodsDoNotMigrate(t *testing.T) {
	on := func(v string) bool { return v != "" && v != "false" && v != "0" }
	for name, values := range variants {
		r := render(t, "tollgate", "tollgate", values)
		for _, cm := range of[corev1.ConfigMap](r.objects) {
			if on(cm.Data["TOLLGATE_MIGRATE"]) {
				t.Errorf("%s: ConfigMap %s turns TOLLGATE_MIGRATE on", name, cm.Name)
			}
		}
		for pod, spec := range podSpecs(r.objects) {
			for _, c := range spec.Containers {
				if len(c.Args) > 0 && c.Args[0] == "migrate" && pod != "tollgate-migrate" {
					t.Errorf("%s: %s runs tollgate migrate", name, pod)
				}
				for _, a := range c.Args {
					if n, v, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); n == "migrate" && strings.HasPrefix(a, "-") && (v == "" || on(v)) {
						t.Errorf("%s: %s/%s: %s", name, pod, c.Name, a)
					}
				}
				for _, e := range c.Env {
					if e.Name == "TOLLGATE_MIGRATE" && on(e.Value) {
						t.Errorf("%s: %s/%s: TOLLGATE_MIGRATE=%s", name, pod, c.Name, e.Value)
					}
				}
			}
		}
	}
	// Nor can gateway.settings turn it on.
	for _, v := range []any{"true", true, "1", "TRUE"} {
		if _, err := tryRender("tollgate", "tollgate", vals("gateway.settings", map[string]any{"TOLLGATE_MIGRATE": v})); err == nil || !strings.Contains(err.Error(), "TOLLGATE_MIGRATE") {
			t.Errorf("gateway.settings.TOLLGATE_MIGRATE=%v: %v, want a render error", v, err)
		}
	}
	if _, err := tryRender("tollgate", "tollgate", vals("gateway.settings", map[string]any{"TOLLGATE_MIGRATE": false})); err != nil {
		t.Errorf("gateway.settings.TOLLGATE_MIGRATE=false: %v", err)
	}
}

// TestSettingsAreTollgateFlags: every TOLLGATE_<FLAG> the chart sets, and
// every flag it passes, is one the command it runs knows (tollgate serve,
// migrate and webhook refuse unknown flags and ignore unknown variables).
func TestSettingsAreTollgateFlags(t *testing.T) {
	r := render(t, "tollgate", "tollgate", nil)
	flags := func(command string) string {
		// serve and migrate print their flags on the process's standard
		// error (their flag set has no writer of its own): catch it.
		rd, wr, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr := os.Stderr
		os.Stderr = wr
		var out bytes.Buffer
		done := make(chan struct{})
		go func() { io.Copy(&out, rd); close(done) }()
		var stdout bytes.Buffer
		err = app.Run(context.Background(), []string{command, "-h"}, &stdout, wr)
		os.Stderr = stderr
		wr.Close()
		<-done
		out.Write(stdout.Bytes())
		if err != nil {
			t.Fatalf("tollgate %s -h: %v", command, err)
		}
		return out.String()
	}
	known := func(command, help, flag string) {
		if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(flag) + `(\s|$)`).MatchString(help) {
			t.Errorf("tollgate %s has no flag --%s", command, flag)
		}
	}
	envFlag := func(name string) string {
		return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "TOLLGATE_")), "_", "-")
	}
	serve, migrate, webhook := flags("serve"), flags("migrate"), flags("webhook")
	for k := range one[corev1.ConfigMap](t, r.objects, "tollgate-config").Data {
		known("serve", serve, envFlag(k))
	}
	for pod, spec := range podSpecs(r.objects) {
		for _, c := range spec.Containers {
			if c.Name == "envoy" {
				continue
			}
			command, help := c.Args[0], map[string]string{"serve": serve, "migrate": migrate, "webhook": webhook}[c.Args[0]]
			if help == "" {
				t.Errorf("%s/%s runs tollgate %q", pod, c.Name, command)
				continue
			}
			for _, a := range c.Args[1:] {
				name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
				known(command, help, name)
			}
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "TOLLGATE_") {
					known(command, help, envFlag(e.Name))
				}
			}
		}
	}
}

func envSecret(env []corev1.EnvVar, name string) *corev1.SecretKeySelector {
	for _, e := range env {
		if e.Name == name && e.ValueFrom != nil {
			return e.ValueFrom.SecretKeyRef
		}
	}
	return nil
}

// checkLockedDown: non-root, read-only root, no capabilities, no
// escalation, RuntimeDefault seccomp (k8s/README.md, Choices).
func checkLockedDown(t *testing.T, what string, spec *corev1.PodSpec) {
	t.Helper()
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v", what, sc)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser == 0 || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
			t.Errorf("%s/%s: securityContext %+v", what, c.Name, sc)
		}
	}
}

func containsStr(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func envValue(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}
