package vault

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies/internal/poll"
)

// maxFileBytes is above a Secret's 1 MiB limit: anything larger is a
// wrong file.
const maxFileBytes = 4 << 20

// Watcher keeps the vault of one file current by polling it (a Secret
// volume swaps a symlink, which a file watch does not see). Current never
// locks.
type Watcher struct {
	path    string
	log     *slog.Logger
	current atomic.Pointer[Vault]
	loads   *prometheus.CounterVec
	keys    prometheus.Gauge

	mu     sync.Mutex // serializes Reload
	last   []byte
	poller *poll.Poller
}

// Watch loads the vault at path and re-reads it every interval (default
// 2 s). A file unreadable or invalid now is an error: Tollgate must not
// start refusing every proxy key. Later, a broken version is logged and
// counted, and the last good vault stays.
func Watch(path string, interval time.Duration, log *slog.Logger, reg prometheus.Registerer) (*Watcher, error) {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{
		path: path,
		log:  log,
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_vault_loads_total",
			Help: "Reads of the key vault file that found new content, by result (error: unreadable or invalid, the last good vault stays).",
		}, []string{"result"}),
		keys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_vault_keys",
			Help: "Proxy keys in the key vault in force.",
		}),
	}
	if err := w.Reload(); err != nil {
		return nil, err
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{w.loads, w.keys} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	w.poller = poll.Start(interval, func() {
		if err := w.Reload(); err != nil {
			w.log.Error("key vault not reloaded; the last good version stays", "file", w.path, "error", err)
		}
	})
	return w, nil
}

// Current is the vault in force; nil on a nil Watcher.
func (w *Watcher) Current() *Vault {
	if w == nil {
		return nil
	}
	return w.current.Load()
}

// Reload reads the file now; unchanged content costs one read.
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := readFile(w.path)
	if err == nil && w.current.Load() != nil && bytes.Equal(data, w.last) {
		return nil
	}
	var v *Vault
	if err == nil {
		v, err = Parse(data)
	}
	if err != nil {
		w.loads.WithLabelValues("error").Inc()
		return fmt.Errorf("%s: %w", w.path, err)
	}
	w.last = data
	w.current.Store(v)
	w.loads.WithLabelValues("ok").Inc()
	w.keys.Set(float64(v.Len()))
	return nil
}

// Stop ends the polling.
func (w *Watcher) Stop() {
	if w != nil {
		w.poller.Stop()
	}
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxFileBytes)
	}
	return data, nil
}
