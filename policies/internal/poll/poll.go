package policies

import (
	"sync"
	"time"
)

// poller calls reload every interval on its own goroutine until stopped.
// The hot-reloaded files (the egress policy, the prompt folder) poll rather
// than use inotify: a Kubernetes ConfigMap volume updates by swapping its
// "..data" symlink, which a watch on the file does not see, while reading
// the path again always follows the new link.
type poller struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func startPoller(every time.Duration, reload func()) *poller {
	p := &poller{stop: make(chan struct{}), done: make(chan struct{})}
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
// more than once, and on a nil poller (nothing to poll).
func (p *poller) Stop() {
	if p == nil {
		return
	}
	p.once.Do(func() { close(p.stop) })
	<-p.done
}
