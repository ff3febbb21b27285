package envoy_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// oldestEnvoy is the oldest Envoy release Tollgate supports: the first with
// remove_on_match in the header mutation rules, which the early header
// mutation extension of the bootstraps uses. envoy/oldest (a module of
// its own, run by `make test`) validates every configuration against the
// go-control-plane envoy module of that release.
const oldestEnvoy = "1.36"

// TestOldestEnvoyModule keeps envoy/oldest honest: it pins the schema of the
// oldest supported Envoy and registers the same typed extensions as this
// package, so a configuration that needs a new extension fails there too
// instead of being reported as an unknown type for the wrong reason.
func TestOldestEnvoyModule(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join("oldest", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	want := "github.com/envoyproxy/go-control-plane/envoy v" + oldestEnvoy + "."
	if !strings.Contains(string(gomod), want) {
		t.Errorf("envoy/oldest/go.mod must require %s* (Envoy %s's schema)", want, oldestEnvoy)
	}
	ours, theirs := imports(t, "extensions_test.go"), imports(t, filepath.Join("oldest", "extensions_test.go"))
	if !slices.Equal(ours, theirs) {
		t.Errorf("typed extensions differ:\n envoy/:        %v\n envoy/oldest/: %v", ours, theirs)
	}
	// `go test ./...` at the root does not enter a nested module: only
	// the Makefile's test target runs it.
	mk, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "cd envoy/oldest && $(GO) test") {
		t.Error("the Makefile's test target must run envoy/oldest's tests (cd envoy/oldest && $(GO) test ./...)")
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "Envoy "+oldestEnvoy) {
		t.Errorf("doc.go must name the oldest supported Envoy (%s)", oldestEnvoy)
	}
}

func imports(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
