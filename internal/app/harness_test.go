package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/record"
)

// readyWriter is stderr for an in-process tollgate: it keeps the output for
// failure messages and hands over the "ready" line's fields.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan map[string]string
	once  sync.Once
}

func newReadyWriter() *readyWriter { return &readyWriter{ready: make(chan map[string]string, 1)} }

func (w *readyWriter) Write(p []byte) (int, error) {
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

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// devInstance is `tollgate dev` running in-process against the mock provider.
type devInstance struct {
	addrs   map[string]string
	dataDir string
	mock    *mockprovider.Server
	stop    func() error
	stderr  *readyWriter
}

func (d *devInstance) url(path string) string { return "http://" + d.addrs["listen"] + path }
func (d *devInstance) api(path string) string { return "http://" + d.addrs["http"] + path }

func startDev(t *testing.T, extraArgs ...string) *devInstance {
	t.Helper()
	mock := mockprovider.New(mockprovider.Options{})
	upstream := httptest.NewServer(mock)
	t.Cleanup(upstream.Close)
	dataDir := t.TempDir()
	args := append([]string{"dev",
		"--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--data-dir", dataDir, "--upstream-openai", upstream.URL, "--upstream-anthropic", upstream.URL,
		"--shutdown-timeout", "10s",
	}, extraArgs...)
	d := &devInstance{dataDir: dataDir, mock: mock}
	d.addrs, d.stderr, d.stop = runReady(t, args)
	return d
}

// runReady runs Run with args on a goroutine, as cmd/tollgate would, and
// waits for its ready line (the addresses it names). stop cancels it and
// returns Run's error the first time, nil after; it also runs when the test
// ends.
func runReady(t *testing.T, args []string) (addrs map[string]string, stderr *readyWriter, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr = newReadyWriter()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, args, io.Discard, stderr) }()
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

// records stops the instance (flushing the log) and reads every record.
func (d *devInstance) records(t *testing.T) map[string]*record.Record {
	t.Helper()
	if err := d.stop(); err != nil {
		t.Fatalf("shutdown: %v\n%s", err, d.stderr)
	}
	f, err := os.Open(filepath.Join(d.dataDir, "requests.jsonl"))
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
