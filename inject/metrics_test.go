package inject

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

func admissions(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	return byFirstLabel(t, reg, "tollgate_injector_admissions_total")
}

// byFirstLabel gathers the metric name from reg: the value of each series
// (a counter's or a gauge's) by the value of its first label.
func byFirstLabel(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			v := m.GetCounter().GetValue()
			if g := m.GetGauge(); g != nil {
				v = g.GetValue()
			}
			out[m.GetLabel()[0].GetValue()] = v
		}
	}
	return out
}

// Every answer the webhook gives is counted by result, so pods it admitted
// without the sidecars show in a metric, not only in its log.
func TestWebhookCountsDecisions(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := NewWebhookWithMetrics(Config{}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	post := func(via string, pod *corev1.Pod) {
		t.Helper()
		if rec, resp := postReview(t, h, via, reviewOf(t, admissionv1.Create, podKind, pod)); resp == nil {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	post("/namespace", webhookPod(nil))
	post("/namespace", webhookPod(nil))
	post("", webhookPod(nil))                                             // not requested
	post("/namespace", webhookPod(map[string]string{KeyInject: "false"})) // opted out: not requested either
	host := webhookPod(nil)
	host.Spec.HostNetwork = true
	post("/namespace", host) // skipped
	clash := webhookPod(nil)
	clash.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: ListenerPort}}
	post("/namespace", clash)

	want := map[string]float64{"injected": 2, "not_requested": 2, "skipped": 1, "refused": 1, "unsupported_cluster": 0}
	if got := admissions(t, reg); len(got) != len(want) || got["injected"] != 2 || got["not_requested"] != 2 || got["skipped"] != 1 || got["refused"] != 1 || got["unsupported_cluster"] != 0 {
		t.Fatalf("tollgate_injector_admissions_total = %v, want %v", got, want)
	}

	old := prometheus.NewRegistry()
	h, _ = NewWebhookWithMetrics(Config{KubeVersion: "1.28"}, nil, old)
	post("/pod", webhookPod(nil))
	if got := admissions(t, old); got["unsupported_cluster"] != 1 || got["injected"] != 0 {
		t.Fatalf("on 1.28: %v", got)
	}
}
