package poll

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxFileBytes is well above the 1 MiB limit of a ConfigMap or a Secret;
// anything larger is a wrong file.
const maxFileBytes = 4 << 20

// FileOptions configure WatchFile. Zero values get the defaults noted.
type FileOptions[T any] struct {
	Interval time.Duration // between reads of the file; default 2 s
	// What the file is, for the error about a file too large
	// ("policy file").
	What string
	// Parse turns the file's content into the value in force. Its errors
	// are returned as they are, so they should name the file.
	Parse func(data []byte) (*T, error)

	Registerer prometheus.Registerer // nil: metrics not registered
	// Loads names the counter of reads that found new content, by result
	// (ok, error).
	Loads prometheus.CounterOpts
	// Collectors are registered with the counter: the caller's gauges,
	// which Loaded and Failed set.
	Collectors []prometheus.Collector

	// Loaded is called, under the reload lock, once a new value is in force.
	Loaded func(v *T, sum [sha256.Size]byte)
	// Failed is called, under the reload lock, for a new problem; kept is
	// true when an older value stays in force (false at start).
	Failed func(err error, kept bool)
}

// File keeps the value parsed from one file current by polling it. Current
// never locks, so readers call it on every request.
type File[T any] struct {
	path     string
	o        FileOptions[T]
	current  atomic.Pointer[T]
	failures atomic.Uint64
	loads    *prometheus.CounterVec

	mu      sync.Mutex // serializes Reload; guards the fields below
	lastSum [sha256.Size]byte
	haveSum bool // lastSum is the content of the last read
	lastErr error
	poller  *Poller
}

// WatchFile loads the file at path and re-reads it every interval. A file
// unreadable or invalid now is an error: a server must not start with a
// value nobody can read. Later, a broken version is reported once through
// Failed and counted, and the last good value stays until the file is fixed.
func WatchFile[T any](path string, o FileOptions[T]) (*File[T], error) {
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	f := &File[T]{path: path, o: o, loads: prometheus.NewCounterVec(o.Loads, []string{"result"})}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	if o.Registerer != nil {
		cs := append([]prometheus.Collector{f.loads}, o.Collectors...)
		for i, c := range cs {
			if err := o.Registerer.Register(c); err != nil {
				for _, done := range cs[:i] {
					o.Registerer.Unregister(done)
				}
				return nil, err
			}
		}
	}
	f.poller = Start(o.Interval, func() { _ = f.Reload() }) // failures are reported and counted there
	return f, nil
}

// Current is the value in force; nil on a nil File.
func (f *File[T]) Current() *T {
	if f == nil {
		return nil
	}
	return f.current.Load()
}

// LastError is why the file as it stands is not in force, nil when it is.
func (f *File[T]) LastError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

// Failures counts reads that found a new problem with the file.
func (f *File[T]) Failures() uint64 { return f.failures.Load() }

// Reload reads the file now and, when its content changed, parses it and
// swaps the value in. It returns the file's current problem, if any;
// unchanged content costs one read.
func (f *File[T]) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := f.read()
	if err != nil {
		// Re-parse whatever comes next, even the content already in force,
		// so a file that returns clears the error.
		f.haveSum = false
		return f.failed(err)
	}
	sum := sha256.Sum256(data)
	if f.haveSum && sum == f.lastSum {
		return f.lastErr
	}
	f.lastSum, f.haveSum = sum, true
	v, err := f.o.Parse(data)
	if err != nil {
		return f.failed(err)
	}
	f.current.Store(v)
	f.lastErr = nil
	f.loads.WithLabelValues("ok").Inc()
	if f.o.Loaded != nil {
		f.o.Loaded(v, sum)
	}
	return nil
}

// failed records a problem; a repeat of the same one (the poller reading a
// file that is still missing) is neither counted nor reported again.
func (f *File[T]) failed(err error) error {
	if f.lastErr != nil && f.lastErr.Error() == err.Error() {
		return f.lastErr
	}
	f.lastErr = err
	f.failures.Add(1)
	f.loads.WithLabelValues("error").Inc()
	if f.o.Failed != nil {
		f.o.Failed(err, f.current.Load() != nil)
	}
	return err
}

func (f *File[T]) read() ([]byte, error) {
	file, err := os.Open(f.path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB; not a %s", f.path, maxFileBytes>>20, f.o.What)
	}
	return data, nil
}

// Close stops polling and waits for a read in progress; Current keeps
// returning the last value. Safe on a nil File and more than once.
func (f *File[T]) Close() {
	if f != nil {
		f.poller.Stop()
	}
}
