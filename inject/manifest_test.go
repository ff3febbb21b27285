package inject

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

func testConfig(t *testing.T) Config {
	t.Helper()
	data, err := os.ReadFile("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestInjectGolden injects every manifest in testdata/manifests and
// compares with testdata/golden (go test ./inject -run Golden -update
// rewrites them), then injects the output again: nothing may change.
func TestInjectGolden(t *testing.T) {
	cfg := testConfig(t)
	inputs, err := filepath.Glob("testdata/manifests/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		name := filepath.Base(in)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var notes []string
			got, err := Manifests(src, cfg, func(n string) { notes = append(notes, n) })
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range notes {
				t.Log("note:", n)
			}
			golden := filepath.Join("testdata", "golden", name)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update to accept):\n%s", golden, got)
			}

			again, err := Manifests(got, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, got) {
				t.Errorf("injecting the output again changed it:\n%s", again)
			}
		})
	}
}

func TestInjectLeavesOptedOutDocumentsByteForByte(t *testing.T) {
	src, err := os.ReadFile("testdata/manifests/optout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	got, err := Manifests(src, testConfig(t), func(n string) { notes = append(notes, n) })
	if err != nil {
		t.Fatal(err)
	}
	in, out := splitDocuments(src), splitDocuments(got)
	if len(in) != 4 || len(out) != 4 {
		t.Fatalf("want 4 documents in and out, got %d and %d", len(in), len(out))
	}
	for _, i := range []int{0, 1, 3} { // legacy, batch-scorer, the ConfigMap
		if !bytes.Equal(in[i], out[i]) {
			t.Errorf("document %d changed:\n%s", i+1, out[i])
		}
	}
	if bytes.Contains(out[2], []byte("OPENAI_BASE_URL")) || !bytes.Contains(out[2], []byte("tollgate.io/status: injected")) {
		t.Errorf("keep-base-urls: want injected without base URLs:\n%s", out[2])
	}
	want := []string{"Deployment legacy: opted out", "Deployment batch-scorer: opted out"}
	if len(notes) != len(want) {
		t.Fatalf("notes = %q", notes)
	}
	for i := range want {
		if !strings.HasPrefix(notes[i], want[i]) {
			t.Errorf("note %d = %q, want it to start with %q", i, notes[i], want[i])
		}
	}
}

func TestInjectManifestErrors(t *testing.T) {
	tests := map[string]string{
		"no template":         "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 1}\n",
		"no containers":       "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {}\n",
		"not yaml":            "apiVersion: v1\nkind: Pod\n  metadata: [\n",
		"containers not list": "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: 3}\n",
		"name taken":          "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: envoy, image: envoy}]}\n",
	}
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Manifests([]byte("kind: ConfigMap\n---\n"+src), Config{}, nil); err == nil {
				t.Fatal("want an error")
			} else if !strings.Contains(err.Error(), "document 2") {
				t.Errorf("error %q does not name the document", err)
			} else {
				t.Log(err)
			}
		})
	}
}

func TestInjectSplitsAndJoinsDocuments(t *testing.T) {
	src := "--- # leading\na: 1\n---\n\n---\nb: 2\n--- \nc: 3" // no final newline
	docs := splitDocuments([]byte(src))
	var kept [][]byte
	for _, d := range docs {
		if len(bytes.TrimSpace(d)) > 0 {
			kept = append(kept, d)
		}
	}
	if got, want := string(joinDocuments(kept)), "a: 1\n---\nb: 2\n---\nc: 3\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	// Inside a block scalar "---" is indented, so not a separator.
	if n := len(splitDocuments([]byte("a: |\n  ---\n  x\n"))); n != 1 {
		t.Fatalf("indented --- split the document (%d parts)", n)
	}
}
