package inject

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestInjectPatchReproducesPod: applying Patch to before's JSON gives
// after's JSON, for pods with and without each field Pod touches.
func TestInjectPatchReproducesPod(t *testing.T) {
	bare := &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	full := appPod()
	full.Annotations = map[string]string{"a/b~c": "x"}
	full.Spec.Volumes = []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	full.Spec.Containers[1].Env = []corev1.EnvVar{{Name: "A", Value: "1"}}
	hashed := appPod()
	hashed.Annotations = map[string]string{AnnotationTemplateHash: "stale"}

	for name, before := range map[string]*corev1.PodTemplateSpec{"bare": bare, "full": full, "stale hash": hashed} {
		t.Run(name, func(t *testing.T) {
			after := before.DeepCopy()
			if _, err := Pod(&after.ObjectMeta, &after.Spec, Workload{Name: "w"}, Config{}); err != nil {
				t.Fatal(err)
			}
			ops, err := Patch(before, after)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := toJSONValue(before)
			if err != nil {
				t.Fatal(err)
			}
			if m := doc.(map[string]any); m["metadata"] == nil {
				m["metadata"] = map[string]any{}
			}
			got, err := applyPatch(doc, "", ops)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := toJSONValue(after)
			if !reflect.DeepEqual(got, want) {
				g, _ := json.MarshalIndent(got, "", " ")
				t.Fatalf("patched pod differs from the injected one:\n%s", g)
			}
		})
	}
}

func TestInjectPatchRefusesChangesItCannotDescribe(t *testing.T) {
	before := appPod()
	for name, change := range map[string]func(p *corev1.PodTemplateSpec){
		"image":           func(p *corev1.PodTemplateSpec) { p.Spec.Containers[0].Image = "other" },
		"label":           func(p *corev1.PodTemplateSpec) { p.Labels["x"] = "y" },
		"annotation gone": func(p *corev1.PodTemplateSpec) { p.Annotations = nil },
		"init added in two places": func(p *corev1.PodTemplateSpec) {
			p.Spec.InitContainers = []corev1.Container{{Name: "x"}, p.Spec.InitContainers[0], {Name: "y"}, p.Spec.InitContainers[1]}
		},
		"init changed": func(p *corev1.PodTemplateSpec) { p.Spec.InitContainers[1].Image = "other" },
		"init removed": func(p *corev1.PodTemplateSpec) { p.Spec.InitContainers = p.Spec.InitContainers[:1] },
		"env prepended": func(p *corev1.PodTemplateSpec) {
			p.Spec.Containers[0].Env = append([]corev1.EnvVar{{Name: "X"}}, p.Spec.Containers[0].Env...)
		},
		"container added": func(p *corev1.PodTemplateSpec) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "x"})
		},
		"node selector set": func(p *corev1.PodTemplateSpec) { p.Spec.NodeSelector = map[string]string{"a": "b"} },
	} {
		b := before.DeepCopy()
		b.Annotations = map[string]string{"keep": "me"}
		after := b.DeepCopy()
		change(after)
		if _, err := Patch(b, after); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestInjectApplyPatch(t *testing.T) {
	doc := func() any {
		v, _ := decodeJSON([]byte(`{"a":{"list":[1,2],"m":{"k":"v"}}}`))
		return v
	}
	tests := []struct {
		name string
		ops  []Operation
		want string
		fail bool
	}{
		{"insert first", []Operation{{Op: "add", Path: "/a/list/0", Value: 0}}, `{"a":{"list":[0,1,2],"m":{"k":"v"}}}`, false},
		{"insert at end by index", []Operation{{Op: "add", Path: "/a/list/2", Value: 3}}, `{"a":{"list":[1,2,3],"m":{"k":"v"}}}`, false},
		{"append", []Operation{{Op: "add", Path: "/a/list/-", Value: 3}}, `{"a":{"list":[1,2,3],"m":{"k":"v"}}}`, false},
		{"escaped key", []Operation{{Op: "add", Path: "/a/m/x~1y~0z", Value: "w"}}, `{"a":{"list":[1,2],"m":{"k":"v","x/y~z":"w"}}}`, false},
		{"replace member", []Operation{{Op: "replace", Path: "/a/m/k", Value: "w"}}, `{"a":{"list":[1,2],"m":{"k":"w"}}}`, false},
		{"replace item", []Operation{{Op: "replace", Path: "/a/list/1", Value: 9}}, `{"a":{"list":[1,9],"m":{"k":"v"}}}`, false},
		{"replace missing", []Operation{{Op: "replace", Path: "/a/m/nope", Value: 1}}, "", true},
		{"index past end", []Operation{{Op: "add", Path: "/a/list/3", Value: 1}}, "", true},
		{"missing parent", []Operation{{Op: "add", Path: "/b/c", Value: 1}}, "", true},
		{"remove unsupported", []Operation{{Op: "remove", Path: "/a"}}, "", true},
	}
	for _, tt := range tests {
		got, err := applyPatch(doc(), "", tt.ops)
		if tt.fail {
			if err == nil {
				t.Errorf("%s: want an error", tt.name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		want, _ := decodeJSON([]byte(tt.want))
		if !reflect.DeepEqual(got, want) {
			b, _ := json.Marshal(got)
			t.Errorf("%s: got %s, want %s", tt.name, b, tt.want)
		}
	}
}
