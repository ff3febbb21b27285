package helm_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// TestGatewayAutoscaling: by default an autoscaler on CPU owns the
// gateway's count, from gateway.replicas up; without it the Deployment
// holds the count, as in k8s/gateway.
func TestGatewayAutoscaling(t *testing.T) {
	r := render(t, "tollgate", "tollgate", nil)
	d := one[appsv1.Deployment](t, r.objects, "tollgate-gateway")
	if d.Spec.Replicas != nil {
		t.Errorf("with the autoscaler the Deployment must not set replicas (an upgrade would reset the count), got %d", *d.Spec.Replicas)
	}
	hpa := one[autoscalingv2.HorizontalPodAutoscaler](t, r.objects, "tollgate-gateway")
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != d.Name || ref.APIVersion != "apps/v1" {
		t.Errorf("autoscaler targets %+v", ref)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 2 || hpa.Spec.MaxReplicas < 2 {
		t.Errorf("autoscaler replicas %v..%d, want from 2 (one pod is one outage)", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
		t.Fatalf("autoscaler metrics %+v, want CPU", hpa.Spec.Metrics)
	}
	// Utilization is of the requests: every container must ask for CPU.
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("container %s asks for no CPU: the autoscaler cannot compute its utilization", c.Name)
		}
	}

	r = render(t, "tollgate", "tollgate", vals("gateway.autoscaling.enabled", false, "gateway.replicas", 3))
	if r.find("autoscaling/v2 HorizontalPodAutoscaler", "tollgate-gateway") != nil {
		t.Error("gateway.autoscaling.enabled false still makes an autoscaler")
	}
	if d := one[appsv1.Deployment](t, r.objects, "tollgate-gateway"); d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("without the autoscaler, replicas %v, want gateway.replicas 3", d.Spec.Replicas)
	}
	if _, err := tryRender("tollgate", "tollgate", vals("gateway.replicas", 4, "gateway.autoscaling.maxReplicas", 3)); err == nil || !strings.Contains(err.Error(), "maxReplicas") {
		t.Errorf("maxReplicas below replicas: %v, want an error naming maxReplicas", err)
	}
}

// TestEnvoyRebalancesConnections: replicas the autoscaler adds get load
// only if clients reconnect. The gateway's Envoy ends every downstream
// connection after max_connection_duration, gracefully for HTTP/1.1 too
// (on its next response, never under a call in flight).
func TestEnvoyRebalancesConnections(t *testing.T) {
	r := render(t, "tollgate", "tollgate", nil)
	cm := one[corev1.ConfigMap](t, r.objects, "tollgate-envoy")
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["envoy.yaml"]), &cfg); err != nil {
		t.Fatal(err)
	}
	var hcm map[string]any
	for _, l := range dig(cfg, "static_resources", "listeners").([]any) {
		if dig(l, "name") != "llm_egress" {
			continue
		}
		for _, fc := range dig(l, "filter_chains").([]any) {
			for _, f := range dig(fc, "filters").([]any) {
				if dig(f, "name") == "envoy.filters.network.http_connection_manager" {
					hcm = dig(f, "typed_config").(map[string]any)
				}
			}
		}
	}
	if hcm == nil {
		t.Fatal("no HTTP connection manager on the llm_egress listener")
	}
	s, _ := dig(hcm, "common_http_protocol_options", "max_connection_duration").(string)
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > 15*time.Minute {
		t.Errorf("max_connection_duration %q: want one, short enough for new replicas to get load (at most 15m)", s)
	}
	if dig(hcm, "http1_safe_max_connection_duration") != true {
		t.Error("http1_safe_max_connection_duration must be true: otherwise HTTP/1.1 connections are closed after the drain timeout, racing a request the client sends meanwhile")
	}
}

// dig walks nested YAML maps; nil when a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestConfigChangeRollsPods: kustomize rolls the pods by naming
// ConfigMaps after their content; the chart puts a checksum of them in the
// pod templates, so a changed policy, prompt, setting or Envoy
// configuration rolls the gateway, and a changed injection the injector.
func TestConfigChangeRollsPods(t *testing.T) {
	checksum := func(values map[string]any, name string) string {
		d := one[appsv1.Deployment](t, render(t, "tollgate", "tollgate", values).objects, name)
		return d.Spec.Template.Annotations["checksum/config"]
	}
	base := checksum(nil, "tollgate-gateway")
	if base == "" {
		t.Fatal("no checksum/config on the gateway's pod template")
	}
	for _, v := range []map[string]any{
		vals("gateway.egressPolicy", "defaults: {}\n"),
		vals("gateway.prompts", map[string]any{"greet.yaml": "id: greet\n"}),
		vals("gateway.settings", map[string]any{"TOLLGATE_LOG_LEVEL": "debug"}),
	} {
		if checksum(v, "tollgate-gateway") == base {
			t.Errorf("values %v: the gateway's pods would not roll", v)
		}
	}
	if checksum(vals("injector.storesSecret", "other"), "tollgate-injector") == checksum(nil, "tollgate-injector") {
		t.Error("a changed injector.storesSecret would not roll the injector (it reads --config at start)")
	}
}

// TestGatewayValues: the policy, prompts and network policy come from the
// values when set.
func TestGatewayValues(t *testing.T) {
	r := render(t, "tollgate", "tollgate", vals(
		"gateway.egressPolicy", "defaults: {}\n",
		"gateway.prompts", map[string]any{"greet.yaml": "id: greet\n"},
		"networkPolicy.storePorts", []any{6380, 8443},
	))
	if got := one[corev1.ConfigMap](t, r.objects, "tollgate-policy").Data["policy.yaml"]; got != "defaults: {}\n" {
		t.Errorf("policy.yaml %q", got)
	}
	if got := one[corev1.ConfigMap](t, r.objects, "tollgate-prompts").Data; len(got) != 1 || got["greet.yaml"] != "id: greet\n" {
		t.Errorf("prompts %v, want only greet.yaml", got)
	}
	np := one[networkingv1.NetworkPolicy](t, r.objects, "tollgate-gateway")
	var ports []int32
	for _, rule := range np.Spec.Egress {
		if len(rule.To) == 1 && rule.To[0].NamespaceSelector != nil {
			for _, p := range rule.Ports {
				ports = append(ports, p.Port.IntVal)
			}
		}
	}
	if !slices.Equal(ports, []int32{6380, 8443}) {
		t.Errorf("egress to the stores on %v, want networkPolicy.storePorts [6380 8443]", ports)
	}
	r = render(t, "tollgate", "tollgate", vals("networkPolicy.enabled", false))
	if r.find("networking.k8s.io/v1 NetworkPolicy", "tollgate-gateway") != nil {
		t.Error("networkPolicy.enabled false still makes the NetworkPolicy")
	}
}
