package fault

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/devtest"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/mockprovider"
)

// stack is what one scenario's tollgate processes share: the mock provider,
// the data and spool folders (kept across restarts, like a pod's volume)
// and the store flags.
type stack struct {
	upstream *httptest.Server
	dataDir  string
	spoolDir string
	args     []string // --clickhouse, --redis and scenario flags
}

func newStack(t *testing.T, args ...string) *stack {
	t.Helper()
	up := httptest.NewServer(mockprovider.New(mockprovider.Options{}))
	t.Cleanup(up.Close)
	return &stack{upstream: up, dataDir: t.TempDir(), spoolDir: t.TempDir(), args: args}
}

// tollgate is one `tollgate dev` child process.
type tollgate struct {
	t     *testing.T
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited
	err   error         // Wait's result, set before done closes
	out   *testenv.LogBuffer
	addrs map[string]string // listen (data plane), http, grpc
}

// start runs `tollgate dev` as a child process (the test binary itself,
// see TestMain) and waits for its ready line.
func (s *stack) start(t *testing.T, extra ...string) *tollgate {
	t.Helper()
	args := append([]string{"dev",
		"--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--data-dir", s.dataDir, "--spool-dir", s.spoolDir,
		"--upstream-openai", s.upstream.URL, "--upstream-anthropic", s.upstream.URL,
		"--log-flush-interval", "100ms", "--shutdown-timeout", "30s",
		// A store call is only cut short by a store that is down or hung,
		// never by a test machine under load: the scenarios count exact
		// answers, refusals and charges. Redis killed still fails at once
		// (a refused connection).
		"--message-timeout", "10s", "--redis-timeout", "5s", "--redis-write-timeout", "5s",
	}, s.args...)
	args = append(args, extra...)
	raw, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	// The child dies with the test binary, so a failed test leaves none.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	g := &tollgate{t: t, cmd: cmd, done: make(chan struct{}), out: &testenv.LogBuffer{}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan map[string]string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(g.out, line)
			if fields, ok := strings.CutPrefix(line, "tollgate ready "); ok {
				addrs := map[string]string{}
				for _, f := range strings.Fields(fields) {
					k, v, _ := strings.Cut(f, "=")
					addrs[k] = v
				}
				ready <- addrs
			}
		}
		_, _ = io.Copy(g.out, pr)
	}()
	go func() {
		g.err = cmd.Wait()
		pw.Close()
		close(g.done)
	}()
	t.Cleanup(func() {
		g.kill()
		if t.Failed() {
			t.Logf("tollgate (pid %d) output:\n%s", cmd.Process.Pid, tail(g.out.String(), 60))
		}
	})
	select {
	case g.addrs = <-ready:
	case <-g.done:
		t.Fatalf("tollgate exited before ready (%v):\n%s", g.err, g.out)
	case <-time.After(60 * time.Second):
		t.Fatalf("tollgate: no ready line:\n%s", g.out)
	}
	return g
}

func (g *tollgate) url(path string) string { return "http://" + g.addrs["listen"] + path }

// kill ends the process with SIGKILL, as a crash or the OOM killer would,
// and waits until it is gone.
func (g *tollgate) kill() {
	select {
	case <-g.done:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGKILL)
	<-g.done
}

// stop shuts the process down as Kubernetes would (SIGTERM) and fails the
// test unless it exits cleanly: shutdown flushes the log.
func (g *tollgate) stop() {
	g.t.Helper()
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(90 * time.Second):
		g.t.Fatalf("tollgate did not stop after SIGTERM:\n%s", tail(g.out.String(), 60))
	}
	if g.err != nil {
		g.t.Fatalf("tollgate exited with %v:\n%s", g.err, tail(g.out.String(), 60))
	}
}

// metric sums the samples of a /metrics series whose labels contain every
// one of labels (`reason="corrupt"`); 0 when there is none.
func (g *tollgate) metric(name string, labels ...string) float64 {
	g.t.Helper()
	return devtest.Counter(g.t, g.addrs["http"], name, labels...)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
