package egress

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies/internal/poll"
)

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
	file *poll.File[Policy]
}

// Watch loads the policy at path and keeps it current. A file
// that is missing or invalid now is an error: a server must not start with
// a policy nobody can read. Later, an invalid version is logged and counted
// and the last good policy stays in force until the file is fixed.
func Watch(path string, o WatcherOptions) (*Watcher, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	valid := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tollgate_egress_policy_valid",
		Help: "1 when the egress policy file as last read is in force, 0 when it is broken and an older version applies.",
	})
	file, err := poll.WatchFile(path, poll.FileOptions[Policy]{
		Interval:   o.Interval,
		What:       "policy file",
		Parse:      func(data []byte) (*Policy, error) { return Parse(path, data) },
		Registerer: o.Registerer,
		Loads: prometheus.CounterOpts{
			Name: "tollgate_egress_policy_loads_total",
			Help: "Reads of the egress policy file that found new content, by result (error: unreadable or invalid, the last good policy stays).",
		},
		Collectors: []prometheus.Collector{valid},
		Loaded: func(pol *Policy, sum [sha256.Size]byte) {
			valid.Set(1)
			log.Info("egress policy loaded", "file", path, "rules", len(pol.rules), "sha256", fmt.Sprintf("%x", sum[:6]))
		},
		Failed: func(err error, kept bool) {
			valid.Set(0)
			if kept {
				log.Warn("egress policy not reloaded; the last good version stays in force", "file", path, "err", err)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return &Watcher{file: file}, nil
}

// Current is the policy in force. It is never nil once Watch
// has succeeded; a nil *Watcher returns nil, which allows everything.
func (w *Watcher) Current() *Policy {
	if w == nil {
		return nil
	}
	return w.file.Current()
}

// LastError is why the file as it stands is not in force, nil when it is.
func (w *Watcher) LastError() error { return w.file.LastError() }

// Failures counts reads that found an unreadable or invalid file; a
// repeat of the same problem is not counted again.
func (w *Watcher) Failures() uint64 { return w.file.Failures() }

// Reload reads the file now and, when its content changed, parses it and
// swaps the policy in. It returns the file's current problem, if any. The
// poller calls it every interval; call it to apply an edit without waiting.
func (w *Watcher) Reload() error { return w.file.Reload() }

// Close stops polling and waits for a read in progress. Current keeps
// returning the last policy.
func (w *Watcher) Close() {
	if w == nil {
		return
	}
	w.file.Close()
}
