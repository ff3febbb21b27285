package envoy_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/tollgate-dev/tollgate/envoy"
)

// The embedded copies are the files, and they load like them.
func TestEmbedded(t *testing.T) {
	for file, embedded := range map[string][]byte{"sidecar.yaml": envoy.Sidecar, "gateway.yaml": envoy.Gateway} {
		t.Run(file, func(t *testing.T) {
			onDisk, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(embedded, onDisk) {
				t.Fatalf("embedded %s differs from the file", file)
			}
			if _, err := load(embedded); err != nil {
				t.Fatal(err)
			}
		})
	}
}
