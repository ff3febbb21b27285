package chstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// Writer streams log records into the requests table. It implements
// record.Sink.
//
// Records flow: Write appends the record to the write-ahead log (wal.go:
// one write(2) shared by the concurrent Writes, to the page cache), then
// to an in-memory batch (a mutex and a slice append; no channel send, no
// goroutine wake-up except when a batch fills).
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
//
// The parts: options.go (Options), wal.go (the write-ahead log), queue.go (batches in memory),
// pump.go, sender.go (the loop and what it takes next), jobs.go (one
// insert or replay), connstate.go (ClickHouse up or down, the back-off).
type Writer struct {
	o     Options
	log   *slog.Logger
	m     *metrics
	snd   sender
	conn  driver.Conn // nil with a test sender
	db    string
	spool *spool
	wal   *walLog // nil with NoWAL

	dropQueueFull, dropClosed prometheus.Counter // pre-resolved: used on the request path

	mu       sync.Mutex
	cur      []*record.Record
	curSegs  []segCount // the WAL segments of cur's records
	mem      []*batch   // sealed, ascending seq
	busy     map[*batch]struct{}
	memRows  int // in cur, mem and busy
	hardCap  int // Write drops beyond this many rows in memory
	nextSeq  uint64
	closed   bool
	shut     atomic.Bool   // closed, read without the lock
	changed  chan struct{} // closed and replaced when a batch leaves memory
	free     [][]*record.Record
	inflight map[*job]struct{} // inserts in progress
	adrift   int               // abandoned jobs whose goroutines have not returned yet

	erasure        erasureSync
	queueFullDrops atomic.Int64 // for the pump's log line
	closedWarned   atomic.Bool
	clickhouse     connState

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

	spoolLogMu      sync.Mutex
	spoolErrLogged  time.Time
	spoolFullLogged time.Time
	spoolFullSince  int64 // rows dropped since the last log line
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
	t, err := chschema.ParseURL(o.URL)
	if err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(t.Options)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	o.Logger = o.Logger.With("clickhouse", t.Redacted)
	if o.Erasures == nil && o.NewErasures != nil {
		o.Erasures = o.NewErasures(conn, t.DB)
	}
	var snd sender = newCHSender(conn, t.DB)
	if o.RequireSchema {
		check := func(ctx context.Context) (uint32, error) { return chschema.CheckVersion(ctx, conn, t.DB, t.Cluster) }
		snd = newSchemaGate(snd, check, o.Registerer, o.Logger)
	}
	w, err := newWriter(o, snd)
	if err != nil {
		conn.Close()
		return nil, err
	}
	w.conn, w.db = conn, t.DB
	return w, nil
}

func newWriter(o Options, snd sender) (*Writer, error) {
	o = o.withDefaults()
	sp, err := openSpool(o.SpoolDir, o.SpoolMaxBytes)
	if err != nil {
		return nil, fmt.Errorf("clickhouse log: %w", err)
	}
	var walLast uint64
	walDir := filepath.Join(o.SpoolDir, walDirName)
	if last, moved := recoverWAL(walDir, sp, o.Logger); moved > 0 || last > 0 {
		walLast = last
		if moved > 0 {
			o.Logger.Info("clickhouse log: write-ahead log left by a previous run moved to the spool for replay", "segments", moved)
		}
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
	w.clickhouse.up, w.clickhouse.log, w.clickhouse.spool = w.m.up, w.log, sp
	w.baseCtx, w.baseCancel = context.WithCancel(context.Background())
	w.dropQueueFull = w.m.dropped.WithLabelValues(dropQueueFull)
	w.dropClosed = w.m.dropped.WithLabelValues(dropClosed)
	w.m.up.Set(1)
	w.gateUntilChecked()
	if !o.NoWAL {
		w.wal = openWAL(walDir, o, w.m, w.log, walLast)
	}
	w.updateGauges()
	if files, bytes := sp.stats(); files > 0 {
		w.log.Info("clickhouse log: replaying spool left by a previous run", "dir", o.SpoolDir, "files", files, "bytes", bytes)
	}
	go w.pumpLoop()
	go w.runSender()
	return w, nil
}

// Write logs r to the write-ahead log and queues it; it returns once r is
// in the log's file (the page cache: a killed process loses nothing; see
// WALFsyncInterval for a machine crash). It never waits for ClickHouse
// and takes ownership of r. It is safe for concurrent use.
func (w *Writer) Write(r *record.Record) {
	if r == nil {
		return
	}
	var seg uint64
	if w.wal != nil && !w.shut.Load() {
		// Normalized first: the log's copy and the inserted row must carry
		// the same id, so that a replay collapses with it under FINAL.
		normalize(r, time.Now())
		seg = w.wal.append(r)
	}
	w.mu.Lock()
	if w.closed || w.memRows >= w.hardCap {
		closed := w.closed
		w.mu.Unlock()
		if closed && seg != 0 {
			// Raced with Close, but in the log: its segment stays for the
			// next start, which replays it. Not lost.
			if !w.closedWarned.Swap(true) {
				w.log.Warn("clickhouse log: Write during Close; record kept in the write-ahead log for the next start")
			}
			return
		}
		if seg != 0 {
			w.wal.release([]segCount{{seg, 1}}) // dropped and counted below
		}
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
	if seg != 0 {
		if n := len(w.curSegs); n > 0 && w.curSegs[n-1].seg == seg {
			w.curSegs[n-1].n++
		} else {
			w.curSegs = append(w.curSegs, segCount{seg, 1})
		}
	}
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
	w.shut.Store(true)
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
		// Records whose frames are in the write-ahead log are not lost:
		// their segments stay (wal.close) and the next start replays them.
		// Only the ones the log could not take are.
		w.mu.Lock()
		logged := w.loggedLocked()
		lost := w.memRows - logged
		w.mu.Unlock()
		if logged > 0 {
			w.log.Warn("clickhouse log: the spool cannot be written at close; records kept in the write-ahead log, replayed at the next start",
				"rows", logged, "err", spillErr)
		}
		if lost > 0 {
			w.m.dropped.WithLabelValues(dropSpoolError).Add(float64(lost))
			w.log.Error("clickhouse log: records lost at close: the spool cannot be written and they are not in the write-ahead log",
				"rows", lost, "err", spillErr)
			err = fmt.Errorf("clickhouse log: %d records lost at close: %w", lost, spillErr)
		}
	}
	w.updateGauges()
	if files, bytes := w.spool.stats(); files > 0 {
		w.log.Info("clickhouse log: closed; records left in the spool for the next start",
			"dir", w.o.SpoolDir, "files", files, "bytes", bytes)
	}
	if w.wal != nil {
		w.wal.close() // keeps the segments of records lost above
	}
	if cerr := w.spool.close(); cerr != nil && err == nil {
		err = cerr
	}
	if w.conn != nil {
		w.conn.Close()
	}
	return err
}

// loggedLocked counts the records in memory whose frames are in the
// write-ahead log.
func (w *Writer) loggedLocked() int {
	n := 0
	count := func(segs []segCount) {
		for _, c := range segs {
			n += c.n
		}
	}
	count(w.curSegs)
	for _, b := range w.mem {
		count(b.segs)
	}
	for b := range w.busy {
		count(b.segs)
	}
	return n
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
