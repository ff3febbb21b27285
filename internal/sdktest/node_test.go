package sdktest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeDir is testdata/node: the scripts, package.json and the lock file.
const nodeDir = "testdata/node"

var (
	modulesOnce sync.Once
	modulesDir  string // a node_modules holding the pinned SDKs
	modulesErr  error
)

// nodeModules returns the node_modules of the pinned SDKs, installing them
// with `npm ci` on first use into a cache directory named by the lock
// file's hash, so later runs reuse it. A machine without node or npm fails
// the test with what to install: these tests never skip.
func nodeModules(t *testing.T) string {
	t.Helper()
	modulesOnce.Do(func() { modulesDir, modulesErr = installModules() })
	if modulesErr != nil {
		t.Fatal(modulesErr)
	}
	return modulesDir
}

func installModules() (string, error) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s not found on PATH: install Debian's nodejs and npm packages (scripts/testenv.sh installs them)", tool)
		}
	}
	lock, err := os.ReadFile(filepath.Join(nodeDir, "package-lock.json"))
	if err != nil {
		return "", err
	}
	manifest, err := os.ReadFile(filepath.Join(nodeDir, "package.json"))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(append([]byte{}, lock...), manifest...))
	root, err := os.UserCacheDir()
	if err != nil || root == "" {
		root = os.TempDir()
	}
	final := filepath.Join(root, "tollgate-sdktest", hex.EncodeToString(sum[:8]))
	modules := filepath.Join(final, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, ".package-lock.json")); err == nil {
		return modules, nil
	}
	// Installed aside and renamed into place, so a concurrent run or an
	// interrupted install never leaves a half-filled cache behind.
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(filepath.Dir(final), "install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	for name, data := range map[string][]byte{"package.json": manifest, "package-lock.json": lock} {
		if err := os.WriteFile(filepath.Join(work, name), data, 0o644); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel", "error")
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm ci of %s (needs the npm registry): %v\n%s", nodeDir, err, out)
	}
	if err := os.Rename(work, final); err != nil {
		if _, statErr := os.Stat(filepath.Join(modules, ".package-lock.json")); statErr != nil {
			return "", fmt.Errorf("installing the SDKs into %s: %v", final, err)
		}
	}
	return modules, nil
}

// result is what every script prints.
type result struct {
	Model        string     `json:"model"`
	Content      string     `json:"content"`
	ToolCalls    []toolCall `json:"tool_calls"`
	FinishReason string     `json:"finish_reason"`
	Usage        struct {
		Input  int64 `json:"input"`
		Output int64 `json:"output"`
	} `json:"usage"`
	Chunks        int    `json:"chunks"`
	Cache         string `json:"cache"`          // Helicone-Cache
	Similarity    string `json:"similarity"`     // Helicone-Cache-Similarity
	FallbackIndex string `json:"fallback_index"` // Helicone-Fallback-Index
}

type toolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// scenario is one run of a script.
type scenario struct {
	script  string // chat.mjs or messages.mjs
	baseURL string
	model   string
	prompt  string
	stream  bool
	tools   bool
	headers map[string]string
	env     []string // further SDKTEST_* settings
}

// run runs the script with node, next to the cached node_modules (linked
// into a temporary directory with a copy of the scripts), and decodes its
// JSON line.
func (s scenario) run(t *testing.T) result {
	t.Helper()
	dir := scriptDir(t)
	headers, _ := json.Marshal(s.headers)
	env := append(os.Environ(),
		"SDKTEST_BASE_URL="+s.baseURL, "SDKTEST_MODEL="+s.model, "SDKTEST_PROMPT="+s.prompt,
		"SDKTEST_STREAM="+flag(s.stream), "SDKTEST_TOOLS="+flag(s.tools), "SDKTEST_HEADERS="+string(headers),
		// Loopback only: no proxy from the environment may take the calls.
		"NO_PROXY=*", "no_proxy=*", "HTTP_PROXY=", "HTTPS_PROXY=", "http_proxy=", "https_proxy=")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", s.script)
	cmd.Dir = dir
	cmd.Env = append(env, s.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s (stream %v, tools %v): %v\n%s%s", s.script, s.stream, s.tools, err, stderr.String(), stdout.String())
	}
	var r result
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &r); err != nil {
		t.Fatalf("node %s printed %q: %v\n%s", s.script, stdout.String(), err, stderr.String())
	}
	return r
}

var (
	scriptsOnce sync.Once
	scriptsDir  string
	scriptsErr  error
)

// scriptDir is a directory with the scripts and a link to node_modules,
// made once per test binary (node resolves an import from the script's
// own directory up).
func scriptDir(t *testing.T) string {
	t.Helper()
	modules := nodeModules(t)
	scriptsOnce.Do(func() {
		scriptsDir, scriptsErr = os.MkdirTemp("", "tollgate-sdktest-")
		if scriptsErr != nil {
			return
		}
		entries, err := os.ReadDir(nodeDir)
		if err != nil {
			scriptsErr = err
			return
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".mjs") && e.Name() != "package.json" {
				continue
			}
			data, err := os.ReadFile(filepath.Join(nodeDir, e.Name()))
			if err == nil {
				err = os.WriteFile(filepath.Join(scriptsDir, e.Name()), data, 0o644)
			}
			if err != nil {
				scriptsErr = err
				return
			}
		}
		scriptsErr = os.Symlink(modules, filepath.Join(scriptsDir, "node_modules"))
	})
	if scriptsErr != nil {
		t.Fatal(scriptsErr)
	}
	return scriptsDir
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
