package oldest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedChainsValidateOnOldestEnvoy: the output of `tollgate
// envoy-chains` kept in envoy/testdata/chains.yaml (envoy's
// TestChainExampleIsCurrent keeps it current; this module cannot import the
// generator without raising go-control-plane to the main module's), with
// its routes and clusters in place of each bootstrap's chain, loads into
// Envoy 1.36's schema.
func TestGeneratedChainsValidateOnOldestEnvoy(t *testing.T) {
	gen, err := os.ReadFile(filepath.Join("..", "testdata", "chains.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	routes, clusters, ok := strings.Cut(string(gen), "# Clusters: in static_resources.clusters.\n")
	if !ok || strings.Count(routes, "x-tollgate-fallback-chain") < 2 {
		t.Fatal("envoy/testdata/chains.yaml: want routes, the clusters marker, then clusters")
	}
	for _, f := range []string{"sidecar.yaml", "gateway.yaml"} {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", f))
			if err != nil {
				t.Fatal(err)
			}
			config := splice(t, string(data), "              - name: fallback_openai_together\n", "              # A sequence no chain route serves.\n", routes)
			config = splice(t, config, "\n  - name: fallback_openai_together\n", "\n  # Any other OpenAI-compatible origin", clusters)
			if _, err := load([]byte(config)); err != nil {
				t.Fatalf("%s with the generated chains does not load into Envoy 1.36's schema: %v", f, err)
			}
		})
	}
}

// splice replaces the text from the first from (its leading newline kept)
// up to to with with.
func splice(t *testing.T, s, from, to, with string) string {
	t.Helper()
	i, j := strings.Index(s, from), strings.Index(s, to)
	if i < 0 || j < i {
		t.Fatalf("no %q before %q", from, to)
	}
	if strings.HasPrefix(from, "\n") {
		i++
	}
	return s[:i] + with + s[j:]
}
