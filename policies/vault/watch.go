package vault

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies/internal/poll"
)

// Watcher keeps the vault of one file current by polling it (a Secret
// volume swaps a symlink, which a file watch does not see). Current never
// locks.
type Watcher struct {
	file *poll.File[Vault]
}

// Watch loads the vault at path and re-reads it every interval (default
// 2 s). A file unreadable or invalid now is an error: Tollgate must not
// start refusing every proxy key. Later, a broken version is logged and
// counted once, and the last good vault stays.
func Watch(path string, interval time.Duration, log *slog.Logger, reg prometheus.Registerer) (*Watcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	keys := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tollgate_vault_keys",
		Help: "Proxy keys in the key vault in force.",
	})
	file, err := poll.WatchFile(path, poll.FileOptions[Vault]{
		Interval: interval,
		What:     "key vault file",
		Parse: func(data []byte) (*Vault, error) {
			v, err := Parse(data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return v, nil
		},
		Registerer: reg,
		Loads: prometheus.CounterOpts{
			Name: "tollgate_vault_loads_total",
			Help: "Reads of the key vault file that found new content, by result (error: unreadable or invalid, the last good vault stays).",
		},
		Collectors: []prometheus.Collector{keys},
		Loaded:     func(v *Vault, _ [sha256.Size]byte) { keys.Set(float64(v.Len())) },
		Failed: func(err error, kept bool) {
			if kept {
				log.Error("key vault not reloaded; the last good version stays", "file", path, "error", err)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return &Watcher{file: file}, nil
}

// Current is the vault in force; nil on a nil Watcher.
func (w *Watcher) Current() *Vault {
	if w == nil {
		return nil
	}
	return w.file.Current()
}

// Reload reads the file now; unchanged content costs one read.
func (w *Watcher) Reload() error { return w.file.Reload() }

// Stop ends the polling.
func (w *Watcher) Stop() {
	if w != nil {
		w.file.Close()
	}
}
