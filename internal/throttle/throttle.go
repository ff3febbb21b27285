// Package throttle keeps a log line that an outage would repeat at the
// request rate (a store, Redis or an embeddings endpoint failing on every
// call) to at most one a second.
package throttle

import (
	"sync/atomic"
	"time"
)

// PerSecond allows one event a second; its zero value is ready and it is
// safe for concurrent use (one atomic load, and a compare-and-swap when
// allowed).
type PerSecond struct{ last atomic.Int64 } // unix ns of the last allowed event

// Allow says whether an event may go ahead now: none has in the last second.
func (p *PerSecond) Allow() bool {
	now := time.Now().UnixNano()
	last := p.last.Load()
	return now-last >= int64(time.Second) && p.last.CompareAndSwap(last, now)
}
