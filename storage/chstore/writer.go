package chstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/record"
)

// Options configure a Writer. Only URL and SpoolDir are required.
type Options struct {
	URL           string        // clickhouse://host:9000/tollgate (user/password in the URL allowed)
	BatchSize     int           // rows per insert, default 5000
	FlushInterval time.Duration // a partial batch is sent after at most this long, default 1s
	QueueSize     int           // in-memory rows before spilling to the spool, default 100000
	SpoolDir      string        // required; one directory per process
	SpoolMaxBytes int64         // default 1 GiB; beyond it records are dropped, counted, logged loudly
	Logger        *slog.Logger
	// Registerer receives the metrics: tollgate_log_rows_{queued,written,
	// spooled,replayed,dropped}_total, tollgate_log_queue_rows,
	// tollgate_log_spool_{files,bytes}, tollgate_log_insert_errors_total,
	// tollgate_log_spool_corrupt_total, tollgate_log_batch_seconds,
	// tollgate_log_clickhouse_up. Nil: not registered.
	Registerer prometheus.Registerer
}

const (
	defaultBatchSize     = 5000
	defaultFlushInterval = time.Second
	defaultQueueSize     = 100_000
	defaultSpoolMaxBytes = 1 << 30

	insertTimeout = 30 * time.Second // one batch; a hung server is given up on after this
	pingTimeout   = 5 * time.Second
	backoffMin    = 100 * time.Millisecond
	backoffMax    = 10 * time.Second
	// closeAttempts: failed tries (after quick back-off) before Close stops
	// waiting for ClickHouse and leaves the rest in the spool.
	closeAttempts = 3
	logEvery      = 30 * time.Second // repeated-failure logs
)

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = defaultBatchSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = defaultFlushInterval
	}
	if o.QueueSize <= 0 {
		o.QueueSize = defaultQueueSize
	}
	o.QueueSize = max(o.QueueSize, o.BatchSize)
	if o.SpoolMaxBytes <= 0 {
		o.SpoolMaxBytes = defaultSpoolMaxBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Writer streams log records into the requests table. It implements
// record.Sink.
//
// Records flow: Write appends to an in-memory batch (a mutex and a slice
// append; no channel send, no goroutine wake-up except when a batch fills).
// A full batch, or a partial one after FlushInterval, is sealed with a
// sequence number. The sender goroutine inserts sealed batches and spool
// files, lowest sequence numbers first: up to two inserts from memory run
// at once (building one overlaps with ClickHouse writing the other), and
// under load up to four consecutive batches go into one INSERT (fewer,
// larger parts: less merging). The pump goroutine seals on the interval and
// moves sealed batches to the spool while ClickHouse is down or when more
// than QueueSize rows wait in memory. A failed insert puts its batches in
// the spool; the sender backs off (100 ms doubling to 10 s, jittered),
// pings, and replays the spool oldest first, one replay at a time, once
// ClickHouse answers. A batch inserted twice (an acknowledgement lost, a
// replay after a crash) collapses in the ReplacingMergeTree: see
// createRequestsSQL.
type Writer struct {
	o     Options
	log   *slog.Logger
	m     *metrics
	snd   sender
	conn  driver.Conn // nil with a test sender
	db    string
	spool *spool

	dropQueueFull, dropClosed prometheus.Counter // pre-resolved: used on the request path

	mu       sync.Mutex
	cur      []*record.Record
	mem      []*batch // sealed, ascending seq
	busy     map[*batch]struct{}
	memRows  int // in cur, mem and busy
	hardCap  int // Write drops beyond this many rows in memory
	nextSeq  uint64
	closed   bool
	changed  chan struct{} // closed and replaced when a batch leaves memory
	free     [][]*record.Record
	inflight map[*job]struct{} // inserts in progress
	adrift   int               // abandoned jobs whose goroutines have not returned yet

	queueFullDrops atomic.Int64 // for the pump's log line
	closedWarned   atomic.Bool
	down           atomic.Bool

	wake       chan struct{} // pump
	kick       chan struct{} // sender
	closing    chan struct{} // closed by Close
	quit       chan struct{} // closed when Close's context ends: stop waiting for ClickHouse
	quitOnce   sync.Once
	baseCtx    context.Context
	baseCancel context.CancelFunc
	pumpDone   chan struct{}
	senderDone chan struct{}

	closeOnce sync.Once
	closeErr  error

	// Sender goroutine only.
	downSince  time.Time
	lastErrLog time.Time

	spoolLogMu      sync.Mutex
	spoolErrLogged  time.Time
	spoolFullLogged time.Time
	spoolFullSince  int64 // rows dropped since the last log line
}

type batch struct {
	seq        uint64
	recs       []*record.Record
	normalized bool
	shared     bool // an abandoned insert may still read recs: never recycle
}

var _ record.Sink = (*Writer)(nil)

// Open starts a Writer. It does not need ClickHouse to be up: records go to
// the spool until it answers (clickhouse-go redials on every attempt).
// Spool files left by a previous run are replayed first, in order. Open
// fails only on bad options or an unusable spool directory. ctx bounds
// Open only; it is not retained.
func Open(ctx context.Context, o Options) (*Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	if o.SpoolDir == "" {
		return nil, errors.New("clickhouse log: SpoolDir is required")
	}
	t, err := parseURL(o.URL)
	if err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(t.opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	o.Logger = o.Logger.With("clickhouse", t.redacted)
	w, err := newWriter(o, newCHSender(conn, t.db))
	if err != nil {
		conn.Close()
		return nil, err
	}
	w.conn, w.db = conn, t.db
	return w, nil
}

func newWriter(o Options, snd sender) (*Writer, error) {
	o = o.withDefaults()
	sp, err := openSpool(o.SpoolDir, o.SpoolMaxBytes)
	if err != nil {
		return nil, fmt.Errorf("clickhouse log: %w", err)
	}
	w := &Writer{
		o:          o,
		log:        o.Logger,
		m:          newMetrics(o.Registerer),
		snd:        snd,
		spool:      sp,
		cur:        make([]*record.Record, 0, o.BatchSize),
		busy:       map[*batch]struct{}{},
		inflight:   map[*job]struct{}{},
		hardCap:    2 * o.QueueSize,
		nextSeq:    sp.maxSeq() + 1,
		changed:    make(chan struct{}),
		wake:       make(chan struct{}, 1),
		kick:       make(chan struct{}, 1),
		closing:    make(chan struct{}),
		quit:       make(chan struct{}),
		pumpDone:   make(chan struct{}),
		senderDone: make(chan struct{}),
	}
	w.baseCtx, w.baseCancel = context.WithCancel(context.Background())
	w.dropQueueFull = w.m.dropped.WithLabelValues(dropQueueFull)
	w.dropClosed = w.m.dropped.WithLabelValues(dropClosed)
	w.m.up.Set(1)
	w.updateGauges()
	if files, bytes := sp.stats(); files > 0 {
		w.log.Info("clickhouse log: replaying spool left by a previous run", "dir", o.SpoolDir, "files", files, "bytes", bytes)
	}
	go w.pumpLoop()
	go w.sendLoop()
	return w, nil
}

// Write queues r; it never blocks on I/O and takes ownership of r. It is
// safe for concurrent use.
func (w *Writer) Write(r *record.Record) {
	if r == nil {
		return
	}
	w.mu.Lock()
	if w.closed || w.memRows >= w.hardCap {
		closed := w.closed
		w.mu.Unlock()
		if closed {
			w.dropClosed.Inc()
			if !w.closedWarned.Swap(true) {
				w.log.Error("clickhouse log: Write after Close; record dropped")
			}
		} else {
			w.dropQueueFull.Inc()
			w.queueFullDrops.Add(1)
		}
		return
	}
	w.cur = append(w.cur, r)
	w.memRows++
	full := len(w.cur) >= w.o.BatchSize
	if full {
		w.sealLocked()
	}
	w.mu.Unlock()
	if full {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Flush returns when every record written before the call is in ClickHouse
// or in the spool. If ctx ends first, the records still in memory are
// written to the spool (and an insert in progress is cancelled and
// spooled) before Flush returns; the error is nil when that worked.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	w.sealLocked()
	target := w.nextSeq - 1
	w.mu.Unlock()
	w.kickPump()
	w.kickSender()
	if w.waitDurable(ctx, target) == nil {
		return nil
	}
	return w.forceDurable(target)
}

// Close flushes and stops the writer. It inserts what it can (memory first,
// then the spool) until ClickHouse fails closeAttempts times or ctx ends;
// everything else is left in the spool for the next Open. Write must not be
// called after Close (such records are dropped and counted).
func (w *Writer) Close(ctx context.Context) error {
	w.closeOnce.Do(func() { w.closeErr = w.close(ctx) })
	return w.closeErr
}

func (w *Writer) close(ctx context.Context) error {
	w.mu.Lock()
	w.sealLocked()
	w.closed = true
	w.mu.Unlock()
	close(w.closing)
	w.kickSender()
	select {
	case <-w.senderDone:
	case <-ctx.Done():
		w.log.Warn("clickhouse log: close deadline reached; leaving the rest in the spool")
		w.stop()
		<-w.senderDone
	}
	w.stop()
	<-w.pumpDone

	var err error
	if spillErr := w.spill(true, math.MaxUint64); spillErr != nil {
		w.mu.Lock()
		lost := w.memRows
		w.mu.Unlock()
		w.m.dropped.WithLabelValues(dropSpoolError).Add(float64(lost))
		w.log.Error("clickhouse log: records lost at close: the spool cannot be written", "rows", lost, "err", spillErr)
		err = fmt.Errorf("clickhouse log: %d records lost at close: %w", lost, spillErr)
	}
	w.updateGauges()
	if files, bytes := w.spool.stats(); files > 0 {
		w.log.Info("clickhouse log: closed; records left in the spool for the next start",
			"dir", w.o.SpoolDir, "files", files, "bytes", bytes)
	}
	if cerr := w.spool.close(); cerr != nil && err == nil {
		err = cerr
	}
	if w.conn != nil {
		w.conn.Close()
	}
	return err
}

func (w *Writer) stop() {
	w.quitOnce.Do(func() {
		close(w.quit)
		w.baseCancel()
	})
}

func (w *Writer) isClosing() bool {
	select {
	case <-w.closing:
		return true
	default:
		return false
	}
}

func (w *Writer) kickPump() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Writer) kickSender() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// ---------------------------------------------------------- memory state ---

// sealLocked turns the current batch, if any, into a sealed one.
func (w *Writer) sealLocked() {
	if len(w.cur) == 0 {
		return
	}
	b := &batch{seq: w.nextSeq, recs: w.cur}
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

// ------------------------------------------------------------------ pump ---

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
			!(force || w.down.Load() || w.memRows > w.o.QueueSize) {
			w.mu.Unlock()
			return nil
		}
		b := w.popLocked()
		w.mu.Unlock()
		w.normalizeBatch(b)
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
	}
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

// ---------------------------------------------------------------- sender ---

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

// sendLoop owns the connection state: it backs off and pings while
// ClickHouse is down, takes jobs (lowest sequence numbers first) and runs
// them in goroutines, at most maxInflight at a time.
func (w *Writer) sendLoop() {
	defer close(w.senderDone)
	var bo backoff
	closeFailures := 0
	results := make(chan result, maxInflight)
	inflight, fileJob := 0, false
	handle := func(r result) {
		inflight--
		if r.file {
			fileJob = false
		}
		switch {
		case r.abandoned:
			w.mu.Lock()
			w.adrift--
			w.mu.Unlock()
		case r.ok:
			bo.reset()
			closeFailures = 0
			w.noteSuccess()
		case r.cancelled:
		default:
			w.noteFailure(r.op, r.err)
			if w.isClosing() {
				closeFailures++
			}
		}
		w.updateGauges()
	}
	// waitResult blocks for a finished job; false if the writer stops.
	waitResult := func() bool {
		select {
		case r := <-results:
			handle(r)
			return true
		case <-w.quit:
			return false
		}
	}
loop:
	for {
		select {
		case r := <-results:
			handle(r)
			continue
		case <-w.quit:
			break loop
		default:
		}
		closing := w.isClosing()
		if closing && closeFailures >= closeAttempts {
			break
		}
		if w.down.Load() {
			w.mu.Lock()
			running := inflight - w.adrift
			w.mu.Unlock()
			if running > 0 { // they fail (and spool) or finish first
				if !waitResult() {
					break
				}
				continue
			}
			d := bo.next()
			if closing {
				d = min(d, 250*time.Millisecond)
			}
			if !w.sleep(d, !closing) {
				break
			}
			ctx, cancel := context.WithTimeout(w.baseCtx, pingTimeout)
			err := w.snd.ping(ctx)
			cancel()
			if err != nil {
				w.noteFailure("ping", err)
				if w.isClosing() {
					closeFailures++
				}
				continue
			}
			w.down.Store(false)
			w.m.up.Set(1)
		}
		if fileJob || inflight >= maxInflight {
			if !waitResult() {
				break
			}
			continue
		}
		j := w.take(inflight)
		if j == nil {
			if inflight > 0 {
				select {
				case r := <-results:
					handle(r)
				case <-w.kick:
				case <-w.quit:
					break loop
				}
				continue
			}
			if closing {
				select {
				case <-w.pumpDone:
					if w.hasWork() {
						continue
					}
					break loop
				case <-w.quit:
					break loop
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
				break loop
			}
			continue
		}
		inflight++
		fileJob = len(j.files) > 0
		go func() {
			r := w.run(j)
			r.file = len(j.files) > 0
			results <- r
		}()
	}
	// Stopping: running inserts end (the quit cancelled them, or they fail
	// or finish) and spool their batches themselves, or are abandoned.
	// Abandoned ones are not waited for: their late results land in the
	// buffered channel.
	grace := time.NewTimer(abandonAfter)
	defer grace.Stop()
	for {
		w.mu.Lock()
		running := inflight - w.adrift
		w.mu.Unlock()
		if running <= 0 {
			break
		}
		select {
		case r := <-results:
			handle(r)
		case <-grace.C:
			w.mu.Lock()
			for j := range w.inflight {
				w.abandonLocked(j)
			}
			w.mu.Unlock()
			grace.Reset(abandonAfter)
		}
	}
	// Whatever is still in memory goes to the spool.
	if err := w.spill(true, math.MaxUint64); err != nil {
		w.logSpoolError(err)
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
		j.ctx, j.cancel = context.WithTimeout(w.baseCtx, insertTimeout)
		w.inflight[j] = struct{}{}
		return j
	}
	return nil
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

// markDown is the immediate part of a failure (the sender loop logs it):
// from now on the pump sends new batches to the spool.
func (w *Writer) markDown() {
	w.down.Store(true)
	w.m.up.Set(0)
	w.kickPump()
}

func (w *Writer) runBatches(j *job) result {
	recs := j.batches[0].recs
	w.normalizeBatch(j.batches[0])
	if len(j.batches) > 1 {
		n := 0
		for _, b := range j.batches {
			n += len(b.recs)
		}
		recs = make([]*record.Record, 0, n)
		for _, b := range j.batches {
			w.normalizeBatch(b)
			recs = append(recs, b.recs...)
		}
	}
	w.start(j)
	start := time.Now()
	err := w.snd.insert(j.ctx, recs)
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
		if serr := w.spoolBatch(b); serr != nil {
			w.logSpoolError(serr)
			w.mu.Lock()
			w.requeueLocked(b)
			w.mu.Unlock()
			continue
		}
		w.mu.Lock()
		w.finishLocked(b)
		w.mu.Unlock()
		w.recycle(b)
	}
	return r
}

// runFiles replays claimed spool files: read (skipping torn tails, setting
// aside what is not a spool file), insert, then delete.
func (w *Writer) runFiles(j *job) result {
	var recs []*record.Record
	var done []spoolFile // files whose records are in recs
	for _, f := range j.files {
		rs, tr, err := readSpoolFile(f.path)
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
		if tr != nil {
			w.m.spoolCorrupt.Inc()
			w.log.Warn("clickhouse log: spool file has a torn or corrupted tail (process killed while writing?); replaying the records before it",
				"file", f.path, "records", len(rs), "offset", tr.offset, "skipped_bytes", tr.lost, "reason", tr.reason)
		}
		recs = append(recs, rs...)
		done = append(done, f)
	}
	if len(recs) > 0 {
		now := time.Now()
		for _, r := range recs {
			normalize(r, now) // no-op for files this package wrote
		}
		w.start(j)
		start := time.Now()
		err := w.snd.insert(j.ctx, recs)
		if !w.settle(j) {
			if err != nil {
				w.spool.unclaim(done)
			} else {
				w.removeReplayed(done)
			}
			return result{abandoned: true}
		}
		if err != nil {
			w.spool.unclaim(done)
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
	w.removeReplayed(done)
	return result{ok: true}
}

func (w *Writer) removeReplayed(files []spoolFile) {
	for _, f := range files {
		if err := w.spool.remove(f); err != nil {
			// Inserted but not deleted: the next run would replay it and
			// the duplicates collapse. Forgotten here, so no loop.
			w.log.Error("clickhouse log: cannot delete replayed spool file", "file", f.path, "err", err)
		}
	}
}

// noteFailure logs a failed attempt (sender loop only): the first at warn
// level, repeats at most every logEvery.
func (w *Writer) noteFailure(op string, err error) {
	w.markDown()
	now := time.Now()
	if w.downSince.IsZero() {
		w.downSince = now
		w.lastErrLog = now
		files, bytes := w.spool.stats()
		w.log.Warn("clickhouse log: ClickHouse unavailable; records go to the spool until it is back",
			"op", op, "err", err, "spool_files", files, "spool_bytes", bytes)
		return
	}
	if now.Sub(w.lastErrLog) >= logEvery {
		w.lastErrLog = now
		files, bytes := w.spool.stats()
		w.log.Warn("clickhouse log: ClickHouse still unavailable", "op", op, "err", err,
			"for", now.Sub(w.downSince).Round(time.Second), "spool_files", files, "spool_bytes", bytes)
		return
	}
	w.log.Debug("clickhouse log: attempt failed", "op", op, "err", err)
}

func (w *Writer) noteSuccess() {
	w.m.up.Set(1)
	if !w.downSince.IsZero() {
		files, bytes := w.spool.stats()
		w.log.Info("clickhouse log: ClickHouse is back; replaying the spool",
			"after", time.Since(w.downSince).Round(time.Millisecond), "spool_files", files, "spool_bytes", bytes)
		w.downSince = time.Time{}
	}
}

// backoff: exponential from backoffMin to backoffMax, with jitter (each
// delay is drawn from [d/2, d]) so that many processors do not hammer a
// recovering ClickHouse in step.
type backoff struct{ n int }

func (b *backoff) next() time.Duration {
	d := backoffMax
	if b.n < 16 {
		d = min(backoffMin<<b.n, backoffMax)
	}
	b.n++
	half := d / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.n = 0 }
