package sdktest

import (
	"os"
	"testing"
)

// TestMain removes the scripts' directory (made once for all tests) when
// the tests end.
func TestMain(m *testing.M) {
	code := m.Run()
	if scriptsDir != "" {
		os.RemoveAll(scriptsDir)
	}
	os.Exit(code)
}
