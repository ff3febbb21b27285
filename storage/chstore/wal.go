package chstore

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/wal"
)

// The write-ahead log. Write puts each record's frame in the current
// segment of <SpoolDir>/wal/ (group commit, package wal) before it
// returns, so a record that was answered is on local disk, in the page
// cache at least, before the process can die. A segment is a spool file
// (spoolformat.go) with an open-ended count, so a segment a killed process
// left is replayed exactly like a spool file: Open moves it into the spool.
//
// Segments rotate at walSegmentBytes, at BatchSize frames (a replay
// coalesces up to coalesceBatches left segments into one insert, no larger
// than the writer's own) or at walSegmentAge. Each record counts
// as live in its segment until its batch leaves memory (inserted, spooled
// with fsync, or dropped and counted: finishLocked); a rotated segment
// with no live records is deleted. The log therefore holds at most what
// memory holds, plus one segment: while ClickHouse is down the batches go
// to the spool and their segments retire.
//
// A log that cannot be written (disk full, gone) must not stop calls: the
// records stay in memory only, counted in tollgate_log_wal_unlogged_rows_
// total, the failure in tollgate_log_wal_errors_total and the log; a new
// segment is tried walRetry later. A disk that stalls instead of failing
// must not stop them either: no file is created, closed or deleted on
// the request path (the background loop makes the next segment ahead of
// time and closes the old ones), and a segment's group writes are issued
// by its own goroutine with wal.Options.StallTimeout = walAppendWait: a
// write that has not returned by then (or a new segment not ready by
// then) makes Write count the record unlogged, seal the segment (failed)
// and go on. A Write waits at most twice walAppendWait (the group write
// before its own may take up to walAppendWait).
const (
	walDirName = "wal"
	walExt     = ".wal"
	walBufMax  = 1 << 20 // pooled frame buffers larger than this are not kept
)

// walSegmentBytes is the size at which a segment rotates (at most what a
// replay reads for one insert), walSegmentAge the age, walRetry the wait before a failed log
// tries a new segment, walAppendWait the longest Write waits for the disk
// (variables for the tests).
var (
	walSegmentBytes uint64 = coalesceBytes
	walRetry               = 10 * time.Second
	walAppendWait          = time.Second
	walSegmentAge          = 10 * time.Second
)

// createSegmentFile creates a segment's file (a test hook: a stalled or
// failing disk).
var createSegmentFile = wal.Create

// walSegment is one file of the log.
type walSegment struct {
	num     uint64
	path    string
	file    *wal.File
	next    uint32 // the next frame's index
	size    uint64 // bytes added (header and frames)
	created time.Time
	live    int  // records whose batches have not left memory
	sealed  bool // rotated: takes no more frames
	closed  bool // sealed and its file closed (fsynced)
	failed  bool // a write, fsync or close failed (counted once)
}

// walLog is the Writer's write-ahead log. Lock order: Writer.mu before
// walLog.mu (finishLocked releases records under Writer.mu).
type walLog struct {
	dir       string
	maxFrames uint32 // rotate at this many frames
	syncEvery bool
	interval  time.Duration // fsync cadence when not syncEvery
	log       *slog.Logger
	errs      prometheus.Counter
	unlogged  prometheus.Counter
	segGauge  prometheus.Gauge
	bufs      sync.Pool

	mu      sync.Mutex
	cur     *walSegment   // nil: memory only until retryAt
	spare   *walSegment   // created ahead by the loop: Write does no file I/O but its own write
	spareCh chan struct{} // closed (and replaced) when the loop tried to make a spare
	segs    map[uint64]*walSegment
	nextNum uint64
	retryAt time.Time
	closed  bool
	failLog time.Time

	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	syncDone chan struct{}
}

// segCount is how many records of a batch are in one segment.
type segCount struct {
	seg uint64
	n   int
}

func openWAL(dir string, o Options, m *metrics, log *slog.Logger, last uint64) *walLog {
	l := &walLog{
		dir:       dir,
		maxFrames: uint32(min(o.BatchSize, math.MaxUint32)),
		syncEvery: o.WALSyncEveryWrite,
		interval:  o.WALFsyncInterval,
		log:       log,
		errs:      m.walErrors,
		unlogged:  m.walUnlogged,
		segGauge:  m.walSegments,
		segs:      map[uint64]*walSegment{},
		nextNum:   last + 1,
		spareCh:   make(chan struct{}),
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		syncDone:  make(chan struct{}),
	}
	// The first segment, made here (Open is not on the request path); on
	// failure the log is memory only until the loop makes one.
	l.makeSpare(l.nextNum)
	l.nextNum++
	l.mu.Lock()
	l.cur = l.takeSpareLocked()
	l.mu.Unlock()
	go l.loop()
	if !l.syncEvery {
		go l.syncLoop()
	} else {
		close(l.syncDone)
	}
	return l
}

// takeSpareLocked makes the spare the current segment (nil if there is
// none) and asks the loop for the next one. No I/O.
func (l *walLog) takeSpareLocked() *walSegment {
	s := l.spare
	if s == nil {
		return nil
	}
	l.spare = nil
	s.created = time.Now()
	l.segs[s.num] = s
	l.kickLoop()
	return s
}

// createSegment creates segment file n (and the directory, which a
// failing disk may have lost).
func (l *walLog) createSegment(n uint64) (*walSegment, error) {
	// Only wal/ itself: a spool directory that is gone is not made again
	// here (its lock and files went with it; Close reports that).
	if err := os.Mkdir(l.dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	path := filepath.Join(l.dir, walSegmentName(n))
	f, err := createSegmentFile(path, wal.Options{
		SyncEveryWrite: l.syncEvery,
		StallTimeout:   walAppendWait,
		Header:         appendSpoolHeader(nil, openCount),
	})
	if err != nil {
		return nil, err
	}
	return &walSegment{num: n, path: path, file: f, created: time.Now()}, nil
}

// append writes r's frame to the log and returns once it is in the file
// (page cache; fsynced too with WALSyncEveryWrite). It returns the
// segment the record is live in, 0 if the record is in memory only.
func (l *walLog) append(r *record.Record) uint64 {
	bp, _ := l.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	frame := appendFrame((*bp)[:0], openCount, r)
	deadline := time.Now().Add(walAppendWait)

	l.mu.Lock()
	s := l.currentLocked(len(frame))
	for s == nil && l.awaitingSpareLocked() {
		// Rotated with no spare ready yet: wait (bounded) for the loop.
		ch := l.spareCh
		l.kickLoop()
		l.mu.Unlock()
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
		l.mu.Lock()
		s = l.currentLocked(len(frame))
		if s == nil && l.awaitingSpareLocked() && !time.Now().Before(deadline) {
			l.retryAt = time.Now().Add(walRetry)
			l.countFailure(fmt.Errorf("no new segment within %v (the disk stalls?)", walAppendWait))
		}
	}
	if s == nil {
		l.mu.Unlock()
		l.putBuf(bp, frame)
		l.unlogged.Inc()
		return 0
	}
	sumFrame(frame, s.next)
	s.next++
	s.live++
	s.size += uint64(len(frame))
	ticket := s.file.Add(frame)
	l.mu.Unlock()
	l.putBuf(bp, frame)

	if err := s.file.Wait(ticket); err != nil { // at most walAppendWait: StallTimeout
		// Not (cleanly) in the log: the record is in memory only and does
		// not hold the segment back.
		l.unlogged.Inc()
		if errors.Is(err, wal.ErrTimeout) {
			err = fmt.Errorf("write not done within %v (the disk stalls?): %w", walAppendWait, err)
		}
		l.failed(s, err)
		l.release([]segCount{{s.num, 1}})
		return 0
	}
	return s.num
}

// awaitingSpareLocked: the log wants a new segment and the loop may make
// one.
func (l *walLog) awaitingSpareLocked() bool {
	return !l.closed && l.cur == nil && l.spare == nil && !time.Now().Before(l.retryAt)
}

func (l *walLog) putBuf(bp *[]byte, frame []byte) {
	if cap(frame) > walBufMax {
		return
	}
	*bp = frame[:0]
	l.bufs.Put(bp)
}

// currentLocked is the segment for a frame of n bytes, rotating a full
// one; nil when the log is failing (or closed).
func (l *walLog) currentLocked(n int) *walSegment {
	if l.closed {
		return nil
	}
	if s := l.cur; s != nil && s.next > 0 && (s.size+uint64(n) > walSegmentBytes || s.next >= l.maxFrames) {
		l.sealLocked()
	}
	if l.cur == nil && !time.Now().Before(l.retryAt) {
		l.cur = l.takeSpareLocked() // nil: none ready yet, the loop is asked
	}
	return l.cur
}

// sealLocked rotates the current segment out; its file is closed (written
// out and fsynced) by the loop.
func (l *walLog) sealLocked() {
	if l.cur == nil {
		return
	}
	l.cur.sealed = true
	l.cur = nil
	l.kickLoop()
}

// failed: a write, fsync or close of s failed (or stalled). The segment
// takes no more frames; records go to memory only until a new segment
// can be made. Counted once per segment.
func (l *walLog) failed(s *walSegment, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == s {
		l.sealLocked()
		l.retryAt = time.Now().Add(walRetry)
	}
	if !s.failed {
		s.failed = true
		l.countFailure(err)
	}
}

// countFailure counts and logs (at most every 10 s) a failure of the log.
func (l *walLog) countFailure(err error) {
	l.errs.Inc()
	if time.Since(l.failLog) < 10*time.Second {
		return
	}
	l.failLog = time.Now()
	l.log.Error("clickhouse log: WRITE-AHEAD LOG FAILED: records are held in memory only (a killed process loses them) until a new segment can be written",
		"dir", l.dir, "retry_in", walRetry, "err", err)
}

// release: the records counted in segs left memory.
func (l *walLog) release(segs []segCount) {
	if len(segs) == 0 {
		return
	}
	l.mu.Lock()
	retire := false
	for _, c := range segs {
		if s := l.segs[c.seg]; s != nil {
			s.live -= c.n
			retire = retire || s.live == 0 && s.closed
		}
	}
	l.mu.Unlock()
	if retire {
		l.kickLoop()
	}
}
