package k8s_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/tollgate-dev/tollgate/inject"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/processor"
)

// TestInjectorCertificate: by default cert-manager issues the injector's
// serving certificate into the Secret its Deployment mounts, for the name
// the API server calls, and its CA injector fills the webhooks' caBundle
// (none is written here, or every apply would empty it again).
func TestInjectorCertificate(t *testing.T) {
	tr := loadTree(t)
	const base = "injector"
	namespace := tr.bases[base].Namespace
	mwc := of[admissionv1.MutatingWebhookConfiguration](tr, base)[0]
	ref := mwc.Annotations["cert-manager.io/inject-ca-from"]
	certNS, certName, ok := strings.Cut(ref, "/")
	if !ok || certNS != namespace {
		t.Fatalf("MutatingWebhookConfiguration %s: cert-manager.io/inject-ca-from %q, want %s/<Certificate>", mwc.Name, ref, namespace)
	}
	for _, h := range mwc.Webhooks {
		if len(h.ClientConfig.CABundle) != 0 {
			t.Errorf("webhook %s: a caBundle here would overwrite the one cert-manager injects", h.Name)
		}
	}

	certs := map[string]*certificate{}
	for _, c := range of[certificate](tr, base) {
		certs[c.Name] = c
	}
	issuers := map[string]*certIssuer{}
	for _, i := range of[certIssuer](tr, base) {
		issuers[i.Name] = i
	}
	serving := certs[certName]
	if serving == nil {
		t.Fatalf("no Certificate %s in %s/ for the annotation", certName, base)
	}

	// The Secret the webhook reads its key pair from.
	d := of[appsv1.Deployment](tr, base)[0]
	spec := &d.Spec.Template.Spec
	mounted := secretOf(spec, &spec.Containers[0], flagValue(spec.Containers[0].Args, "--tls-cert"))
	if mounted == "" || serving.Spec.SecretName != mounted {
		t.Errorf("Certificate %s writes Secret %q, the webhook reads %q", serving.Name, serving.Spec.SecretName, mounted)
	}
	svc := mwc.Webhooks[0].ClientConfig.Service
	if want := svc.Name + "." + svc.Namespace + ".svc"; !slices.Contains(serving.Spec.DNSNames, want) {
		t.Errorf("Certificate %s: dnsNames %v lack %s, the name the API server calls", serving.Name, serving.Spec.DNSNames, want)
	}
	if serving.Spec.Duration == nil || serving.Spec.RenewBefore == nil || serving.Spec.RenewBefore.Duration >= serving.Spec.Duration.Duration {
		t.Errorf("Certificate %s: renewBefore must be set and below duration", serving.Name)
	}

	// Its issuer is a CA whose own certificate comes from this base, so
	// renewing the serving certificate leaves the caBundle valid.
	issuer := issuers[serving.Spec.IssuerRef.Name]
	if issuer == nil || serving.Spec.IssuerRef.Kind != "Issuer" || issuer.Spec.CA == nil {
		t.Fatalf("Certificate %s: issuerRef %+v is not a CA Issuer of %s/", serving.Name, serving.Spec.IssuerRef, base)
	}
	var ca *certificate
	for _, c := range certs {
		if c.Spec.SecretName == issuer.Spec.CA.SecretName {
			ca = c
		}
	}
	if ca == nil || !ca.Spec.IsCA {
		t.Fatalf("Issuer %s: no CA Certificate writes its Secret %s", issuer.Name, issuer.Spec.CA.SecretName)
	}
	if root := issuers[ca.Spec.IssuerRef.Name]; root == nil || root.Spec.SelfSigned == nil {
		t.Errorf("CA Certificate %s: want a selfSigned Issuer of %s/", ca.Name, base)
	}
}

// secretOf returns the Secret mounted where file lives.
func secretOf(spec *corev1.PodSpec, c *corev1.Container, file string) string {
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				return v.Secret.SecretName
			}
		}
	}
	return ""
}

// TestInjectorAudit: the injector can list namespaces and pods (its
// service account token mounted, a ClusterRole bound to it) and serves the
// audit's metric where Prometheus can scrape it.
func TestInjectorAudit(t *testing.T) {
	tr := loadTree(t)
	const base = "injector"
	d := of[appsv1.Deployment](tr, base)[0]
	spec := &d.Spec.Template.Spec
	if spec.AutomountServiceAccountToken == nil || !*spec.AutomountServiceAccountToken {
		t.Errorf("Deployment %s: the audit needs the service account token", d.Name)
	}
	c := &spec.Containers[0]
	metrics := flagValue(c.Args, "--metrics-listen")
	if _, port, _ := strings.Cut(metrics, ":"); port == "" || containerPort(c, "metrics") == 0 || port != "9090" || containerPort(c, "metrics") != 9090 {
		t.Errorf("Deployment %s: --metrics-listen %q and the metrics port %d must agree", d.Name, metrics, containerPort(c, "metrics"))
	}
	if v := flagValue(c.Args, "--audit-interval"); v == "" || v == "0" || v == "0s" {
		t.Errorf("Deployment %s: --audit-interval %q: the audit must run", d.Name, v)
	}

	granted := map[string]bool{}
	for _, b := range of[rbacv1.ClusterRoleBinding](tr, base) {
		bound := false
		for _, s := range b.Subjects {
			bound = bound || (s.Kind == "ServiceAccount" && s.Name == spec.ServiceAccountName && s.Namespace == tr.bases[base].Namespace)
		}
		if !bound || b.RoleRef.Kind != "ClusterRole" {
			continue
		}
		for _, r := range of[rbacv1.ClusterRole](tr, base) {
			if r.Name != b.RoleRef.Name {
				continue
			}
			for _, rule := range r.Rules {
				if !slices.Contains(rule.APIGroups, "") || !slices.Contains(rule.Verbs, "list") {
					continue
				}
				for _, res := range rule.Resources {
					granted[res] = true
				}
				if slices.ContainsFunc(rule.Verbs, func(v string) bool { return v != "list" && v != "get" && v != "watch" }) {
					t.Errorf("ClusterRole %s: the injector only reads; verbs %v", r.Name, rule.Verbs)
				}
			}
		}
	}
	for _, res := range []string{"namespaces", "pods"} {
		if !granted[res] {
			t.Errorf("service account %s cannot list %s cluster-wide", spec.ServiceAccountName, res)
		}
	}
}

// TestMonitoringRules: the example alerts use metrics Tollgate really
// exports (the injector's audit and webhook, the processor, the cache and
// rate-limit gate, the ClickHouse writer), and cover what must not go
// unnoticed. deploy/helm installs the same file (a test there keeps its
// copy identical).
func TestMonitoringRules(t *testing.T) {
	tr := loadTree(t)
	exported := exportedMetrics(t)
	var alerts []string
	for _, r := range of[prometheusRule](tr, "monitoring") {
		for _, g := range r.Spec.Groups {
			for _, rule := range g.Rules {
				alerts = append(alerts, rule.Alert)
				for _, m := range regexp.MustCompile(`tollgate_[a-z_]+`).FindAllString(rule.Expr, -1) {
					if !exported[m] {
						t.Errorf("alert %s uses %s, which Tollgate does not export", rule.Alert, m)
					}
				}
			}
		}
	}
	for _, want := range []string{
		"TollgateUninjectedPods",        // admitted without injection
		"TollgateInjectorFailedOpen",    // admitted while the injector was away
		"TollgateExtProcStreamsFailing", // calls refused by a fail-closed Envoy
		"TollgateLogSpoolGrowing",       // ClickHouse behind
		"TollgateLogRowsDropped",        // records lost
		"TollgateRateLimitStoreErrors",  // limits not enforced, or calls refused
	} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s: %v", want, alerts)
		}
	}
}

// exportedMetrics returns the names of the series Tollgate's components
// register. The ClickHouse writer's are unexported (created by Open, which
// needs a server), so they are read from its source.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	inject.NewAuditor(nil, 1, "", reg, nil)
	if _, err := inject.NewWebhookWithMetrics(inject.Config{}, nil, reg); err != nil {
		t.Fatal(err)
	}
	processor.NewMetrics(reg)
	gate.NewMetrics(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
	}
	// Vectors have no series until a first observation: name them here.
	for _, name := range []string{"tollgate_injector_uninjected_pods", "tollgate_calls_ended_early_total"} {
		exported[name] = true
	}
	files, err := filepath.Glob("../storage/chstore/*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`Name:\s*"(tollgate_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
			exported[m[1]] = true
		}
	}
	if !exported["tollgate_log_rows_dropped_total"] {
		t.Fatal("storage/chstore: no tollgate_log_rows_dropped_total; has the writer moved?")
	}
	return exported
}
