package chstore

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/storage/wal"
)

// setVar sets *p to v for the test.
func setVar[T any](t *testing.T, p *T, v T) {
	old := *p
	*p = v
	t.Cleanup(func() { *p = old })
}

// segmentsOn makes the log's new segments write to what make returns
// (a stalled or failing disk) while on() is true.
func segmentsOn(t *testing.T, on func() bool, make func(t *testing.T) *os.File) {
	real := createSegmentFile
	setVar(t, &createSegmentFile, func(path string, o wal.Options) (*wal.File, error) {
		if !on() {
			return real(path, o)
		}
		return wal.New(make(t), o), nil
	})
}

// stalledDisk is a pipe nobody reads yet, already full: writing to it
// blocks as on a stalled disk. release lets the writes through.
type stalledDisk struct {
	mu   sync.Mutex
	rs   []*os.File
	gone bool
}

func (d *stalledDisk) file(t *testing.T) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	for {
		if _, err := w.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	w.SetWriteDeadline(time.Time{})
	d.mu.Lock()
	d.rs = append(d.rs, r)
	d.mu.Unlock()
	return w
}

func (d *stalledDisk) stalled() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.gone
}

func (d *stalledDisk) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gone = true
	for _, r := range d.rs {
		go func() {
			buf := make([]byte, 64<<10)
			for {
				if _, err := r.Read(buf); err != nil {
					return
				}
			}
		}()
	}
}

// TestWALStalledDiskDoesNotStopCalls: a log whose writes hang (not fail)
// holds each Write at most walAppendWait: the records go on in memory,
// counted unlogged, the failure counted and logged, and are delivered.
func TestWALStalledDiskDoesNotStopCalls(t *testing.T) {
	setVar(t, &walAppendWait, 20*time.Millisecond)
	disk := &stalledDisk{}
	segmentsOn(t, disk.stalled, disk.file)
	f := &fakeSender{}
	w, lb := newFakeWriter(t, f, Options{})
	t.Cleanup(disk.release) // before Close (cleanups run last first)
	const n = 20
	for i := range n {
		w.Write(testRecord("stalled", i, false)) // would hang without the bound
	}
	if u := metric(w.m.walUnlogged); u != n {
		t.Errorf("unlogged rows %d, want %d", u, n)
	}
	if metric(w.m.walErrors) == 0 || !lb.Contains("WRITE-AHEAD LOG FAILED") {
		t.Error("stall neither counted nor logged")
	}
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if f.count() != n {
		t.Errorf("%d delivered, want %d", f.count(), n)
	}
}

// TestWALWriteErrorOnSegment: a segment whose writes fail (a file that
// cannot be written) is sealed: its records are counted unlogged, the
// failure once, and the records are delivered from memory.
func TestWALWriteErrorOnSegment(t *testing.T) {
	failing := true
	var mu sync.Mutex
	segmentsOn(t, func() bool { mu.Lock(); defer mu.Unlock(); return failing }, func(t *testing.T) *os.File {
		f, err := os.Open(os.DevNull) // read only: every write fails
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
	f := &fakeSender{}
	w, lb := newFakeWriter(t, f, Options{})
	for i := range 10 {
		w.Write(testRecord("badseg", i, false))
	}
	if u, e := metric(w.m.walUnlogged), metric(w.m.walErrors); u != 10 || e != 1 {
		t.Errorf("unlogged %d, errors %d; want 10 and 1 (a failed segment counted once)", u, e)
	}
	if !lb.Contains("WRITE-AHEAD LOG FAILED") {
		t.Error("failure not logged")
	}
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if f.count() != 10 {
		t.Errorf("%d delivered, want 10", f.count())
	}
}

// TestWALFsyncErrorCounted: the cadence's fsync failing (here: a file
// that cannot be fsynced) is counted and logged, and the segment sealed.
func TestWALFsyncErrorCounted(t *testing.T) {
	segmentsOn(t, func() bool { return true }, drainedPipe)
	f := &fakeSender{}
	w, lb := newFakeWriter(t, f, Options{WALFsyncInterval: 5 * time.Millisecond})
	w.Write(testRecord("fsync", 0, false))
	if metric(w.m.walUnlogged) != 0 {
		t.Fatal("a write to the pipe failed")
	}
	testenv.WaitFor(t, 10*time.Second, "fsync failure counted", func() bool { return metric(w.m.walErrors) > 0 })
	if !lb.Contains("fsync") {
		t.Error("fsync failure not logged")
	}
}

// TestWALFsyncCadence: the current segment is fsynced on the cadence
// without any Flush or rotation.
func TestWALFsyncCadence(t *testing.T) {
	f := &fakeSender{}
	w, _ := newFakeWriter(t, f, Options{WALFsyncInterval: 5 * time.Millisecond, FlushInterval: time.Hour})
	w.wal.mu.Lock()
	seg := w.wal.cur
	w.wal.mu.Unlock()
	w.Write(testRecord("cadence", 0, false))
	testenv.WaitFor(t, 10*time.Second, "the cadence's fsync", func() bool { return seg.file.Syncs() > 0 })
}

// TestWALRotatesByAge: a segment older than walSegmentAge is rotated out
// by the loop (its records then retire with it), without a Write.
func TestWALRotatesByAge(t *testing.T) {
	setVar(t, &walSegmentAge, 20*time.Millisecond)
	dir := t.TempDir()
	f := &fakeSender{}
	w, _ := newFakeWriter(t, f, Options{SpoolDir: dir})
	w.wal.mu.Lock()
	first := w.wal.cur.path
	w.wal.mu.Unlock()
	w.Write(testRecord("age", 0, false))
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the aged segment rotated and deleted", func() bool {
		_, err := os.Stat(first)
		return os.IsNotExist(err)
	})
	w.Write(testRecord("age", 1, false))
	if metric(w.m.walUnlogged) != 0 {
		t.Error("record after rotation not logged")
	}
	segs, _ := filepath.Glob(filepath.Join(dir, walDirName, "*"+walExt))
	if len(segs) == 0 {
		t.Error("no segment after rotation")
	}
}

// TestWALCloseKeepsLoggedRecords: when Close can neither insert nor spool
// (ClickHouse down, the spool unwritable), the records are in the
// write-ahead log: they are not counted lost, Close does not report them
// lost, and the next start delivers every one.
func TestWALCloseKeepsLoggedRecords(t *testing.T) {
	dir := t.TempDir()
	f := &fakeSender{down: true}
	w, lb := newFakeWriter(t, f, Options{SpoolDir: dir, BatchSize: 10})
	// A directory where each spool file would go: every spool write fails.
	var blockers []string
	for seq := w.nextSeq; seq < w.nextSeq+100; seq++ {
		p := filepath.Join(dir, spoolName(seq))
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		blockers = append(blockers, p)
	}
	const n = 50
	var recs []string
	for i := range n {
		r := testRecord("keptatclose", i, false)
		recs = append(recs, r.RequestID)
		w.Write(r)
	}
	if err := w.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Errorf("Close: %v; the records are in the log, none lost", err)
	}
	if d := dropped(w, dropSpoolError); d != 0 {
		t.Errorf("dropped{spool_error} %d, want 0: the records are kept in the log", d)
	}
	if !lb.Contains("replayed at the next start") {
		t.Error("records kept for the next start not logged")
	}
	for _, p := range blockers {
		os.Remove(p)
	}
	f2 := &fakeSender{}
	w2, _ := newFakeWriter(t, f2, Options{SpoolDir: dir})
	if err := w2.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, id := range f2.ids() {
		got[id] = true
	}
	for _, id := range recs {
		if !got[id] {
			t.Errorf("record %s not delivered at the next start", id)
		}
	}
}

// TestWALCloseErrorCounted: a rotated segment whose close fails (its last
// fsync) is counted and logged: the cadence never ran, so the close is
// the only place the failure shows.
func TestWALCloseErrorCounted(t *testing.T) {
	setVar(t, &walSegmentAge, 20*time.Millisecond)
	segmentsOn(t, func() bool { return true }, drainedPipe)
	f := &fakeSender{}
	w, lb := newFakeWriter(t, f, Options{WALFsyncInterval: time.Hour})
	w.Write(testRecord("closeerr", 0, false))
	if metric(w.m.walUnlogged) != 0 || metric(w.m.walErrors) != 0 {
		t.Fatal("the write itself failed")
	}
	testenv.WaitFor(t, 10*time.Second, "close failure counted", func() bool { return metric(w.m.walErrors) > 0 })
	if !lb.Contains("close") {
		t.Error("close failure not logged")
	}
}

// drainedPipe is a segment file whose writes work (a goroutine drains
// them) and whose fsync fails.
func drainedPipe(t *testing.T) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
	return w
}
