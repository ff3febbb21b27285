package grafana

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomize's format kustomization.yaml
// uses, decoded strictly.
type kustomization struct {
	APIVersion         string `json:"apiVersion"`
	Kind               string `json:"kind"`
	ConfigMapGenerator []struct {
		Name    string   `json:"name"`
		Files   []string `json:"files"`
		Options struct {
			DisableNameSuffixHash bool              `json:"disableNameSuffixHash"`
			Labels                map[string]string `json:"labels"`
		} `json:"options"`
	} `json:"configMapGenerator"`
}

// TestKustomization: the ConfigMap holds every dashboard file, under a
// stable name, with the label Grafana's sidecar loads, and fits in what
// `kubectl apply` (client side) can store: the whole object is copied to
// its last-applied-configuration annotation, at most 256 KiB.
func TestKustomization(t *testing.T) {
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatal(err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" || len(k.ConfigMapGenerator) != 1 {
		t.Fatalf("want one configMapGenerator in a Kustomization: %+v", k)
	}
	g := k.ConfigMapGenerator[0]
	if !g.Options.DisableNameSuffixHash || g.Options.Labels["grafana_dashboard"] != "1" {
		t.Errorf("generator options %+v: want a stable name and grafana_dashboard: \"1\"", g.Options)
	}
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	listed := slices.Sorted(slices.Values(g.Files))
	if !slices.Equal(files, listed) {
		t.Errorf("generator files %v, dashboards in the folder %v", listed, files)
	}
	total := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		total += len(b)
		if _, err := Dashboards.ReadFile(f); err != nil {
			t.Errorf("%s is not embedded in Dashboards: %v", f, err)
		}
	}
	// JSON-escaped in the annotation, the files take more room than on
	// disk; keep well clear of the limit.
	if total > 128<<10 {
		t.Errorf("dashboards are %d bytes: too close to the 256 KiB annotation limit of kubectl apply", total)
	}
}
