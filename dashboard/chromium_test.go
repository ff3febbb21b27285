package dashboard

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// EnvChromium names the browser to drive (scripts/testenv.sh sets it);
// otherwise "chromium" is looked up on PATH, where Debian's package puts it.
const EnvChromium = "TOLLGATE_TEST_CHROMIUM"

// EnvUpdateScreenshots=1 also writes the pages' screenshots to
// docs/screenshots, for the README.
const EnvUpdateScreenshots = "TOLLGATE_UPDATE_SCREENSHOTS"

// findChromium returns the browser's path. Without one the test is
// skipped on a laptop, but fails under CI or `make test`: a browser test
// that silently skips there proves nothing.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(EnvChromium); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "Chromium not found (Debian package chromium; scripts/testenv.sh installs it)"
	if os.Getenv("CI") != "" || testenv.RequireServers() {
		t.Fatal(why)
	}
	t.Skip(why + ": skipping the browser test")
	return ""
}

// browser is one headless Chromium tab.
type browser struct {
	t       *testing.T
	ctx     context.Context
	shots   string // where every screenshot goes
	docs    string // also here when updating the README's, else ""
	console *consoleLog
}

func startBrowser(t *testing.T, path string) *browser {
	t.Helper()
	// Flags for a closed network and a root user: no sandbox (root), no GPU,
	// and none of the background connections to Google's services that a
	// machine without internet refuses.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		_ = chromedp.Cancel(cctx)
		cancel()
		cancelAlloc()
	})
	start := time.Now()
	// The first action starts the browser; it must run without a timeout
	// (the browser lives as long as this context).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	t.Logf("chromium started in %v", time.Since(start).Round(time.Millisecond))
	b := &browser{t: t, ctx: ctx, shots: t.ArtifactDir(), console: watchConsole(ctx)}
	if os.Getenv(EnvUpdateScreenshots) == "1" {
		b.docs = filepath.Join("..", "docs", "screenshots")
		if err := os.MkdirAll(b.docs, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1360, 900)); err != nil {
		t.Fatal(err)
	}
	return b
}

// do runs the steps with a deadline; on failure it saves a screenshot of
// the page as it was and ends the test.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.failureShot(what)
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value.
func eval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.failureShot(what)
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// poll waits until the expression is truthy and returns its value.
func poll[T any](b *browser, what, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		b.failureShot(what)
		b.t.Fatalf("%s: waiting for %s: %v", what, expr, err)
	}
	return v
}

// open moves the page to another route and waits until it is rendered
// (a hash change does not reload the page, so chromedp.Navigate, which
// waits for a load, does not fit).
func (b *browser) open(hash string) {
	b.t.Helper()
	eval[chromedp.Void](b, "go to "+hash, "location.hash = "+strconv.Quote(hash))
	b.ready("open " + hash)
}

// ready waits until the page shown is complete and belongs to the current
// location (the shell marks it; the old page stays until the new one
// replaces it).
func (b *browser) ready(what string) {
	b.t.Helper()
	poll[bool](b, what, `(() => { const v = document.querySelector('.view[data-ready]');
		return !!v && v.dataset.route === location.hash })()`)
}

// shot saves a PNG of the page as name.png: the whole page, or only
// what the window shows (a long table).
func (b *browser) shot(name string, wholePage bool) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	// The pointer stays where the last click was; a hover highlight there
	// would end up in the picture.
	if err := chromedp.Do(ctx, chromedp.MouseEvent(chromedp.MouseMoved, 0, 0)); err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	capture := chromedp.CaptureScreenshot()
	if wholePage {
		capture = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(ctx, capture)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dirs := []string{b.shots}
	if b.docs != "" {
		dirs = append(dirs, b.docs)
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
		b.t.Logf("screenshot %s", p)
	}
}

func (b *browser) failureShot(what string) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return
	}
	name := "failed-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(what)) + ".png"
	p := filepath.Join(b.shots, name)
	if os.WriteFile(p, png, 0o644) == nil {
		b.t.Logf("page at failure: %s (kept with go test -artifacts)", p)
	}
}

// consoleLog collects the page's console messages, exceptions and
// browser log entries (where Chromium reports Content-Security-Policy
// violations).
type consoleLog struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func watchConsole(ctx context.Context) *consoleLog {
	c := &consoleLog{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
	return c
}

// problems are the messages that mean the page is broken: exceptions,
// console.error calls and security (CSP) reports. Failed API calls the
// page expects (401 before the key, say) are network entries, not these.
func (c *consoleLog) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		csp := strings.Contains(m.Text, "Content Security Policy")
		if m.Type == chromedp.ConsoleException || (m.Type == chromedp.ConsoleError && m.Source != "network") || csp {
			out = append(out, string(m.Type)+" "+m.Source+": "+m.Text)
		}
	}
	return out
}
