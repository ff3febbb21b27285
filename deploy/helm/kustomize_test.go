package helm_test

import (
	"bytes"
	"os"
	"path"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The kustomize bases the chart installs the equivalent of. (k8s/
// app-namespace is a policy for each application namespace and
// k8s/sidecar-example an example application: neither is the chart's.)
var kustomizeBases = []string{"gateway", "injector", "migrate", "monitoring"}

// kustomization is the part of kustomize's format k8s/ uses (its own tests
// decode it strictly).
type kustomization struct {
	Resources          []string `json:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
	} `json:"configMapGenerator"`
}

// loadKustomize decodes what `kubectl apply -k` would install from the
// bases: their resources, and the generated ConfigMaps under their names
// without kustomize's content hash.
func loadKustomize(t *testing.T) []object {
	t.Helper()
	var out []object
	for _, base := range kustomizeBases {
		dir := path.Join("..", "..", "k8s", base)
		var k kustomization
		data, err := os.ReadFile(path.Join(dir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, &k); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, r := range k.Resources {
			file := path.Join(dir, r)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range bytes.Split(append([]byte("\n"), data...), []byte("\n---\n")) {
				if len(bytes.TrimSpace(stripComments(doc))) == 0 {
					continue
				}
				o := object{source: path.Join(base, r), obj: string(doc)}
				decodeInto(t, &o)
				out = append(out, o)
			}
		}
		for _, g := range k.ConfigMapGenerator {
			cm := &corev1.ConfigMap{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
				ObjectMeta: metav1.ObjectMeta{Name: g.Name},
				Data:       map[string]string{},
			}
			for _, f := range g.Files {
				data, err := os.ReadFile(path.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				cm.Data[path.Base(f)] = string(data)
			}
			out = append(out, object{source: base + " configMapGenerator", kind: "v1 ConfigMap", name: g.Name, obj: cm})
		}
	}
	return out
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if l := bytes.TrimSpace(line); len(l) > 0 && l[0] != '#' {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}
