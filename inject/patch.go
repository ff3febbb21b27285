package inject

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// Operation is one RFC 6902 JSON Patch operation; the injector only adds
// and replaces.
type Operation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// Patch describes what Pod changed, turning before into after, as JSON
// Patch operations on before's JSON. It knows the shape of Pod's changes —
// annotations set, init containers put in one place, environment variables and
// volumes appended — and touches nothing else, so fields of before's JSON
// that the Go types do not know (a newer Kubernetes) survive. Any other
// difference is an error: a change to Pod that this does not describe must
// fail, not vanish from the webhook's answer.
func Patch(before, after *corev1.PodTemplateSpec) ([]Operation, error) {
	var ops []Operation
	add := func(more []Operation, err error) error {
		ops = append(ops, more...)
		return err
	}
	if err := add(mapOps("/metadata/annotations", before.Annotations, after.Annotations)); err != nil {
		return nil, err
	}
	if err := add(insertOps("/spec/initContainers", before.Spec.InitContainers, after.Spec.InitContainers)); err != nil {
		return nil, err
	}
	if len(before.Spec.Containers) != len(after.Spec.Containers) {
		return nil, fmt.Errorf("patch: the number of containers changed")
	}
	for i := range after.Spec.Containers {
		path := fmt.Sprintf("/spec/containers/%d/env", i)
		if err := add(appendOps(path, before.Spec.Containers[i].Env, after.Spec.Containers[i].Env)); err != nil {
			return nil, err
		}
	}
	if err := add(appendOps("/spec/volumes", before.Spec.Volumes, after.Spec.Volumes)); err != nil {
		return nil, err
	}

	rest := after.DeepCopy()
	rest.Annotations = before.Annotations
	rest.Spec.InitContainers = before.Spec.InitContainers
	rest.Spec.Volumes = before.Spec.Volumes
	for i := range rest.Spec.Containers {
		rest.Spec.Containers[i].Env = before.Spec.Containers[i].Env
	}
	if !equality.Semantic.DeepEqual(rest, before) {
		return nil, fmt.Errorf("patch: the pod changed beyond what a patch here describes")
	}
	return ops, nil
}

// insertOps expects after = before with new items in one place (in front,
// or after Istio's init containers).
func insertOps[T any](path string, before, after []T) ([]Operation, error) {
	n := len(after) - len(before)
	if n < 0 {
		return nil, fmt.Errorf("patch: %s lost items", path)
	}
	if n == 0 {
		if !equality.Semantic.DeepEqual(after, before) {
			return nil, fmt.Errorf("patch: %s changed beyond new items in one place", path)
		}
		return nil, nil
	}
	at := 0
	for at < len(before) && equality.Semantic.DeepEqual(after[at], before[at]) {
		at++
	}
	if !equality.Semantic.DeepEqual(after[at+n:], before[at:]) {
		return nil, fmt.Errorf("patch: %s changed beyond new items in one place", path)
	}
	if len(before) == 0 {
		return []Operation{{Op: "add", Path: path, Value: after}}, nil
	}
	ops := make([]Operation, n)
	for i := range n {
		ops[i] = Operation{Op: "add", Path: fmt.Sprintf("%s/%d", path, at+i), Value: after[at+i]}
	}
	return ops, nil
}

// appendOps expects after = before + new items.
func appendOps[T any](path string, before, after []T) ([]Operation, error) {
	if len(after) < len(before) || !equality.Semantic.DeepEqual(after[:len(before)], before) {
		return nil, fmt.Errorf("patch: %s changed beyond new items at the end", path)
	}
	if len(after) == len(before) {
		return nil, nil
	}
	if len(before) == 0 {
		return []Operation{{Op: "add", Path: path, Value: after}}, nil
	}
	var ops []Operation
	for _, v := range after[len(before):] {
		ops = append(ops, Operation{Op: "add", Path: path + "/-", Value: v})
	}
	return ops, nil
}

// mapOps expects keys added or changed, none removed.
func mapOps(path string, before, after map[string]string) ([]Operation, error) {
	for k := range before {
		if _, ok := after[k]; !ok {
			return nil, fmt.Errorf("patch: %s lost key %q", path, k)
		}
	}
	if len(before) == 0 {
		if len(after) == 0 {
			return nil, nil
		}
		return []Operation{{Op: "add", Path: path, Value: after}}, nil
	}
	var ops []Operation
	for _, k := range slices.Sorted(maps.Keys(after)) {
		old, had := before[k]
		switch {
		case !had:
			ops = append(ops, Operation{Op: "add", Path: path + "/" + escapePointer(k), Value: after[k]})
		case old != after[k]:
			ops = append(ops, Operation{Op: "replace", Path: path + "/" + escapePointer(k), Value: after[k]})
		}
	}
	return ops, nil
}

// escapePointer escapes one JSON Pointer token (RFC 6901).
func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
