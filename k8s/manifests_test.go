package k8s_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// kinds are the API types a manifest here may be; anything else fails, so
// a new kind is a decision, with a decoder to go with it.
var kinds = map[string]func() any{
	"apps/v1 Deployment":                 func() any { return &appsv1.Deployment{} },
	"batch/v1 Job":                       func() any { return &batchv1.Job{} },
	"v1 Service":                         func() any { return &corev1.Service{} },
	"v1 ConfigMap":                       func() any { return &corev1.ConfigMap{} },
	"v1 Secret":                          func() any { return &corev1.Secret{} },
	"v1 ServiceAccount":                  func() any { return &corev1.ServiceAccount{} },
	"v1 Namespace":                       func() any { return &corev1.Namespace{} },
	"policy/v1 PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1 NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
	"admissionregistration.k8s.io/v1 MutatingWebhookConfiguration": func() any { return &admissionv1.MutatingWebhookConfiguration{} },
	"rbac.authorization.k8s.io/v1 Role":                            func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1 RoleBinding":                     func() any { return &rbacv1.RoleBinding{} },
	"rbac.authorization.k8s.io/v1 ClusterRole":                     func() any { return &rbacv1.ClusterRole{} },
	"rbac.authorization.k8s.io/v1 ClusterRoleBinding":              func() any { return &rbacv1.ClusterRoleBinding{} },
}

// object is one decoded manifest document.
type object struct {
	file string // path below k8s/, slash-separated
	base string // the folder of its kustomization
	kind string // "apiVersion Kind"
	obj  any    // a pointer to the API type
}

// tree is everything under k8s/: kustomize bases, their manifests and the
// files their generators read.
type tree struct {
	bases   map[string]*kustomization // by folder
	objects []object
}

// loadTree reads and strictly decodes everything. Every YAML file is a
// kustomization, a generator's input, or a manifest of known kinds.
func loadTree(t *testing.T) *tree {
	t.Helper()
	tr := &tree{bases: map[string]*kustomization{}}
	files := yamlFiles(t)
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			tr.bases[filepath.ToSlash(filepath.Dir(f))] = loadKustomization(t, f)
		}
	}
	inputs := tr.generatorInputs()
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" || inputs[f] {
			continue
		}
		base := tr.baseOf(f)
		if base == "" {
			t.Errorf("%s: not in a kustomize base", f)
			continue
		}
		for i, doc := range splitDocs(t, f) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			kind := tm.APIVersion + " " + tm.Kind
			newObj, ok := kinds[kind]
			if !ok {
				t.Errorf("%s document %d: unknown kind %q", f, i, kind)
				continue
			}
			obj := newObj()
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Errorf("%s document %d (%s): %v", f, i, kind, err)
				continue
			}
			tr.objects = append(tr.objects, object{file: f, base: base, kind: kind, obj: obj})
		}
	}
	if len(tr.objects) == 0 {
		t.Fatal("no manifests found")
	}
	return tr
}

// baseOf returns the kustomize base folder a file belongs to.
func (tr *tree) baseOf(file string) string {
	for dir := filepath.ToSlash(filepath.Dir(file)); dir != "." && dir != "/"; dir = filepath.ToSlash(filepath.Dir(dir)) {
		if _, ok := tr.bases[dir]; ok {
			return dir
		}
	}
	return ""
}

// yamlFiles lists every YAML file below the package folder, sorted.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir // inputs of tests, not manifests
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, filepath.ToSlash(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// splitDocs splits a multi-document YAML file, dropping documents that are
// only comments.
func splitDocs(t *testing.T, file string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), data...), []byte("\n---\n")) {
		if !onlyComments(string(d)) {
			docs = append(docs, d)
		}
	}
	return docs
}

func onlyComments(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// TestManifestsDecode is the schema check: loadTree fails on an unknown
// kind or field.
func TestManifestsDecode(t *testing.T) {
	tr := loadTree(t)
	for _, o := range tr.objects {
		meta := objectMeta(o.obj)
		if meta.Name == "" {
			t.Errorf("%s: a %s without a name", o.file, o.kind)
		}
		if meta.Namespace != "" {
			t.Errorf("%s: %s/%s sets its namespace; the kustomization (or kubectl -n) does", o.file, o.kind, meta.Name)
		}
	}
}

func objectMeta(obj any) metav1.ObjectMeta {
	if o, ok := obj.(metav1.ObjectMetaAccessor); ok {
		return *o.GetObjectMeta().(*metav1.ObjectMeta)
	}
	return metav1.ObjectMeta{}
}

// of returns the decoded objects of one Go type, optionally in one base.
func of[T any](tr *tree, base string) []*T {
	var out []*T
	for _, o := range tr.objects {
		if v, ok := o.obj.(*T); ok && (base == "" || o.base == base) {
			out = append(out, v)
		}
	}
	return out
}
