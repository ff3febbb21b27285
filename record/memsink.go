package record

import (
	"context"
	"sync"
	"time"
)

// Memory keeps records in memory: for tests that assert what was logged.
type Memory struct {
	mu      sync.Mutex
	records []*Record
	changed chan struct{}
}

func NewMemory() *Memory { return &Memory{changed: make(chan struct{})} }

func (m *Memory) Write(r *Record) {
	m.mu.Lock()
	m.records = append(m.records, r)
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

func (m *Memory) Flush(context.Context) error { return nil }
func (m *Memory) Close(context.Context) error { return nil }

// Records returns a snapshot of what was written, in order.
func (m *Memory) Records() []*Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*Record(nil), m.records...)
}

// WaitFor waits until at least n records were written or the timeout passes,
// and returns the snapshot either way.
func (m *Memory) WaitFor(n int, timeout time.Duration) []*Record {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		if len(m.records) >= n {
			out := append([]*Record(nil), m.records...)
			m.mu.Unlock()
			return out
		}
		changed := m.changed
		m.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return m.Records()
		}
	}
}
