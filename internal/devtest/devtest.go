// Package devtest runs tollgate in-process for tests: Run's command line on
// a goroutine, as cmd/tollgate would, waiting for its "tollgate ready" line.
// It is shared by internal/app's end-to-end tests and internal/sdktest.
package devtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/record"
)

// RunFunc is internal/app.Run's signature, passed in so that app's own
// tests can use this package without an import cycle.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// ReadyWriter is stderr for an in-process tollgate: it keeps the output for
// failure messages and hands over the "ready" line's fields.
type ReadyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan map[string]string
	once  sync.Once
}

// NewReadyWriter returns an empty ReadyWriter.
func NewReadyWriter() *ReadyWriter { return &ReadyWriter{ready: make(chan map[string]string, 1)} }

func (w *ReadyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	sc := bufio.NewScanner(bytes.NewReader(w.buf.Bytes()))
	for sc.Scan() {
		if fields, ok := strings.CutPrefix(sc.Text(), "tollgate ready "); ok {
			addrs := map[string]string{}
			for _, f := range strings.Fields(fields) {
				k, v, _ := strings.Cut(f, "=")
				addrs[k] = v
			}
			w.once.Do(func() { w.ready <- addrs })
		}
	}
	return len(p), nil
}

// String is everything written so far.
func (w *ReadyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// Start runs run with args on a goroutine, as cmd/tollgate would, and waits
// for its ready line (the addresses it names). stop cancels it and returns
// run's error the first time, nil after; it also runs when the test ends.
func Start(t testing.TB, run RunFunc, args []string) (addrs map[string]string, stderr *ReadyWriter, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr = NewReadyWriter()
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, io.Discard, stderr) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatalf("tollgate did not stop; output:\n%s", stderr)
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	select {
	case addrs = <-stderr.ready:
	case err := <-done:
		t.Fatalf("tollgate exited before ready: %v\n%s", err, stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("no ready line; output:\n%s", stderr)
	}
	return addrs, stderr, stop
}

// Dev is `tollgate dev` running in-process, its OpenAI and Anthropic
// upstreams a mock provider.
type Dev struct {
	Addrs   map[string]string
	DataDir string
	Mock    *mockprovider.Server
	Stderr  *ReadyWriter
	Stop    func() error
}

// StartDev starts `tollgate dev` with Start, on loopback ports of its own,
// a fresh data directory and a mock provider upstream, with extra flags.
// It stops when the test ends.
func StartDev(t testing.TB, run RunFunc, extra ...string) *Dev {
	t.Helper()
	mock := mockprovider.New(mockprovider.Options{})
	upstream := httptest.NewServer(mock)
	t.Cleanup(upstream.Close)
	d := &Dev{DataDir: t.TempDir(), Mock: mock}
	args := append([]string{"dev",
		"--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--data-dir", d.DataDir, "--upstream-openai", upstream.URL, "--upstream-anthropic", upstream.URL,
		"--shutdown-timeout", "10s",
	}, extra...)
	d.Addrs, d.Stderr, d.Stop = Start(t, run, args)
	return d
}

// Records stops the instance (flushing its log) and reads every record of
// requests.jsonl by request id.
func (d *Dev) Records(t testing.TB) map[string]*record.Record {
	t.Helper()
	if err := d.Stop(); err != nil {
		t.Fatalf("shutdown: %v\n%s", err, d.Stderr)
	}
	f, err := os.Open(filepath.Join(d.DataDir, "requests.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]*record.Record{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r record.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad log line %q: %v", sc.Text(), err)
		}
		out[r.RequestID] = &r
	}
	return out
}

// Counter sums the samples of a metric on an instance's /metrics
// (httpAddr: its HTTP port, host:port) whose labels contain every one of
// labels (`result="hit"`); 0 when there is none.
func Counter(t testing.TB, httpAddr, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				continue next
			}
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// WaitForCounter waits, at most 10 s, until Counter reaches want: for the
// work an instance does after its last reply (a cache fill, a semantic
// addition), which a test's next call must not overtake.
func WaitForCounter(t testing.TB, httpAddr, name string, want float64) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		if got := Counter(t, httpAddr, name); got < want {
			return fmt.Errorf("%s = %v, want %v", name, got, want)
		}
		return nil
	})
}
