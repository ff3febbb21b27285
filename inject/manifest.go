package inject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// templatePaths locates the pod template of each workload kind, by API
// group and kind; a Pod is its own template (empty path).
var templatePaths = map[[2]string][]string{
	{"", "Pod"}:                   {},
	{"", "ReplicationController"}: {"spec", "template"},
	{"apps", "Deployment"}:        {"spec", "template"},
	{"apps", "StatefulSet"}:       {"spec", "template"},
	{"apps", "DaemonSet"}:         {"spec", "template"},
	{"apps", "ReplicaSet"}:        {"spec", "template"},
	{"extensions", "Deployment"}:  {"spec", "template"},
	{"extensions", "DaemonSet"}:   {"spec", "template"},
	{"extensions", "ReplicaSet"}:  {"spec", "template"},
	{"batch", "Job"}:              {"spec", "template"},
	{"batch", "CronJob"}:          {"spec", "jobTemplate", "spec", "template"},
}

// Manifests injects into every workload of a multi-document YAML stream, as
// `tollgate inject` does: whatever the namespace's labels (running it is the
// opt-in), but honouring the opt-out annotation. A v1 List is walked item
// by item. A document left unchanged — another kind, opted out, already
// injected — is copied byte for byte, so injecting the output again gives
// it back identical. A changed document is re-encoded with sorted keys
// (its comments are lost). note, if not nil, hears why a workload was left
// alone.
func Manifests(in []byte, cfg Config, note func(string)) ([]byte, error) {
	if note == nil {
		note = func(string) {}
	}
	var out [][]byte
	for _, doc := range splitDocuments(in) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		res, err := injectDocument(doc, cfg, note)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", len(out)+1, err)
		}
		out = append(out, res)
	}
	return joinDocuments(out), nil
}

func injectDocument(doc []byte, cfg Config, note func(string)) ([]byte, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(js)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return doc, nil // comments only, or not an object: not ours
	}
	var changed bool
	if items, ok := obj["items"].([]any); ok && str(obj, "kind") == "List" && str(obj, "apiVersion") == "v1" {
		for i, item := range items {
			m, ok := item.(map[string]any)
			if !ok {
				continue
			}
			c, err := injectObject(m, cfg, note)
			if err != nil {
				return nil, fmt.Errorf("items[%d]: %w", i, err)
			}
			changed = changed || c
		}
	} else if changed, err = injectObject(obj, cfg, note); err != nil {
		return nil, err
	}
	if !changed {
		return doc, nil
	}
	return yaml.Marshal(obj)
}

// injectObject injects into one decoded object in place.
func injectObject(obj map[string]any, cfg Config, note func(string)) (bool, error) {
	kind := str(obj, "kind")
	group, _, grouped := strings.Cut(str(obj, "apiVersion"), "/")
	if !grouped {
		group = "" // "v1": the core group
	}
	path, ok := templatePaths[[2]string{group, kind}]
	if !ok {
		return false, nil
	}
	meta, _ := obj["metadata"].(map[string]any)
	w := Workload{Kind: kind, Name: str(meta, "name")}
	if w.Name == "" {
		w.Name = strings.TrimSuffix(str(meta, "generateName"), "-")
	}
	label := kind + " " + w.Name

	// An opt-out on the workload itself counts as one on its pod template.
	var outer metav1.ObjectMeta
	if len(path) > 0 && convert(meta, &outer) == nil && OptedOut(&outer) {
		note(label + ": opted out (" + KeyInject + ": false)")
		return false, nil
	}
	tmplObj := obj
	for _, key := range path {
		next, ok := tmplObj[key].(map[string]any)
		if !ok {
			return false, fmt.Errorf("%s: no pod template at %s", label, strings.Join(path, "."))
		}
		tmplObj = next
	}
	before, err := decodeTemplate(tmplObj)
	if err != nil {
		return false, fmt.Errorf("%s: %w", label, err)
	}

	after := before.DeepCopy()
	changed, err := Pod(&after.ObjectMeta, &after.Spec, w, cfg)
	if err != nil {
		return false, fmt.Errorf("%s: %w", label, err)
	}
	if !changed {
		reason, _ := SkipReason(&before.ObjectMeta, &before.Spec)
		note(label + ": " + reason)
		return false, nil
	}
	ops, err := Patch(before, after)
	if err != nil {
		return false, fmt.Errorf("%s: %w", label, err)
	}
	for _, w := range Warnings(&before.ObjectMeta, &before.Spec) {
		note(label + ": warning: " + w)
	}
	if _, ok := tmplObj["metadata"].(map[string]any); !ok {
		tmplObj["metadata"] = map[string]any{} // a parent for the annotations
	}
	// The template is a map inside obj: patching it in place patches obj.
	if _, err := applyPatch(tmplObj, "", ops); err != nil {
		return false, fmt.Errorf("%s: %w", label, err)
	}
	return true, nil
}

// decodeTemplate reads a pod template, or a pod (its metadata and spec).
func decodeTemplate(m map[string]any) (*corev1.PodTemplateSpec, error) {
	var t corev1.PodTemplateSpec
	if err := convert(map[string]any{"metadata": m["metadata"], "spec": m["spec"]}, &t); err != nil {
		return nil, fmt.Errorf("reading the pod template: %w", err)
	}
	return &t, nil
}

func convert(from any, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// splitDocuments splits a YAML stream at its "---" lines.
func splitDocuments(in []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for _, line := range bytes.SplitAfter(in, []byte("\n")) {
		if isSeparator(line) {
			docs = append(docs, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}

func isSeparator(line []byte) bool {
	l := string(bytes.TrimRight(line, " \t\r\n"))
	if l == "---" {
		return true
	}
	rest, ok := strings.CutPrefix(l, "---")
	return ok && (strings.HasPrefix(rest, " #") || strings.HasPrefix(rest, "\t#"))
}

func joinDocuments(docs [][]byte) []byte {
	var out bytes.Buffer
	for i, d := range docs {
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(d)
		if len(d) > 0 && d[len(d)-1] != '\n' {
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}
