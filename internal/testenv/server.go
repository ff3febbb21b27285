package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	startTimeout = 60 * time.Second
	// ClickHouse 18.16 takes about a second to stop gracefully, a few with
	// open connections; past this the process is killed.
	clickHouseStopTimeout = 15 * time.Second
	redisStopTimeout      = 5 * time.Second
)

// proc is one private server process that can be stopped and started again
// on the same ports and data folder.
type proc struct {
	t           testing.TB
	name        string   // for messages
	argv        []string // executable and arguments
	dir         string   // the instance's own folder
	logs        []string // files shown when start-up fails
	stopTimeout time.Duration
	ready       func(ctx context.Context) error

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited and been reaped
}

// start launches the process and waits until ready answers. It returns an
// error instead of failing so callers can retry on a port clash.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s is already running (pid %d)", p.name, p.cmd.Process.Pid)
		}
	}
	out, err := os.OpenFile(filepath.Join(p.dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own copy once started
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Dir = p.dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // reaps the child; exit status is visible in its logs
		close(done)
	}()
	p.cmd, p.done = cmd, done

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		if err := p.ready(ctx); err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited during start-up\n%s", p.name, p.logTails())
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("%s did not answer within %v\n%s", p.name, startTimeout, p.logTails())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Start starts the server again after Stop or Kill, on the same ports and
// with the same data folder, and waits until it answers.
func (p *proc) Start() {
	p.t.Helper()
	if err := p.start(); err != nil {
		p.t.Fatal(err)
	}
}

// Stop shuts the server down gracefully (SIGTERM), killing it if it takes
// too long, and waits until the process is gone, so the ports are free and
// the data folder unlocked when it returns. Stopping a stopped server is a
// no-op.
func (p *proc) Stop() {
	p.t.Helper()
	p.signalAndWait(syscall.SIGTERM, p.stopTimeout)
}

// Kill ends the server with SIGKILL, as a crash would, and waits until the
// process is gone.
func (p *proc) Kill() {
	p.t.Helper()
	p.signalAndWait(syscall.SIGKILL, 5*time.Second)
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing
// answers, which is how a hung server looks to a client. Resume undoes it.
func (p *proc) Pause() {
	p.t.Helper()
	p.signal(syscall.SIGSTOP)
}

// Resume continues a paused server (SIGCONT).
func (p *proc) Resume() {
	p.t.Helper()
	p.signal(syscall.SIGCONT)
}

// Running reports whether the process is alive (paused counts as alive).
func (p *proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// PID is the process id of the running server, or 0.
func (p *proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	select {
	case <-p.done:
		return 0
	default:
		return p.cmd.Process.Pid
	}
}

// Dir is the instance's folder (configuration, data, logs).
func (p *proc) Dir() string { return p.dir }

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		p.t.Fatalf("%s: not started", p.name)
	}
	select {
	case <-p.done:
		p.t.Fatalf("%s: not running", p.name)
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

func (p *proc) signalAndWait(sig syscall.Signal, timeout time.Duration) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	// A paused process cannot act on SIGTERM; let it run so it can.
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-p.done:
		return
	case <-time.After(timeout):
	}
	p.t.Logf("%s (pid %d) still running %v after %v; killing it", p.name, p.cmd.Process.Pid, timeout, sig)
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s (pid %d) survived SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// logTails returns the last lines of the log files, for failure messages.
func (p *proc) logTails() string {
	var b strings.Builder
	for _, name := range append([]string{filepath.Join(p.dir, "stdout.log")}, p.logs...) {
		data, err := os.ReadFile(name)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		fmt.Fprintf(&b, "---- %s ----\n%s\n", name, strings.Join(lines, "\n"))
	}
	return b.String()
}

// portClash tells whether a failed start was a lost race for a port, the
// one start-up failure worth retrying on other ports.
func (p *proc) portClash() bool {
	return strings.Contains(strings.ToLower(p.logTails()), "address already in use")
}

// newProcDir makes the instance folder. It goes inside the folder of
// scripts/testenv.sh when there is one, so that the script's clean-up also
// stops a server whose test binary died without stopping it.
func newProcDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp(os.Getenv(EnvTmpDir), pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("TOLLGATE_TESTENV_KEEP") == "1" {
			t.Logf("keeping %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

// findBinary locates a server executable: the variable exported by
// scripts/testenv.sh, then PATH, then the sbin folders (Debian installs
// clickhouse-server in /usr/sbin, not on a normal user's PATH).
func findBinary(t testing.TB, envName string, names ...string) (string, bool) {
	t.Helper()
	if v := os.Getenv(envName); v != "" {
		return v, true
	}
	for _, name := range names {
		if path, err := exec.LookPath(name); err == nil {
			return path, true
		}
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
			path := filepath.Join(dir, name)
			if fi, err := os.Stat(path); err == nil && fi.Mode()&0o111 != 0 {
				return path, true
			}
		}
	}
	return "", false
}

// freePort returns a loopback port that nobody listens on. It picks below
// the kernel's ephemeral range: a server that is stopped and restarted keeps
// its port, and in between an outgoing connection could otherwise take it.
func freePort(t testing.TB) int {
	t.Helper()
	lo, hi := 20000, 32767
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if eph, err := strconv.Atoi(f[0]); err == nil && eph > lo+1000 {
				hi = eph - 1
			}
		}
	}
	for range 500 {
		port := lo + rand.IntN(hi-lo+1)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		_ = l.Close()
		return port
	}
	t.Fatal("testenv: no free loopback port")
	return 0
}

// startWithRetry starts p, choosing new ports through setup when another
// process grabbed one between freePort and the server's bind.
func startWithRetry(t testing.TB, p *proc, setup func()) {
	t.Helper()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		setup()
		if err = p.start(); err == nil {
			return
		}
		if !p.portClash() {
			break
		}
		t.Logf("%s: port clash, retrying on other ports", p.name)
	}
	t.Fatal(err)
}

// runScript runs `bash scripts/testenv.sh ARGS...`, the one definition of
// a private server's configuration (ClickHouse's config.xml and users.xml,
// redis-server's arguments), and returns its standard output.
func runScript(args ...string) ([]byte, error) {
	script, err := scriptPath()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("testenv: %s %s: %v\n%s", script, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

var (
	scriptOnce sync.Once
	scriptFile string
	scriptErr  error
)

// scriptPath finds scripts/testenv.sh: next to this source file's module
// root, or (when the binary was built with -trimpath) in the first folder
// holding go.mod above the working directory, the package being tested.
func scriptPath() (string, error) {
	scriptOnce.Do(func() {
		const rel = "scripts/testenv.sh"
		if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
			path := filepath.Join(filepath.Dir(file), "..", "..", rel)
			if _, err := os.Stat(path); err == nil {
				scriptFile = path
				return
			}
		}
		dir, err := os.Getwd()
		if err != nil {
			scriptErr = err
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				path := filepath.Join(dir, rel)
				if _, err := os.Stat(path); err != nil {
					scriptErr = fmt.Errorf("testenv: %w", err)
				}
				scriptFile = path
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				scriptErr = errors.New("testenv: " + rel + " not found (no go.mod above the working directory)")
				return
			}
			dir = parent
		}
	})
	return scriptFile, scriptErr
}
