package inject

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// sidecarRole checks that an injected tollgate container runs with the
// sidecar role, which nothing after it overrides: the application shares
// its loopback and must not reach the API (DESIGN.md section 2, Roles).
func sidecarRole(t *testing.T, where string, c *corev1.Container) {
	t.Helper()
	var role string
	for i, a := range c.Args {
		name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "role" {
			continue
		}
		if !ok && i+1 < len(c.Args) {
			value = c.Args[i+1]
		}
		role = value
	}
	if role != "sidecar" {
		t.Errorf("%s: the tollgate container runs with role %q (args %q), want sidecar", where, role, c.Args)
	}
}

// Every tollgate container `tollgate inject` writes runs as a sidecar.
func TestInjectedProcessorsRunAsSidecars(t *testing.T) {
	cfg := testConfig(t)
	inputs, _ := filepath.Glob("testdata/manifests/*.yaml")
	var seen int
	for _, in := range inputs {
		src, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Manifests(src, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range splitDocuments(out) {
			js, err := yaml.YAMLToJSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			// Every init container named tollgate, wherever the template is.
			var walk func(v any)
			walk = func(v any) {
				switch n := v.(type) {
				case map[string]any:
					if ics, ok := n["initContainers"].([]any); ok {
						for _, ic := range ics {
							var c corev1.Container
							if convert(ic, &c) == nil && c.Name == ProcessorContainer {
								seen++
								sidecarRole(t, filepath.Base(in), &c)
							}
						}
					}
					for _, child := range n {
						walk(child)
					}
				case []any:
					for _, child := range n {
						walk(child)
					}
				}
			}
			var v any
			if err := json.Unmarshal(js, &v); err != nil {
				t.Fatal(err)
			}
			walk(v)
		}
	}
	if seen < 5 {
		t.Fatalf("found %d injected tollgate containers in the golden inputs", seen)
	}
}

// The webhook's patch gives the pod a tollgate container in the sidecar role.
func TestWebhookInjectsTheSidecarRole(t *testing.T) {
	h, err := NewWebhook(testConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	pod := webhookPod(nil)
	rec, resp := postReview(t, h, "/namespace", reviewOf(t, admissionv1.Create, podKind, pod))
	if resp == nil || len(resp.Patch) == 0 {
		t.Fatalf("not injected: %d %s", rec.Code, rec.Body)
	}
	var patched corev1.Pod
	patchPod(t, pod, resp.Patch, &patched)
	var found bool
	for i := range patched.Spec.InitContainers {
		if c := &patched.Spec.InitContainers[i]; c.Name == ProcessorContainer {
			found = true
			sidecarRole(t, "webhook patch", c)
		}
	}
	if !found {
		t.Fatal("the patch adds no tollgate container")
	}
}

// An injection setting cannot take the sidecar role away.
func TestInjectRefusesARoleOverride(t *testing.T) {
	for _, args := range [][]string{{"--role=gateway"}, {"--role", "gateway"}, {"-role=gateway"}} {
		if err := (Config{Args: args}).Validate(); err == nil || !strings.Contains(err.Error(), "sidecar") {
			t.Errorf("args %q: %v", args, err)
		}
	}
	if err := (Config{Args: []string{"--log-level", "warn"}}).Validate(); err != nil {
		t.Errorf("other args refused: %v", err)
	}
}

// patchPod applies a webhook's JSON Patch to pod, as the API server would.
func patchPod(t *testing.T, pod *corev1.Pod, patch []byte, out *corev1.Pod) {
	t.Helper()
	var ops []Operation
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatal(err)
	}
	doc, err := toJSONValue(pod)
	if err != nil {
		t.Fatal(err)
	}
	got, err := applyPatch(doc, "", ops)
	if err != nil {
		t.Fatal(err)
	}
	if err := convert(got, out); err != nil {
		t.Fatal(err)
	}
}
