package helm_test

import (
	"strings"
	"testing"
)

// TestMonitoring: the PodMonitors scrape Tollgate's /metrics and Envoy's
// /stats/prometheus, the alerts are k8s/monitoring's (compared whole in
// TestChartMatchesKustomize), and all carry monitoring.labels, which a
// Prometheus selects them by. monitoring.enabled false makes none (no
// Prometheus operator, no CRDs).
func TestMonitoring(t *testing.T) {
	r := render(t, "tollgate", "tollgate", vals("monitoring.labels", map[string]any{"release": "kube-prometheus-stack"}))
	paths := map[string]bool{}
	for _, m := range of[podMonitor](r.objects) {
		for _, e := range m.Spec.PodMetricsEndpoints {
			paths[m.Name+" "+e.Port+" "+e.Path] = true
		}
	}
	for _, want := range []string{"tollgate-gateway http /metrics", "tollgate-gateway envoy-ops /stats/prometheus", "tollgate-injector metrics /metrics"} {
		if !paths[want] {
			t.Errorf("no PodMonitor endpoint %q: %v", want, paths)
		}
	}
	var n int
	for _, o := range r.objects {
		if strings.HasPrefix(o.kind, "monitoring.coreos.com/") {
			n++
			if objectMeta(o.obj).Labels["release"] != "kube-prometheus-stack" {
				t.Errorf("%s %s lacks monitoring.labels", o.kind, o.name)
			}
		}
	}
	if rules := len(of[prometheusRule](r.objects)); rules != 2 {
		t.Errorf("%d PrometheusRules, want k8s/monitoring's two", rules)
	}
	r = render(t, "tollgate", "tollgate", variants["no monitoring"])
	for _, o := range r.objects {
		if strings.HasPrefix(o.kind, "monitoring.coreos.com/") {
			t.Errorf("monitoring.enabled false still makes %s %s", o.kind, o.name)
		}
	}
}

// TestSchemaRefusesMistakes: values.schema.json catches a misspelt key
// or a wrong type before anything renders, naming it.
func TestSchemaRefusesMistakes(t *testing.T) {
	for _, c := range []struct {
		values map[string]any
		want   string
	}{
		{vals("gateway.replica", 3), "replica"},
		{vals("gateway.replicas", "three"), "replicas"},
		{vals("injector.certmanager.enabled", false), "certmanager"},
		{vals("gateway.settings", map[string]any{"LOG_LEVEL": "debug"}), "LOG_LEVEL"},
		{vals("image.digest", "latest"), "digest"},
	} {
		_, err := tryRender("tollgate", "tollgate", c.values)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("values %v: %v, want a schema error naming %s", c.values, err, c.want)
		}
	}
}
