package chstore

import (
	"errors"
	"math"
	"time"
)

// pumpLoop is the pump goroutine: it seals the current batch every
// FlushInterval (so that a quiet writer still sends what it has) and moves
// sealed batches to the spool when they should not wait in memory (see
// spill). It wakes the sender after each turn.
func (w *Writer) pumpLoop() {
	defer close(w.pumpDone)
	t := time.NewTicker(w.o.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-w.closing:
			// Close sealed the last records; from here the sender owns them.
			w.spillLogged()
			w.kickSender()
			return
		case <-w.wake:
		case <-t.C:
			w.mu.Lock()
			w.sealLocked()
			w.mu.Unlock()
			if n := w.queueFullDrops.Swap(0); n > 0 {
				w.log.Error("clickhouse log: RECORDS DROPPED: memory queue full (the spool cannot keep up)",
					"rows", n, "queue_size", w.o.QueueSize)
			}
		}
		w.spillLogged()
		w.kickSender()
		w.updateGauges()
	}
}

func (w *Writer) spillLogged() {
	if err := w.spill(false, math.MaxUint64); err != nil {
		w.logSpoolError(err)
	}
}

// logSpoolError reports a spool that cannot be written (disk full, gone),
// at most every 10 s.
func (w *Writer) logSpoolError(err error) {
	w.spoolLogMu.Lock()
	defer w.spoolLogMu.Unlock()
	if time.Since(w.spoolErrLogged) < 10*time.Second {
		return
	}
	w.spoolErrLogged = time.Now()
	w.mu.Lock()
	rows := w.memRows
	w.mu.Unlock()
	w.log.Error("clickhouse log: cannot write the spool; records stay in memory", "dir", w.o.SpoolDir,
		"rows_in_memory", rows, "err", err)
}

// spill moves sealed batches (oldest first, up to seq upTo) from memory to
// the spool: all of them when force is set or ClickHouse is down, else
// only while more than QueueSize rows wait in memory.
func (w *Writer) spill(force bool, upTo uint64) error {
	for {
		w.mu.Lock()
		if len(w.mem) == 0 || w.mem[0].seq > upTo ||
			!(force || w.clickhouse.isDown() || w.memRows > w.o.QueueSize) {
			w.mu.Unlock()
			return nil
		}
		b := w.popLocked()
		w.mu.Unlock()
		w.normalizeBatch(b)
		if err := w.spoolOrRequeue(b); err != nil {
			return err
		}
	}
}

// spoolOrRequeue moves a batch out of memory into the spool; when the spool
// cannot take it (an I/O error, returned) the batch goes back to the queue
// so that nothing is lost.
func (w *Writer) spoolOrRequeue(b *batch) error {
	if err := w.spoolBatch(b); err != nil {
		w.mu.Lock()
		w.requeueLocked(b)
		w.mu.Unlock()
		return err
	}
	w.mu.Lock()
	w.finishLocked(b)
	w.mu.Unlock()
	w.recycle(b)
	return nil
}

// spoolBatch writes b to the spool. A full spool drops the batch (counted,
// logged) and is not an error; an I/O error is.
func (w *Writer) spoolBatch(b *batch) error {
	_, err := w.spool.write(b.seq, b.recs)
	switch {
	case err == nil:
		w.m.spooled.Add(float64(len(b.recs)))
		w.updateSpoolGauges()
		return nil
	case errors.Is(err, errSpoolFull):
		w.m.dropped.WithLabelValues(dropSpoolFull).Add(float64(len(b.recs)))
		w.noteSpoolFull(len(b.recs))
		return nil
	default:
		return err
	}
}

func (w *Writer) noteSpoolFull(rows int) {
	w.spoolLogMu.Lock()
	defer w.spoolLogMu.Unlock()
	w.spoolFullSince += int64(rows)
	if time.Since(w.spoolFullLogged) < 10*time.Second {
		return
	}
	files, bytes := w.spool.stats()
	w.log.Error("clickhouse log: RECORDS DROPPED: spool full (ClickHouse unreachable for too long?)",
		"rows", w.spoolFullSince, "spool_bytes", bytes, "spool_files", files,
		"spool_max_bytes", w.o.SpoolMaxBytes, "dir", w.o.SpoolDir)
	w.spoolFullLogged = time.Now()
	w.spoolFullSince = 0
}

func (w *Writer) updateGauges() {
	w.mu.Lock()
	rows := w.memRows
	w.mu.Unlock()
	w.m.queueRows.Set(float64(rows))
	w.updateSpoolGauges()
}

func (w *Writer) updateSpoolGauges() {
	files, bytes := w.spool.stats()
	w.m.spoolFiles.Set(float64(files))
	w.m.spoolBytes.Set(float64(bytes))
}
