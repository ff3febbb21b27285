package egress

import (
	"crypto/sha256"
	"errors"
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

// maxFileBytes is well above a ConfigMap's 1 MiB limit; anything
// larger is a wrong file, not a policy.
const maxFileBytes = 4 << 20

// WatcherOptions configure Watch. Zero values get the
// defaults noted.
type WatcherOptions struct {
	Interval   time.Duration         // between reads of the file; default 2 s
	Logger     *slog.Logger          // default: discard
	Registerer prometheus.Registerer // nil: metrics not registered
}

// Watcher keeps the policy of one file current by polling it (see
// policies/internal/poll). Readers call Current on every request; it never
// locks.
type Watcher struct {
	path     string
	interval time.Duration
	log      *slog.Logger
	current  atomic.Pointer[Policy]
	failures atomic.Uint64
	loads    *prometheus.CounterVec
	valid    prometheus.Gauge

	mu      sync.Mutex // serializes Reload; guards the fields below
	lastSum [sha256.Size]byte
	haveSum bool // lastSum is the content of the last read
	lastErr error
	poller  *poll.Poller
}

// Watch loads the policy at path and keeps it current. A file
// that is missing or invalid now is an error: a server must not start with
// a policy nobody can read. Later, an invalid version is logged and counted
// and the last good policy stays in force until the file is fixed.
func Watch(path string, o WatcherOptions) (*Watcher, error) {
	w := &Watcher{
		path:     path,
		interval: o.Interval,
		log:      o.Logger,
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_egress_policy_loads_total",
			Help: "Reads of the egress policy file that found new content, by result (error: unreadable or invalid, the last good policy stays).",
		}, []string{"result"}),
		valid: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_egress_policy_valid",
			Help: "1 when the egress policy file as last read is in force, 0 when it is broken and an older version applies.",
		}),
	}
	if w.interval <= 0 {
		w.interval = 2 * time.Second
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if err := w.Reload(); err != nil {
		return nil, err
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(w.loads); err != nil {
			return nil, err
		}
		if err := o.Registerer.Register(w.valid); err != nil {
			o.Registerer.Unregister(w.loads)
			return nil, err
		}
	}
	w.poller = poll.Start(w.interval, func() { _ = w.Reload() }) // failures are logged and counted there
	return w, nil
}

// Current is the policy in force. It is never nil once Watch
// has succeeded; a nil *Watcher returns nil, which allows everything.
func (w *Watcher) Current() *Policy {
	if w == nil {
		return nil
	}
	return w.current.Load()
}

// LastError is why the file as it stands is not in force, nil when it is.
func (w *Watcher) LastError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// Failures counts reads that found an unreadable or invalid file.
func (w *Watcher) Failures() uint64 { return w.failures.Load() }

// Reload reads the file now and, when its content changed, parses it and
// swaps the policy in. It returns the file's current problem, if any. The
// poller calls it every interval; call it to apply an edit without waiting.
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := readFile(w.path)
	if err != nil {
		// Re-parse whatever comes next, even the content already in force,
		// so a file that returns clears the error.
		w.haveSum = false
		return w.failed(err)
	}
	sum := sha256.Sum256(data)
	if w.haveSum && sum == w.lastSum {
		return w.lastErr
	}
	w.lastSum, w.haveSum = sum, true
	pol, err := Parse(w.path, data)
	if err != nil {
		return w.failed(err)
	}
	w.current.Store(pol)
	w.lastErr = nil
	w.loads.WithLabelValues("ok").Inc()
	w.valid.Set(1)
	w.log.Info("egress policy loaded", "file", w.path, "rules", len(pol.rules), "sha256", fmt.Sprintf("%x", sum[:6]))
	return nil
}

// failed records a problem; a repeat of the same one (the poller reading a
// file that is still missing) is neither counted nor logged again.
func (w *Watcher) failed(err error) error {
	if w.lastErr != nil && w.lastErr.Error() == err.Error() {
		return w.lastErr
	}
	w.lastErr = err
	w.failures.Add(1)
	w.loads.WithLabelValues("error").Inc()
	w.valid.Set(0)
	if w.current.Load() != nil {
		w.log.Warn("egress policy not reloaded; the last good version stays in force", "file", w.path, "err", err)
	}
	return err
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
		return nil, errors.New(path + ": larger than 4 MiB; not a policy file")
	}
	return data, nil
}

// Close stops polling and waits for a read in progress. Current keeps
// returning the last policy.
func (w *Watcher) Close() {
	if w == nil {
		return
	}
	w.poller.Stop()
}
