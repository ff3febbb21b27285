package chstore

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/tollgate-dev/tollgate/record"
)

// A job is one insert: consecutive sealed batches from memory, or
// consecutive spool files. Under load the sender coalesces up to
// coalesceBatches of them into one INSERT: ClickHouse makes one part per
// insert, and fewer, larger parts mean much less merge work.
type job struct {
	batches   []*batch    // from memory, or
	files     []spoolFile // from the spool
	ctx       context.Context
	cancel    context.CancelFunc
	started   bool // under w.mu: the job's own preparation is done (see abandonLocked)
	abandoned bool // under w.mu
}

// result is what a finished job tells the sender loop.
type result struct {
	file      bool   // a spool replay
	abandoned bool   // the job had been abandoned; its result means nothing
	ok        bool   // ClickHouse took it (or there was nothing to insert)
	cancelled bool   // Flush or Close cancelled it (spooled; not ClickHouse's fault)
	op        string // "insert" or "replay"
	err       error
}

// run inserts one job (in its own goroutine).
func (w *Writer) run(j *job) result {
	defer j.cancel()
	if len(j.batches) > 0 {
		return w.runBatches(j)
	}
	return w.runFiles(j)
}

// start publishes the job's preparation (normalized records) under the
// lock; from here on it may be abandoned.
func (w *Writer) start(j *job) {
	w.mu.Lock()
	j.started = true
	w.mu.Unlock()
}

// settle ends a job's time in flight once its insert returned; false if it
// was abandoned meanwhile (then the job must touch nothing).
func (w *Writer) settle(j *job) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if j.abandoned {
		return false
	}
	delete(w.inflight, j)
	return true
}

func (w *Writer) runBatches(j *job) result {
	for _, b := range j.batches {
		w.normalizeBatch(b)
	}
	recs := j.batches[0].recs // one batch goes as it is, without a copy
	if len(j.batches) > 1 {
		recs = make([]*record.Record, 0, jobRows(j))
		for _, b := range j.batches {
			recs = append(recs, b.recs...)
		}
	}
	w.start(j)
	start := time.Now()
	recs, err := w.dropErased(j.ctx, recs)
	if err == nil && len(recs) > 0 {
		err = w.snd.insert(j.ctx, recs)
	}
	if !w.settle(j) {
		return result{abandoned: true}
	}
	if err == nil {
		w.m.batchSeconds.Observe(time.Since(start).Seconds())
		w.m.written.Add(float64(len(recs)))
		for _, b := range j.batches {
			w.mu.Lock()
			w.finishLocked(b)
			w.mu.Unlock()
			w.recycle(b)
		}
		return result{ok: true}
	}
	r := result{op: "insert", err: err, cancelled: errors.Is(j.ctx.Err(), context.Canceled)}
	if !r.cancelled {
		w.m.insertErrors.Inc()
		w.markDown()
	}
	for _, b := range j.batches {
		if serr := w.spoolOrRequeue(b); serr != nil {
			w.logSpoolError(serr)
		}
	}
	return r
}

// runFiles replays claimed spool files: read (past damage, skipping torn
// tails, setting aside what is not a spool file), insert, then delete or,
// for a damaged file, move to corrupt/ (finishReplayed).
func (w *Writer) runFiles(j *job) result {
	var recs []*record.Record
	var done []replayed // files whose records are in recs
	for _, f := range j.files {
		rd, err := readSpoolFile(f.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			w.spool.forget(f)
			continue
		case err != nil:
			// Not a spool file, or unreadable: set it aside for a human
			// rather than retrying it forever or deleting it.
			w.m.spoolCorrupt.Inc()
			qerr := w.spool.quarantine(f)
			w.log.Error("clickhouse log: spool file unreadable; renamed to .corrupt", "file", f.path, "err", err, "rename_err", qerr)
			continue
		}
		recs = append(recs, rd.recs...)
		done = append(done, replayed{f, rd})
	}
	if len(recs) > 0 {
		now := time.Now()
		for _, r := range recs {
			normalize(r, now) // no-op for files this package wrote
		}
		w.start(j)
		start := time.Now()
		err := w.insertChunks(j, recs)
		if !w.settle(j) {
			if err != nil {
				w.spool.unclaim(files(done))
			} else {
				w.finishReplayed(done)
			}
			return result{abandoned: true}
		}
		if err != nil {
			w.spool.unclaim(files(done))
			r := result{op: "replay", err: err, cancelled: errors.Is(j.ctx.Err(), context.Canceled)}
			if !r.cancelled {
				w.m.insertErrors.Inc()
				w.markDown()
			}
			return r
		}
		w.m.batchSeconds.Observe(time.Since(start).Seconds())
		w.m.replayed.Add(float64(len(recs)))
	}
	w.settle(j)
	w.finishReplayed(done)
	return result{ok: true}
}

// insertChunks inserts a replay's records in inserts of at most
// coalesceBatches*BatchSize rows, each given insertTimeout: a file larger
// than that (written with a larger BatchSize, or a large write-ahead log
// segment) is not one unbounded INSERT. A failure part-way fails the
// replay, which runs again whole later: the rows already inserted then
// collapse under FINAL.
//
// The erasure list is consulted before every chunk, not once for the
// replay: a replay of many chunks can outlast ErasureGrace, and a chunk
// inserted with a list older than that could land after an erasure's
// mutation ran.
func (w *Writer) insertChunks(j *job, recs []*record.Record) error {
	max := coalesceBatches * w.o.BatchSize
	for len(recs) > 0 {
		n := min(max, len(recs))
		chunk, err := w.dropErased(j.ctx, recs[:n])
		if err != nil {
			return err
		}
		if len(chunk) > 0 {
			ctx, cancel := context.WithTimeout(j.ctx, insertTimeout)
			err = w.snd.insert(ctx, chunk)
			cancel()
			if err != nil {
				return err
			}
		}
		recs = recs[n:]
	}
	return nil
}

// replayed is a file whose readable records are in a replay.
type replayed struct {
	f  spoolFile
	rd *spoolRead
}

func files(rs []replayed) []spoolFile {
	out := make([]spoolFile, len(rs))
	for i, r := range rs {
		out[i] = r.f
	}
	return out
}

// finishReplayed runs once the records of files are in ClickHouse: a
// file is deleted, or set aside if damaged. Losses are counted here, not
// when a file is read, because a failed insert reads it again.
func (w *Writer) finishReplayed(files []replayed) {
	for _, r := range files {
		f, rd := r.f, r.rd
		if rd.torn != nil {
			w.m.dropped.WithLabelValues(dropTorn).Add(float64(rd.lostTorn))
			w.log.Warn("clickhouse log: spool file has a torn tail (process killed while writing?); replayed the records before it",
				"file", f.path, "records", len(rd.recs), "lost", rd.lostTorn, "lost_exact", rd.exact,
				"offset", rd.torn.offset, "skipped_bytes", rd.torn.length, "reason", rd.torn.reason)
		}
		if !rd.damaged() {
			if err := w.spool.remove(f); err != nil {
				// Inserted but not deleted: the next run would replay it and
				// the duplicates collapse. Forgotten here, so no loop.
				w.log.Error("clickhouse log: cannot delete replayed spool file", "file", f.path, "err", err)
			}
			continue
		}
		w.m.spoolCorrupt.Inc()
		w.m.dropped.WithLabelValues(dropCorrupt).Add(float64(rd.lostCorrupt))
		for _, d := range rd.damage {
			w.log.Error("clickhouse log: spool file damaged; records there are lost",
				"file", f.path, "offset", d.offset, "bytes", d.length, "reason", d.reason, "version", rd.version)
		}
		evicted, err := w.spool.setAside(f)
		w.log.Error("clickhouse log: damaged spool file replayed and moved to "+corruptDir+"/",
			"file", f.path, "records", len(rd.recs), "lost", rd.lostCorrupt, "lost_exact", rd.exact,
			"damaged_regions", len(rd.damage), "evicted", evicted, "err", err)
	}
}
