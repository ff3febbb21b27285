package chstore

import (
	"context"
	"math"
	"time"
)

// The sender: one goroutine that decides what is inserted next and when
// to try again; the inserts themselves are jobs (jobs.go).

const (
	coalesceBatches = 4
	coalesceBytes   = 32 << 20 // spool files read for one insert
	// maxInflight memory inserts run at once, so that building and sending
	// one overlaps with ClickHouse writing the other (and, with a remote
	// server, with the round trip). Spool replays run alone, so they stay
	// strictly oldest first.
	maxInflight = 2
	// abandonAfter: how long Flush and Close, past their deadlines, wait
	// for cancelled inserts before abandoning them. A cancelled insert
	// normally returns at once (the driver closes its connection).
	abandonAfter = 500 * time.Millisecond
)

// sendLoop is the sender goroutine's state. It owns the connection state:
// it backs off and pings while ClickHouse is down, takes jobs (lowest
// sequence numbers first) and runs them in goroutines, at most maxInflight
// at a time, one at a time when it replays the spool.
type sendLoop struct {
	w             *Writer
	results       chan result
	inflight      int  // jobs started whose results have not been handled
	fileJob       bool // one of them replays the spool
	closeFailures int  // failed attempts since Close began
}

// runSender is the sender goroutine.
func (w *Writer) runSender() {
	defer close(w.senderDone)
	s := &sendLoop{w: w, results: make(chan result, maxInflight)}
	for s.step() {
	}
	s.drain()
	// Whatever is still in memory goes to the spool.
	if err := w.spill(true, math.MaxUint64); err != nil {
		w.logSpoolError(err)
	}
}

// step does one turn of the loop; false when the sender stops.
func (s *sendLoop) step() bool {
	w := s.w
	select {
	case r := <-s.results:
		s.handle(r)
		return true
	case <-w.quit:
		return false
	default:
	}
	closing := w.isClosing()
	if closing && s.closeFailures >= closeAttempts {
		return false
	}
	if w.clickhouse.isDown() {
		if s.running() > 0 { // they fail (and spool) or finish first
			return s.waitResult()
		}
		up, ok := s.reconnect(closing)
		if !ok || !up {
			return ok
		}
	}
	if s.fileJob || s.inflight >= maxInflight {
		return s.waitResult()
	}
	j := w.take(s.inflight)
	if j == nil {
		return s.idle(closing)
	}
	s.inflight++
	s.fileJob = len(j.files) > 0
	go func() {
		r := w.run(j)
		r.file = len(j.files) > 0
		s.results <- r
	}()
	return true
}

// reconnect waits out the back-off (cut short once Close begins) and
// pings. up: ClickHouse answered; ok false: the writer stops.
func (s *sendLoop) reconnect(closing bool) (up, ok bool) {
	w := s.w
	d := w.clickhouse.backoff.next()
	if closing {
		d = min(d, 250*time.Millisecond)
	}
	if !w.sleep(d, !closing) {
		return false, false
	}
	ctx, cancel := context.WithTimeout(w.baseCtx, pingTimeout)
	err := w.snd.ping(ctx)
	cancel()
	if err != nil {
		s.failed("ping", err)
		return false, true
	}
	w.clickhouse.markUp()
	return true, true
}

// idle waits for something to do when there is nothing to take: a result,
// a kick (new batches), Close; while closing, the pump's end, after which
// the sender stops once memory and the spool are empty.
func (s *sendLoop) idle(closing bool) bool {
	w := s.w
	if s.inflight > 0 {
		select {
		case r := <-s.results:
			s.handle(r)
		case <-w.kick:
		case <-w.quit:
			return false
		}
		return true
	}
	if closing {
		select {
		case <-w.pumpDone:
			return w.hasWork()
		case <-w.quit:
			return false
		}
	}
	var closingCh <-chan struct{}
	if !closing {
		closingCh = w.closing
	}
	select {
	case <-w.kick:
	case <-closingCh:
	case <-w.quit:
		return false
	}
	return true
}

// handle takes a finished job's result.
func (s *sendLoop) handle(r result) {
	w := s.w
	s.inflight--
	if r.file {
		s.fileJob = false
	}
	switch {
	case r.abandoned:
		w.mu.Lock()
		w.adrift--
		w.mu.Unlock()
	case r.ok:
		s.closeFailures = 0
		w.clickhouse.succeeded()
	case r.cancelled:
	default:
		s.failed(r.op, r.err)
	}
	w.updateGauges()
}

func (s *sendLoop) failed(op string, err error) {
	s.w.noteFailure(op, err)
	if s.w.isClosing() {
		s.closeFailures++
	}
}

// waitResult blocks for a finished job; false if the writer stops.
func (s *sendLoop) waitResult() bool {
	select {
	case r := <-s.results:
		s.handle(r)
		return true
	case <-s.w.quit:
		return false
	}
}

// running counts the jobs still expected to return (abandoned ones are not).
func (s *sendLoop) running() int {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return s.inflight - s.w.adrift
}

// drain is the stop: running inserts end (the quit cancelled them, or they
// fail or finish) and spool their batches themselves, or are abandoned.
// Abandoned ones are not waited for: their late results land in the
// buffered channel.
func (s *sendLoop) drain() {
	w := s.w
	grace := time.NewTimer(abandonAfter)
	defer grace.Stop()
	for s.running() > 0 {
		select {
		case r := <-s.results:
			s.handle(r)
		case <-grace.C:
			w.mu.Lock()
			for j := range w.inflight {
				w.abandonLocked(j)
			}
			w.mu.Unlock()
			grace.Reset(abandonAfter)
		}
	}
}

func (w *Writer) hasWork() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.spool.head()
	return ok || len(w.mem) > 0
}

// sleep waits d; false if the writer is stopping. Close cuts it short.
func (w *Writer) sleep(d time.Duration, wakeOnClosing bool) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	var closing <-chan struct{}
	if wakeOnClosing {
		closing = w.closing
	}
	select {
	case <-t.C:
	case <-closing:
	case <-w.quit:
		return false
	}
	return true
}

// take picks the lowest sequence numbers among the spool and memory. A
// spool job is only started when nothing else runs (nil until then).
func (w *Writer) take(inflight int) *job {
	w.mu.Lock()
	defer w.mu.Unlock()
	f, hasFile := w.spool.head()
	if len(w.mem) > 0 && (!hasFile || w.mem[0].seq < f.seq) {
		j := &job{}
		rows := 0
		for len(w.mem) > 0 && len(j.batches) < coalesceBatches &&
			(!hasFile || w.mem[0].seq < f.seq) &&
			(len(j.batches) == 0 || rows+len(w.mem[0].recs) <= coalesceBatches*w.o.BatchSize) {
			b := w.popLocked()
			rows += len(b.recs)
			j.batches = append(j.batches, b)
		}
		j.ctx, j.cancel = context.WithTimeout(w.baseCtx, insertTimeout)
		w.inflight[j] = struct{}{}
		return j
	}
	if hasFile && inflight == 0 {
		below := uint64(math.MaxUint64)
		if len(w.mem) > 0 {
			below = w.mem[0].seq
		}
		j := &job{files: w.spool.claim(coalesceBatches, coalesceBytes, below)}
		// No deadline here: runFiles gives each of its inserts insertTimeout.
		j.ctx, j.cancel = context.WithCancel(w.baseCtx)
		w.inflight[j] = struct{}{}
		return j
	}
	return nil
}
