// The write-ahead log's background work: rotation by age, fsync cadence,
// closing and deleting segments, making spares, and close.

package chstore

import (
	"errors"
	"fmt"
	"os"
	"time"
)

func (l *walLog) kickLoop() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// loop rotates the current segment by age, closes sealed segments,
// deletes retired ones and keeps a spare ready. The fsync cadence has a
// goroutine of its own (syncLoop), so that closing or creating a segment
// on a slow disk does not stretch the fsync window.
func (l *walLog) loop() {
	defer close(l.done)
	t := time.NewTicker(min(walSegmentAge/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.kick:
		case <-t.C:
			l.rotateByAge()
		}
		l.tidy()
	}
}

// syncLoop fsyncs the current segment every interval: a record written
// is on disk at most interval (plus the fsync's own time) later, or its
// segment was sealed, which is fsynced when the loop closes it.
func (l *walLog) syncLoop() {
	defer close(l.syncDone)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.syncCurrent()
		}
	}
}

func (l *walLog) syncCurrent() {
	l.mu.Lock()
	s := l.cur
	l.mu.Unlock()
	if s == nil {
		return
	}
	if err := s.file.Sync(); err != nil {
		l.failed(s, fmt.Errorf("fsync: %w", err))
	}
}

func (l *walLog) rotateByAge() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.cur; s != nil && s.next > 0 && time.Since(s.created) >= walSegmentAge {
		l.sealLocked()
		l.cur = l.takeSpareLocked() // nil: the next Write waits for the one tidy makes
	}
}

// tidy closes sealed segments, deletes the retired ones and makes a spare.
func (l *walLog) tidy() {
	l.mu.Lock()
	var toClose []*walSegment
	for _, s := range l.segs {
		if s.sealed && !s.closed {
			toClose = append(toClose, s)
		}
	}
	l.mu.Unlock()
	for _, s := range toClose {
		// Close writes what is pending and does the segment's last fsync:
		// its error is a failure of the log like any other.
		if err := s.file.Close(); err != nil {
			l.failed(s, fmt.Errorf("close: %w", err))
		}
		l.mu.Lock()
		s.closed = true
		l.mu.Unlock()
	}

	l.mu.Lock()
	var retired []*walSegment
	for n, s := range l.segs {
		if s.closed && s.live <= 0 {
			retired = append(retired, s)
			delete(l.segs, n)
		}
	}
	needSpare := l.spare == nil && !l.closed && !time.Now().Before(l.retryAt)
	var num uint64
	if needSpare {
		num = l.nextNum
		l.nextNum++
	}
	l.segGauge.Set(float64(len(l.segs)))
	l.mu.Unlock()

	for _, s := range retired {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Warn("clickhouse log: cannot delete a delivered write-ahead log segment", "file", s.path, "err", err)
		}
	}
	if needSpare {
		l.makeSpare(num)
	}
}

// makeSpare creates segment num outside the lock (open, header, fsync).
func (l *walLog) makeSpare(num uint64) {
	s, err := l.createSegment(num)
	l.mu.Lock()
	close(l.spareCh) // waiting Writes look again
	l.spareCh = make(chan struct{})
	if err != nil {
		l.retryAt = time.Now().Add(walRetry)
		l.countFailure(err)
		l.mu.Unlock()
		return
	}
	unused := l.closed || l.spare != nil
	if !unused {
		l.spare = s
	}
	l.mu.Unlock()
	if unused {
		s.file.Close()
		os.Remove(s.path)
	}
}

// close stops the loop, closes every segment and deletes those whose
// records all left memory; the rest (records Close could not insert or
// spool) stay for the next Open. The directory goes when empty.
func (l *walLog) close() {
	close(l.stop)
	<-l.done
	<-l.syncDone
	l.mu.Lock()
	l.closed = true
	l.sealLocked()
	spare := l.spare
	l.spare = nil
	l.mu.Unlock()
	if spare != nil {
		spare.file.Close()
		os.Remove(spare.path)
	}
	l.tidy()
	l.mu.Lock()
	kept := len(l.segs)
	l.mu.Unlock()
	if kept > 0 {
		l.log.Warn("clickhouse log: write-ahead log segments kept for the next start (records not delivered or spooled)",
			"dir", l.dir, "segments", kept)
		return
	}
	os.Remove(l.dir) // only if empty
}
