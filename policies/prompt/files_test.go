package prompt_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/prompt"
)

// openPromptFolder loads dir with polling off (tests call Reload).
func openPromptFolder(t *testing.T, dir string, store prompt.Store) *prompt.Library {
	t.Helper()
	l, err := prompt.NewLibrary(prompt.LibraryOptions{Dir: dir, Store: store, PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func resolvePrompt(t *testing.T, l *prompt.Library, id string, version int) prompt.Version {
	t.Helper()
	v, err := l.PromptVersion(context.Background(), id, version)
	if err != nil {
		t.Fatalf("%s v%d: %v", id, version, err)
	}
	return v
}

func writePromptFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPromptFolderValid(t *testing.T) {
	l := openPromptFolder(t, filepath.Join("testdata", "prompts", "valid"), nil)
	if err := l.LoadError(); err != nil {
		t.Fatal(err)
	}
	v1 := resolvePrompt(t, l, "support-answer", 1)
	if v1.Model != "gpt-4o-mini" || v1.File != "support-answer.yaml" || v1.System != nil || !v1.CreatedAt.IsZero() ||
		string(v1.Messages) != `[{"role":"system","content":"You are {{company}}'s assistant"},{"role":"user","content":"{{question}}"}]` {
		t.Fatalf("v1 %+v (%s)", v1, v1.Messages)
	}
	latest := resolvePrompt(t, l, "support-answer", 0)
	if latest.Version != 2 || latest.Model != "claude-sonnet-4-5" ||
		string(latest.System) != `"You are {{company}}'s assistant. Answer in {{ language }}."` ||
		string(latest.Messages) != `[{"role":"user","content":[{"type":"text","text":"Question: {{question}}\nBe brief.\n"},{"type":"text","text":"Priority: {{priority}}","weight":2,"urgent":true,"note":null}]}]` {
		t.Fatalf("latest %+v (%s)", latest, latest.Messages)
	}
	out, err := prompt.Render(latest, []byte(`{"company":"Acme","language":"French","question":"Où?","priority":1}`))
	if err != nil || !strings.Contains(string(out.Messages), `"Question: Où?\nBe brief.\n"`) || string(out.System) != `"You are Acme's assistant. Answer in French."` {
		t.Fatalf("render: %s %s %v", out.Messages, out.System, err)
	}
	if faq := resolvePrompt(t, l, "faq", 0); faq.Model != "" || string(faq.Messages) != `[{"role":"user","content":"What is {{topic}}?"}]` {
		t.Fatalf("faq %+v", faq)
	}
	if _, err := l.PromptVersion(context.Background(), "support-answer", 3); !errors.Is(err, prompt.ErrNotFound) {
		t.Fatalf("v3: %v", err)
	}
	vs, err := l.PromptVersions(context.Background(), "support-answer")
	if err != nil || len(vs) != 2 || vs[0].Version != 1 || vs[1].Version != 2 {
		t.Fatalf("versions %+v %v", vs, err)
	}
}

func TestPromptFileErrors(t *testing.T) {
	const head = "id: p\nversions:\n  - version: 1\n    messages:\n"
	tests := []struct {
		name    string
		content string
		line    int    // 0: no line expected
		problem string // part of the message
	}{
		{"scanner syntax error", "id: p\nversions:\n  - version: 1\n    messages: x: y\n", 4, "mapping values are not allowed"},
		{"parser syntax error", "id: p\nversions:\n  - version: 1\n   messages: x\n", 3, "did not find expected '-' indicator in a list (check the indentation"},
		{"unclosed flow list", "id: p\nversions: [\n", 3, "did not find expected node content"},
		{"unquoted placeholder", head + "      - role: user\n        content: {{q}}\n", 6, `quote text with placeholders`},
		{"empty", "\n# nothing\n", 0, "is empty"},
		{"two documents", head + "      - role: user\n---\nid: q\n", 6, "second YAML document"},
		{"not a mapping", "- a\n- b\n", 1, "want a mapping"},
		{"unknown top-level key", "id: p\nverisons: []\n", 2, `unknown key "verisons"`},
		{"duplicate key", "id: p\nid: q\nversions: []\n", 2, `key "id" appears twice`},
		{"missing id", "versions:\n  - version: 1\n", 1, "id is missing"},
		{"bad id", "id: a/b\nversions: []\n", 1, "id has '/'"},
		{"missing versions", "id: p\n", 1, "versions is missing"},
		{"empty versions", "id: p\nversions: []\n", 2, "non-empty list"},
		{"version numbering", "id: p\nversions:\n  - version: 2\n    messages: [{role: user}]\n", 3, "numbered 1, 2, 3"},
		{"version not a number", "id: p\nversions:\n  - version: one\n    messages: [{role: user}]\n", 3, "versions[0].version must be an integer"},
		{"missing version", "id: p\nversions:\n  - messages: [{role: user}]\n", 3, "versions[0].version is missing"},
		{"unknown version key", "id: p\nversions:\n  - version: 1\n    mesages: []\n", 4, `unknown key "mesages"`},
		{"missing messages", "id: p\nversions:\n  - version: 1\n", 3, "versions[0].messages is missing"},
		{"empty messages", "id: p\nversions:\n  - version: 1\n    messages: []\n", 4, "non-empty list"},
		{"message not a mapping", head + "      - role: user\n      - hello\n", 6, "messages[1] must be a mapping"},
		{"model not a string", "id: p\nversions:\n  - version: 1\n    model: 4\n    messages: [{role: user}]\n", 4, "model must be a string"},
		{"system a mapping", "id: p\nversions:\n  - version: 1\n    system: {a: 1}\n    messages: [{role: user}]\n", 4, "system must be a string or a list"},
		{"infinity", head + "      - role: user\n        temperature: .inf\n", 6, "no JSON form"},
		{"duplicate message key", head + "      - role: user\n        role: system\n", 6, `key "role" is already defined at line 5`},
		{"second version bad", head + "      - role: user\n  - version: 2\n    messages: hello\n", 7, "versions[1].messages must be a non-empty list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writePromptFile(t, filepath.Join(dir, "bad.yaml"), tc.content)
			_, err := prompt.NewLibrary(prompt.LibraryOptions{Dir: dir, PollInterval: -1})
			var fe *prompt.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a FileError", err)
			}
			if fe.File != filepath.Join(dir, "bad.yaml") || fe.Line != tc.line || !strings.Contains(fe.Problem, tc.problem) {
				t.Fatalf("got %q (file %s, line %d), want line %d and %q", err, fe.File, fe.Line, tc.line, tc.problem)
			}
			if tc.line > 0 && !strings.Contains(err.Error(), "bad.yaml:"+strconv.Itoa(tc.line)+": ") {
				t.Fatalf("%q does not name file and line", err)
			}
		})
	}
}

func TestPromptFolderKeepsLastGoodSet(t *testing.T) {
	dir := t.TempDir()
	good := "id: p\nversions:\n  - version: 1\n    messages: [{role: user, content: one}]\n"
	writePromptFile(t, filepath.Join(dir, "p.yaml"), good)
	l := openPromptFolder(t, dir, nil)

	writePromptFile(t, filepath.Join(dir, "p.yaml"), good+"  - version: 3\n    messages: [{role: user, content: three}]\n")
	err := l.Reload()
	if err == nil || !strings.Contains(err.Error(), "p.yaml:5: versions[1].version is 3") {
		t.Fatalf("reload: %v", err)
	}
	if l.LoadError() == nil || l.LoadError().Error() != err.Error() {
		t.Fatalf("LoadError %v", l.LoadError())
	}
	if v := resolvePrompt(t, l, "p", 0); v.Version != 1 || !strings.Contains(string(v.Messages), "one") {
		t.Fatalf("last good set not kept: %+v", v)
	}
	// Polling the unchanged bad folder reports the same error.
	if err2 := l.Reload(); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("second reload: %v", err2)
	}

	writePromptFile(t, filepath.Join(dir, "p.yaml"), good+"  - version: 2\n    messages: [{role: user, content: two}]\n")
	if err := l.Reload(); err != nil || l.LoadError() != nil {
		t.Fatalf("fixed: %v / %v", err, l.LoadError())
	}
	if v := resolvePrompt(t, l, "p", 0); v.Version != 2 {
		t.Fatalf("latest %+v", v)
	}

	// The folder vanishing is an error too, and the set stays.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := l.Reload(); err == nil || l.LoadError() == nil {
		t.Fatal("a missing folder loaded")
	}
	if v := resolvePrompt(t, l, "p", 2); v.Version != 2 {
		t.Fatalf("after removal %+v", v)
	}
}

func TestPromptFolderDuplicateIDs(t *testing.T) {
	dir := t.TempDir()
	p := "# same id\nid: shared\nversions:\n  - version: 1\n    messages: [{role: user}]\n"
	writePromptFile(t, filepath.Join(dir, "a.yaml"), p)
	writePromptFile(t, filepath.Join(dir, "b.yml"), p)
	_, err := prompt.NewLibrary(prompt.LibraryOptions{Dir: dir, PollInterval: -1})
	if err == nil || !strings.Contains(err.Error(), "b.yml:2:") || !strings.Contains(err.Error(), `"shared"`) || !strings.Contains(err.Error(), filepath.Join(dir, "a.yaml")) {
		t.Fatalf("got %v", err)
	}
}

func TestPromptFolderReportsEveryBadFile(t *testing.T) {
	dir := t.TempDir()
	writePromptFile(t, filepath.Join(dir, "a.yaml"), "id: a\n")
	writePromptFile(t, filepath.Join(dir, "b.yaml"), "id: b\n")
	_, err := prompt.NewLibrary(prompt.LibraryOptions{Dir: dir, PollInterval: -1})
	if err == nil || !strings.Contains(err.Error(), "a.yaml:1:") || !strings.Contains(err.Error(), "b.yaml:1:") {
		t.Fatalf("got %v", err)
	}
}

func TestPromptFolderMissingAtStart(t *testing.T) {
	_, err := prompt.NewLibrary(prompt.LibraryOptions{Dir: filepath.Join(t.TempDir(), "nope")})
	if err == nil {
		t.Fatal("a missing folder loaded")
	}
}

func TestPromptFolderPollsForChanges(t *testing.T) {
	dir := t.TempDir()
	v1 := "id: p\nversions:\n  - version: 1\n    messages: [{role: user, content: one}]\n"
	writePromptFile(t, filepath.Join(dir, "p.yaml"), v1)
	l, err := prompt.NewLibrary(prompt.LibraryOptions{Dir: dir, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	writePromptFile(t, filepath.Join(dir, "p.yaml"), v1+"  - version: 2\n    messages: [{role: user, content: two}]\n")
	writePromptFile(t, filepath.Join(dir, "q.yaml"), "id: q\nversions:\n  - version: 1\n    messages: [{role: user}]\n")
	testenv.WaitFor(t, 5*time.Second, "the poller to load version 2 and q", func() bool {
		v, err := l.PromptVersion(context.Background(), "p", 0)
		_, errQ := l.PromptVersion(context.Background(), "q", 1)
		return err == nil && v.Version == 2 && errQ == nil
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	// Answers from the last set after Close.
	resolvePrompt(t, l, "q", 1)
}

// TestPromptFolderConfigMapLayout mounts prompts the way the kubelet does:
// the files live in a hidden timestamped folder, ..data points at it, and
// each key is a top-level symlink through ..data. An update writes a new
// folder and swaps ..data atomically.
func TestPromptFolderConfigMapLayout(t *testing.T) {
	dir := t.TempDir()
	mount := func(stamp string, files map[string]string) {
		t.Helper()
		real := filepath.Join(dir, stamp)
		if err := os.Mkdir(real, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			writePromptFile(t, filepath.Join(real, name), content)
			link := filepath.Join(dir, name)
			if _, err := os.Lstat(link); err != nil {
				if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
					t.Fatal(err)
				}
			}
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(stamp, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	one := "id: cm\nversions:\n  - version: 1\n    messages: [{role: user, content: one}]\n"
	mount("..2026_03_01_10_00_00.000000001", map[string]string{"cm.yaml": one})
	l := openPromptFolder(t, dir, nil)
	if v := resolvePrompt(t, l, "cm", 0); v.Version != 1 || v.File != "cm.yaml" {
		t.Fatalf("got %+v", v)
	}

	mount("..2026_03_01_10_05_00.000000002", map[string]string{
		"cm.yaml":    one + "  - version: 2\n    messages: [{role: user, content: two}]\n",
		"extra.yaml": "id: extra\nversions:\n  - version: 1\n    messages: [{role: user}]\n",
	})
	if err := os.RemoveAll(filepath.Join(dir, "..2026_03_01_10_00_00.000000001")); err != nil {
		t.Fatal(err)
	}
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if v := resolvePrompt(t, l, "cm", 0); v.Version != 2 {
		t.Fatalf("after the swap %+v", v)
	}
	resolvePrompt(t, l, "extra", 1)

	// A key removed from the ConfigMap can leave a dangling symlink for a
	// moment: it is skipped, not an error.
	if err := os.Symlink(filepath.Join("..data", "gone.yaml"), filepath.Join(dir, "gone.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := l.Reload(); err != nil {
		t.Fatalf("dangling symlink: %v", err)
	}
}
