package dashboard

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestDistIsBuiltFromSources fails when web/ changed after dist/ was
// built: the committed bundle would not be what the sources say.
func TestDistIsBuiltFromSources(t *testing.T) {
	recorded, err := os.ReadFile(filepath.Join("dist", "SOURCES.sha256"))
	if err != nil {
		t.Fatalf("dist/SOURCES.sha256: %v (run `make dashboard`)", err)
	}
	got, err := sourceHash("web")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(recorded)); got != want {
		t.Fatalf("dashboard/dist was built from other sources than dashboard/web holds (%s, built from %s): run `make dashboard` and commit dist/", got[:12], want[:12])
	}
}

// sourceHash is web/build.mjs's fingerprint: sha256 over path, size and
// bytes of the build files and everything under src/, in path order.
func sourceHash(dir string) (string, error) {
	files := []string{"build.mjs", "package.json", "package-lock.json", "tsconfig.json"}
	err := filepath.WalkDir(filepath.Join(dir, "src"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n%d\n", f, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
