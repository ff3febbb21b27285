package k8s_test

import (
	"os"
	"path"
	"testing"

	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomize's format these bases use. It is
// decoded strictly: a field kustomize would read but this test would not
// check fails here first.
type kustomization struct {
	APIVersion         string      `json:"apiVersion"`
	Kind               string      `json:"kind"`
	Namespace          string      `json:"namespace,omitempty"`
	Resources          []string    `json:"resources,omitempty"`
	ConfigMapGenerator []generator `json:"configMapGenerator,omitempty"`
	dir                string
}

type generator struct {
	Name     string   `json:"name"`
	Files    []string `json:"files,omitempty"`
	Literals []string `json:"literals,omitempty"`
}

func loadKustomization(t *testing.T, file string) *kustomization {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	k := &kustomization{dir: path.Dir(file)}
	if err := yaml.UnmarshalStrict(data, k); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("%s: apiVersion %q kind %q", file, k.APIVersion, k.Kind)
	}
	return k
}

// generatorInputs returns the files the bases' generators read.
func (tr *tree) generatorInputs() map[string]bool {
	out := map[string]bool{}
	for dir, k := range tr.bases {
		for _, g := range k.ConfigMapGenerator {
			for _, f := range g.Files {
				out[path.Join(dir, f)] = true
			}
		}
	}
	return out
}

// generated returns the ConfigMap names a base generates.
func (k *kustomization) generated() map[string]bool {
	out := map[string]bool{}
	for _, g := range k.ConfigMapGenerator {
		out[g.Name] = true
	}
	return out
}

// TestKustomizations: each base lists files that exist, and every manifest
// file in it is listed, so `kubectl apply -k` installs what the folder
// shows.
func TestKustomizations(t *testing.T) {
	tr := loadTree(t)
	for _, want := range []string{"gateway", "injector", "sidecar-example", "app-namespace", "migrate"} {
		if tr.bases[want] == nil {
			t.Errorf("no kustomization in %s/", want)
		}
	}
	listed := map[string]bool{}
	for dir, k := range tr.bases {
		for _, r := range k.Resources {
			f := path.Join(dir, r)
			if path.Dir(f) != dir {
				t.Errorf("%s: resource %q is outside the base; kustomize bases here list their own files", dir, r)
			}
			if _, err := os.Stat(f); err != nil {
				t.Errorf("%s: resource %q: %v", dir, r, err)
			}
			if listed[f] {
				t.Errorf("%s: resource %q listed twice", dir, r)
			}
			listed[f] = true
		}
		names := map[string]bool{}
		for _, g := range k.ConfigMapGenerator {
			if names[g.Name] {
				t.Errorf("%s: generator %q twice", dir, g.Name)
			}
			names[g.Name] = true
			if len(g.Files)+len(g.Literals) == 0 {
				t.Errorf("%s: generator %q makes an empty ConfigMap", dir, g.Name)
			}
			for _, f := range g.Files {
				if _, err := os.Stat(path.Join(dir, f)); err != nil {
					t.Errorf("%s: generator %q: %v", dir, g.Name, err)
				}
			}
		}
	}
	for _, o := range tr.objects {
		if !listed[o.file] {
			t.Errorf("%s is not in %s/kustomization.yaml's resources", o.file, o.base)
		}
	}
}
