package helm_test

import (
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "tollgate"

// object is one rendered (or kustomize) document, decoded strictly.
type object struct {
	source string // template path, or file below k8s/
	kind   string // "apiVersion Kind"
	name   string
	obj    any    // a pointer to the API type
	hook   string // the helm.sh/hook annotation of a hook, else ""
}

// release is a rendered chart: its objects, hooks included.
type release struct {
	name, namespace string
	objects         []object
	notes           string // NOTES.txt rendered
}

// render renders the chart as `helm install <name> -n <namespace>` would,
// without a cluster: values coalesced with values.yaml and checked against
// values.schema.json, templates rendered by Helm's engine, hooks split out
// by Helm's own sorter. Nothing is fetched.
func render(t *testing.T, name, namespace string, values map[string]any) *release {
	t.Helper()
	r, err := tryRender(name, namespace, values)
	if err != nil {
		t.Fatalf("render %s with %v: %v", name, values, err)
	}
	for i := range r.objects {
		o := &r.objects[i]
		decodeInto(t, o)
	}
	return r
}

// tryRender is render without the decoding, for the errors a user sees.
func tryRender(name, namespace string, values map[string]any) (*release, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	opts := common.ReleaseOptions{Name: name, Namespace: namespace, IsInstall: true, Revision: 1}
	vals, err := chartutil.ToRenderValuesWithSchemaValidation(ch, values, opts, nil, false)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	// As Helm does: NOTES.txt is the text `helm install` prints, not a
	// manifest.
	r := &release{name: name, namespace: namespace}
	for f, text := range files {
		if strings.HasSuffix(f, "/NOTES.txt") {
			r.notes = text
			delete(files, f)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, err
	}
	for _, m := range manifests {
		r.objects = append(r.objects, object{source: m.Name, kind: m.Head.Version + " " + m.Head.Kind, name: m.Head.Metadata.Name, obj: m.Content})
	}
	for _, h := range hooks {
		var events []string
		for _, e := range h.Events {
			events = append(events, string(e))
		}
		r.objects = append(r.objects, object{source: h.Path, kind: h.Kind, name: h.Name, obj: h.Manifest, hook: strings.Join(events, ",")})
	}
	return r, nil
}

// decodeInto replaces the document text in o.obj by its decoded type,
// refusing unknown kinds and fields.
func decodeInto(t *testing.T, o *object) {
	t.Helper()
	doc := []byte(o.obj.(string))
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("%s: %v", o.source, err)
	}
	o.kind = tm.APIVersion + " " + tm.Kind
	newObj, ok := kinds[o.kind]
	if !ok {
		t.Fatalf("%s: unknown kind %q", o.source, o.kind)
	}
	v := newObj()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("%s (%s): %v\n%s", o.source, o.kind, err, doc)
	}
	o.obj = v
	o.name = objectMeta(v).Name
}

func objectMeta(obj any) metav1.ObjectMeta {
	if o, ok := obj.(metav1.ObjectMetaAccessor); ok {
		return *o.GetObjectMeta().(*metav1.ObjectMeta)
	}
	return metav1.ObjectMeta{}
}

// of returns the objects of one Go type.
func of[T any](objects []object) []*T {
	var out []*T
	for _, o := range objects {
		if v, ok := o.obj.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// one returns the object of type T named name, failing without it.
func one[T any](t *testing.T, objects []object, name string) *T {
	t.Helper()
	for _, o := range objects {
		if v, ok := o.obj.(*T); ok && o.name == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T named %s", &zero, name)
	return nil
}

// find returns the object of a kind and name, or nil.
func (r *release) find(kind, name string) *object {
	for i := range r.objects {
		if r.objects[i].kind == kind && r.objects[i].name == name {
			return &r.objects[i]
		}
	}
	return nil
}

// vals builds a values map from dotted paths: vals("a.b", 1) is {a: {b: 1}}.
func vals(kv ...any) map[string]any {
	out := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m := out
		parts := strings.Split(kv[i].(string), ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = kv[i+1]
	}
	return out
}
