package doclinks

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the repository's top folder, two levels above this package.
const repoRoot = "../.."

// TestRelativeLinks checks every relative link of every Markdown file of the
// repository: files exist, #anchors name a heading.
func TestRelativeLinks(t *testing.T) {
	files := markdownFiles(t)
	if len(files) == 0 {
		t.Fatal("no Markdown files found")
	}
	broken, err := Check(repoRoot, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range broken {
		t.Error(b)
	}
}

// markdownFiles lists the tracked *.md files, or without git every *.md
// outside hidden folders and node_modules.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	if out, err := exec.Command("git", "-C", repoRoot, "ls-files", "-z", "--", "*.md").Output(); err == nil {
		var files []string
		for _, f := range strings.Split(string(out), "\x00") {
			if f == "" {
				continue
			}
			// A file deleted in the work tree but not yet in the index.
			if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(f))); err == nil {
				files = append(files, f)
			}
		}
		return files
	}
	var files []string
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != repoRoot && (strings.HasPrefix(name, ".") || name == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".md") {
			rel, err := filepath.Rel(repoRoot, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"What a client cannot steer":       "what-a-client-cannot-steer",
		"Life of a chat completion":        "life-of-a-chat-completion",
		"`make run` and `make test`":       "make-run-and-make-test",
		"Retries and fallback":             "retries-and-fallback",
		"Security: what the app can reach": "security-what-the-app-can-reach",
		"See [k8s](k8s/README.md)":         "see-k8s",
		"Routing and timeouts, 1.36+":      "routing-and-timeouts-136",
	} {
		if got := Slug(heading); got != want {
			t.Errorf("Slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

func TestCheckFindsBrokenLinks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/a.md", "# A page\n\n## Twice\n\n## Twice\n\nSee [b](../b.go), [top](#a-page), [again](#twice-1).\n")
	write("b.go", "package b\n")
	write("README.md", strings.Join([]string{
		"# Top",
		"[ok](docs/a.md#twice) [ok too](docs/) [external](https://example.com/x.md#nothing)",
		"[gone](docs/missing.md) [no anchor](docs/a.md#nowhere) [self](#nope)",
		"`[not a link](nowhere.md)`",
		"```",
		"[in a code block](nowhere.md)",
		"```",
		"![shot](docs/shot.png)",
		"[ref]: docs/a.md#a-page",
		"",
	}, "\n"))
	broken, err := Check(dir, []string{"README.md", "docs/a.md"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range broken {
		got = append(got, b.Target)
	}
	want := []string{"docs/missing.md", "docs/a.md#nowhere", "#nope", "docs/shot.png"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("broken links %q, want %q", got, want)
	}
}
