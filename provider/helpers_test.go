package provider

import (
	"os"
	"path/filepath"
	"testing"
)

// testdata reads a sample body from testdata/.
func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
