// Package poll re-reads a hot-reloaded file on a timer. The egress policy,
// the key vault and the prompt folder poll rather than use inotify: a
// ConfigMap or Secret volume updates by swapping its "..data" symlink, which
// a watch on the file does not see, while reading the path again always
// follows the new link. File is the watcher of one such file.
package poll

import (
	"sync"
	"time"
)

// Poller calls reload every interval on its own goroutine until stopped.
type Poller struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Start calls reload every interval until Stop.
func Start(every time.Duration, reload func()) *Poller {
	p := &Poller{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				reload()
			}
		}
	}()
	return p
}

// Stop ends the polling and waits for a reload in progress; safe to call
// more than once, and on a nil Poller (nothing to poll).
func (p *Poller) Stop() {
	if p == nil {
		return
	}
	p.once.Do(func() { close(p.stop) })
	<-p.done
}
