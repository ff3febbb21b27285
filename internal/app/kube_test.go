package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `tollgate inject --kube-version` refuses a cluster without native
// sidecars with an error saying so, and writes nothing.
func TestInjectCLIRefusesOldKubernetes(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.yaml"), filepath.Join(dir, "out.yaml")
	if err := os.WriteFile(in, []byte(notebookPod), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), append([]string{"inject", "-f", in, "-o", out, "--kube-version", "1.28"}, injectArgs...), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "native sidecars") || !strings.Contains(err.Error(), "1.29") {
		t.Fatalf("inject on 1.28: %v", err)
	}
	if _, statErr := os.Stat(out); statErr == nil {
		t.Error("an output file was written")
	}
	if err := Run(context.Background(), append([]string{"inject", "-f", in, "-o", out, "--kube-version", "v1.30.4"}, injectArgs...), &stdout, &stderr); err != nil {
		t.Fatalf("inject on 1.30: %v", err)
	}
}
