package sdktest

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

	"github.com/tollgate-dev/tollgate/internal/app"
	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/record"
)

// readyWriter is stderr for an in-process tollgate: it keeps the output for
// failure messages and hands over the "ready" line's addresses.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan map[string]string
	once  sync.Once
}

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

// dev is `tollgate dev` running in-process, its OpenAI and Anthropic
// upstreams a mock provider.
type dev struct {
	addrs   map[string]string
	dataDir string
	mock    *mockprovider.Server
	stderr  *readyWriter
	stop    func() error
}

// base is the data plane's URL with path appended: an SDK's base URL.
func (d *dev) base(path string) string { return "http://" + d.addrs["listen"] + path }
func (d *dev) api(path string) string  { return "http://" + d.addrs["http"] + path }

// startDev runs `tollgate dev` as cmd/tollgate would, with extra flags,
// and waits for its ready line. It stops when the test ends.
func startDev(t *testing.T, extra ...string) *dev {
	t.Helper()
	mock := mockprovider.New(mockprovider.Options{})
	upstream := httptest.NewServer(mock)
	t.Cleanup(upstream.Close)
	d := &dev{dataDir: t.TempDir(), mock: mock, stderr: &readyWriter{ready: make(chan map[string]string, 1)}}
	args := append([]string{"dev",
		"--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--data-dir", d.dataDir, "--upstream-openai", upstream.URL, "--upstream-anthropic", upstream.URL,
		"--shutdown-timeout", "10s",
	}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, args, io.Discard, d.stderr) }()
	stopped := false
	d.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatalf("tollgate did not stop; output:\n%s", d.stderr)
			return nil
		}
	}
	t.Cleanup(func() { d.stop() })
	select {
	case d.addrs = <-d.stderr.ready:
	case err := <-done:
		t.Fatalf("tollgate exited before ready: %v\n%s", err, d.stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("no ready line; output:\n%s", d.stderr)
	}
	return d
}

// records stops the instance (flushing its log) and reads every record of
// requests.jsonl by request id.
func (d *dev) records(t *testing.T) map[string]*record.Record {
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
