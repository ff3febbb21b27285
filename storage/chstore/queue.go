package chstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tollgate-dev/tollgate/record"
)

// The queue: records in memory, in sealed batches numbered in the order
// they were written. The ...Locked functions run under w.mu. A batch
// leaves memory when it is in ClickHouse or in the spool (finishLocked),
// and Flush waits for that (waitDurable).

// batch is sealed records, numbered (seq) in the order they were written.
type batch struct {
	seq        uint64
	recs       []*record.Record
	normalized bool
	shared     bool       // an abandoned insert may still read recs: never recycle
	segs       []segCount // where its records are in the write-ahead log
}

// sealLocked turns the current batch, if any, into a sealed one.
func (w *Writer) sealLocked() {
	if len(w.cur) == 0 {
		return
	}
	b := &batch{seq: w.nextSeq, recs: w.cur, segs: w.curSegs}
	w.curSegs = nil
	w.nextSeq++
	w.mem = append(w.mem, b)
	w.m.queued.Add(float64(len(b.recs)))
	if n := len(w.free); n > 0 {
		w.cur = w.free[n-1]
		w.free = w.free[:n-1]
	} else {
		w.cur = make([]*record.Record, 0, w.o.BatchSize)
	}
}

func (w *Writer) popLocked() *batch {
	b := w.mem[0]
	w.mem[0] = nil
	w.mem = w.mem[1:]
	w.busy[b] = struct{}{}
	return b
}

// requeueLocked puts a busy batch back (its spool write failed).
func (w *Writer) requeueLocked(b *batch) {
	delete(w.busy, b)
	i, _ := slices.BinarySearchFunc(w.mem, b.seq, func(x *batch, seq uint64) int { return cmpUint(x.seq, seq) })
	w.mem = slices.Insert(w.mem, i, b)
}

// finishLocked: b is in ClickHouse or in the spool (or dropped, counted).
func (w *Writer) finishLocked(b *batch) {
	delete(w.busy, b)
	if w.wal != nil {
		w.wal.release(b.segs) // its log segments may retire
		b.segs = nil
	}
	w.memRows -= len(b.recs)
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *Writer) durableLocked(target uint64) bool {
	if len(w.mem) > 0 && w.mem[0].seq <= target {
		return false
	}
	for b := range w.busy {
		if b.seq <= target {
			return false
		}
	}
	return true
}

func (w *Writer) recycle(b *batch) {
	if b.shared || cap(b.recs) != w.o.BatchSize {
		return
	}
	clear(b.recs)
	w.mu.Lock()
	if len(w.free) < 4 {
		w.free = append(w.free, b.recs[:0])
	}
	w.mu.Unlock()
	b.recs = nil
}

func (w *Writer) waitDurable(ctx context.Context, target uint64) error {
	for {
		w.mu.Lock()
		if w.durableLocked(target) {
			w.mu.Unlock()
			return nil
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// forceDurable spools everything up to target that is still in memory.
func (w *Writer) forceDurable(target uint64) error {
	w.mu.Lock()
	for j := range w.inflight {
		if len(j.batches) > 0 && j.batches[0].seq <= target {
			j.cancel() // the job spools its batches at once
		}
	}
	w.mu.Unlock()
	if err := w.spill(true, target); err != nil {
		return fmt.Errorf("clickhouse log: flush: records still in memory: cannot write the spool: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), abandonAfter)
	defer cancel()
	if w.waitDurable(ctx, target) == nil {
		return nil
	}
	// An insert stuck where the driver ignores cancellation: take its
	// batches back and spool them (a job that starts late is abandoned on
	// a later round).
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		for j := range w.inflight {
			if len(j.batches) > 0 && j.batches[0].seq <= target {
				w.abandonLocked(j)
			}
		}
		w.mu.Unlock()
		if err := w.spill(true, target); err != nil {
			return fmt.Errorf("clickhouse log: flush: records still in memory: cannot write the spool: %w", err)
		}
		w.mu.Lock()
		durable, ch := w.durableLocked(target), w.changed
		w.mu.Unlock()
		if durable {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			return errors.New("clickhouse log: flush: records still in memory: an insert did not give them back")
		}
	}
}

// abandonLocked gives up on a running job. clickhouse-go honours only
// deadlines, not cancellation, while it dials, handshakes or waits for the
// INSERT's header, so against a hung server a cancelled job can hang until
// insertTimeout. Its batches go back to memory (to be spooled); the job,
// when it returns, touches nothing. If its insert lands after all, the rows
// duplicate spooled ones and the ReplacingMergeTree collapses them. A job
// that has not started its insert is left alone: its context is cancelled,
// so it fails (and spools) at once.
func (w *Writer) abandonLocked(j *job) bool {
	if !j.started {
		return false
	}
	j.abandoned = true
	j.cancel()
	delete(w.inflight, j)
	w.adrift++
	for _, b := range j.batches {
		b.shared = true
		w.requeueLocked(b)
	}
	w.log.Warn("clickhouse log: gave up waiting for a stuck insert (ClickHouse hung?); its records stay in or go to the spool",
		"rows", jobRows(j), "spool_files", len(j.files))
	return true
}

func jobRows(j *job) int {
	n := 0
	for _, b := range j.batches {
		n += len(b.recs)
	}
	return n
}

func (w *Writer) normalizeBatch(b *batch) {
	if b.normalized {
		return
	}
	now := time.Now()
	for _, r := range b.recs {
		normalize(r, now)
	}
	b.normalized = true
}
