package helm_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/tollgate-dev/tollgate/envoy"
)

// chartCopies maps each file the chart reads (.Files.Get) to the file it
// copies: Helm reads nothing outside the chart's folder, and the contents
// must not fork.
var chartCopies = map[string]string{
	"tollgate/files/envoy.yaml":          "../../envoy/gateway.yaml",
	"tollgate/files/policy.yaml":         "../../k8s/gateway/policy.yaml",
	"tollgate/files/prometheusrule.yaml": "../../k8s/monitoring/prometheusrule.yaml",
}

// TestChartFilesAreCopies: every file under files/ is an exact copy of
// its source in the repository; copy it again after changing the source.
func TestChartFilesAreCopies(t *testing.T) {
	prompts, err := filepath.Glob("../../k8s/gateway/prompts/*.yaml")
	if err != nil || len(prompts) == 0 {
		t.Fatalf("no example prompts in k8s/gateway/prompts: %v", err)
	}
	copies := map[string]string{}
	for k, v := range chartCopies {
		copies[k] = v
	}
	for _, p := range prompts {
		copies["tollgate/files/prompts/"+filepath.Base(p)] = p
	}
	err = filepath.WalkDir("tollgate/files", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && copies[filepath.ToSlash(path)] == "" {
			t.Errorf("%s: not a copy of a file in the repository (add it to chartCopies)", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for file, src := range copies {
		got, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%s: %v (copy %s there)", file, err, src)
			continue
		}
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s; copy it again (cp %s %s)", file, src, strings.TrimPrefix(src, "../../"), "deploy/helm/"+file)
		}
	}
}

// TestChartEnvoyIsTheGateways: the Envoy configuration the gateway pods
// get is envoy/gateway.yaml byte for byte (the file envoy/ validates
// against Envoy's schema), with the default values and with others.
func TestChartEnvoyIsTheGateways(t *testing.T) {
	for _, values := range []map[string]any{nil, vals("gateway.egressPolicy", "defaults: {}\n", "gateway.autoscaling.enabled", false)} {
		r := render(t, "edge", "llm", values)
		cm := one[corev1.ConfigMap](t, r.objects, "edge-tollgate-envoy")
		if got := cm.Data["envoy.yaml"]; got != string(envoy.Gateway) {
			t.Errorf("values %v: the gateway's envoy.yaml differs from envoy/gateway.yaml (%d and %d bytes)", values, len(got), len(envoy.Gateway))
		}
	}
}
