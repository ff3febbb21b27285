package chstore

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
)

// TestWALKilledProcessLosesNothing: a processor whose records wait in
// memory for the next flush (a long interval, a large batch; ClickHouse
// up) is SIGKILLed
// right after Write returned for every record. The restarted writer
// replays its write-ahead log: every record arrives, exactly once under
// FINAL, with the default fsync cadence and with an fsync per group
// write; and with a short interval, where part of the records had been
// inserted before the kill (their replay collapses under FINAL).
func TestWALKilledProcessLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"FsyncInterval", []string{"HELPER_FLUSH=1h", "HELPER_BATCH=5000"}},
		{"FsyncEveryWrite", []string{"HELPER_FLUSH=1h", "HELPER_BATCH=5000", "HELPER_SYNC=1"}},
		{"PartlyInserted", []string{"HELPER_FLUSH=5ms"}},
		// Segments of 64 KiB: the log rotated many times before the kill.
		{"Rotated", []string{"HELPER_FLUSH=1h", "HELPER_BATCH=5000", "HELPER_WAL_SEGMENT=65536"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, db, conn := testDB(t, sharedURL(t))
			dir := t.TempDir()
			const n = 2000
			p, written := startHelper(t, "concurrent", url, dir, n, tc.env...)
			select {
			case <-written:
			case <-time.After(2 * time.Minute):
				t.Fatal("the helper did not write its records")
			}
			if err := p.Kill(); err != nil { // SIGKILL, by PID
				t.Fatal(err)
			}
			p.Wait()
			before, _, _ := counts(t, conn, db, "")
			segs, _ := filepath.Glob(filepath.Join(dir, walDirName, "*"+walExt))
			if tc.name == "Rotated" && len(segs) < 3 {
				t.Errorf("%d segments left by the killed process, want several (rotation)", len(segs))
			}

			w, lb := openWriter(t, Options{URL: url, SpoolDir: dir})
			if err := w.Close(ctxT(t, 30*time.Second)); err != nil {
				t.Fatal(err)
			}
			final, distinct, raw := counts(t, conn, db, "")
			t.Logf("%d rows before the restart; after: %d with FINAL, %d raw; replayed %d", before, final, raw, metric(w.m.replayed))
			if final != n || distinct != n {
				t.Errorf("rows %d (distinct %d), want all %d answered records", final, distinct, n)
			}
			if !lb.Contains("write-ahead log left by a previous run") {
				t.Error("replay of the log not logged")
			}
			if d := dropped(w, dropTorn) + dropped(w, dropCorrupt); d != 0 {
				t.Errorf("%d records counted lost after a SIGKILL", d)
			}
			if left, _ := os.ReadDir(dir); len(left) != 1 || left[0].Name() != lockName {
				t.Errorf("spool dir not emptied after delivery: %v", left)
			}
		})
	}
}

// TestWALSegmentsRetire: the log holds no more than what memory holds
// (a small QueueSize here) plus a few segments, while records are
// delivered and while ClickHouse is down (they move to the spool and
// their segments go); once everything is delivered only the current
// segment and the spare are left, and none after Close.
func TestWALSegmentsRetire(t *testing.T) {
	setVar(t, &walSegmentBytes, 32<<10)
	f := &fakeSender{}
	dir := t.TempDir()
	w, _ := newFakeWriter(t, f, Options{SpoolDir: dir, BatchSize: 100, QueueSize: 500})
	frame := len(appendFrame(nil, openCount, testRecord("size", 0, true)))
	// Memory holds at most hardCap rows; the log that plus the current
	// segment, the spare and one the loop is about to delete; twice that,
	// for a loop that lags. Not retiring, the log would reach 6000 frames.
	bound := 2 * (int64(w.hardCap*frame) + 3*int64(walSegmentBytes))
	walBytes := func() (total int64, files int) {
		es, _ := os.ReadDir(filepath.Join(dir, walDirName))
		for _, e := range es {
			if info, err := e.Info(); err == nil {
				total += info.Size()
			}
		}
		return total, len(es)
	}
	var maxBytes int64
	write := func(tag string, n int) {
		for i := range n {
			w.Write(testRecord(tag, i, true))
			if i%50 == 0 {
				b, _ := walBytes()
				maxBytes = max(maxBytes, b)
			}
		}
	}
	write("up", 3000)
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "delivered segments deleted", func() bool { _, n := walBytes(); return n <= 2 })

	f.setDown(true)
	write("down", 3000)
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil { // spools them
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "spooled segments deleted", func() bool { _, n := walBytes(); return n <= 2 })
	drops := dropped(w, dropQueueFull)
	if recs, _, _ := spoolRecords(t, dir); recs+drops != 3000 {
		t.Errorf("spool holds %d records and %d were dropped, want 3000 together", recs, drops)
	}
	if maxBytes > bound {
		t.Errorf("the log held up to %d bytes during the run, over its bound %d (%d frames of %d bytes)",
			maxBytes, bound, w.hardCap, frame)
	}
	t.Logf("log at most %d bytes (bound %d); %d dropped while down", maxBytes, bound, drops)
	f.setDown(false)
	if err := w.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if f.count() != 6000-drops {
		t.Errorf("%d delivered, want %d", f.count(), 6000-drops)
	}
	if _, err := os.Stat(filepath.Join(dir, walDirName)); !os.IsNotExist(err) {
		t.Errorf("wal dir left after a clean close: %v", err)
	}
}

// TestWALReplayBounded: a process killed with many records in memory
// leaves segments of at most BatchSize frames, so the next start replays
// them in inserts no larger than the writer's own (coalesceBatches
// batches).
func TestWALReplayBounded(t *testing.T) {
	stuck := make(chan struct{})
	f := &fakeSender{stuck: stuck} // nothing leaves memory: the segments stay
	dir := t.TempDir()
	w, _ := newFakeWriter(t, f, Options{SpoolDir: dir, BatchSize: 10, FlushInterval: time.Hour})
	t.Cleanup(func() { close(stuck) })
	const n = 500
	for i := range n {
		w.Write(testRecord("bounded", i, false))
	}
	if u := metric(w.m.walUnlogged); u != 0 {
		t.Fatalf("%d records not logged", u)
	}
	// What a SIGKILL leaves: the log as it is now, in another spool dir.
	left := t.TempDir()
	if err := os.CopyFS(filepath.Join(left, walDirName), os.DirFS(filepath.Join(dir, walDirName))); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(left, walDirName, "*"+walExt))
	f2 := &fakeSender{}
	w2, _ := newFakeWriter(t, f2, Options{SpoolDir: left, BatchSize: 10})
	if err := w2.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, id := range f2.ids() {
		seen[id] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct records replayed, want %d", len(seen), n)
	}
	f2.mu.Lock()
	defer f2.mu.Unlock()
	for _, b := range f2.batches {
		if len(b) > coalesceBatches*10 {
			t.Errorf("one replay insert of %d rows, want at most %d (%d segments)", len(b), coalesceBatches*10, len(segs))
			break
		}
	}
}

// writeSegment writes a WAL segment of n records as Write would have,
// numbered num, into spool dir's wal/.
func writeSegment(t *testing.T, dir string, num uint64, recs []*record.Record) (path string, offs []int) {
	t.Helper()
	b, offs := segmentBytes(recs)
	if err := os.MkdirAll(filepath.Join(dir, walDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, walDirName, walSegmentName(num))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, offs
}

// TestReplayLargeSegmentInChunks: a left segment far larger than a batch
// (written with a larger BatchSize) is replayed in inserts of at most
// coalesceBatches*BatchSize rows, every record once.
func TestReplayLargeSegmentInChunks(t *testing.T) {
	dir := t.TempDir()
	const n = 1000
	var recs []*record.Record
	for i := range n {
		recs = append(recs, testRecord("large", i, false))
	}
	writeSegment(t, dir, 3, recs)
	f := &fakeSender{}
	w, _ := newFakeWriter(t, f, Options{SpoolDir: dir, BatchSize: 10})
	if err := w.Close(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, want := f.ids(), ids(recs); !reflect.DeepEqual(got, want) {
		t.Errorf("replayed %d records, want the %d in order", len(got), len(want))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.batches {
		if len(b) > coalesceBatches*10 {
			t.Fatalf("one replay insert of %d rows, want at most %d", len(b), coalesceBatches*10)
		}
	}
}

// segmentBytes is a WAL segment of recs as Write makes it, and each
// frame's offset.
func segmentBytes(recs []*record.Record) (b []byte, offs []int) {
	b = appendSpoolHeader(nil, openCount)
	for i, r := range recs {
		offs = append(offs, len(b))
		f := len(b)
		b = appendFrame(b, openCount, r)
		sumFrame(b[f:], uint32(i))
	}
	return b, offs
}

// TestWALTornTail: a segment whose last frame was cut (the machine died
// while the kernel wrote it) replays every whole frame; the cut record is
// counted as torn, not as corruption.
func TestWALTornTail(t *testing.T) {
	dir := t.TempDir()
	var recs []*record.Record
	for i := range 10 {
		recs = append(recs, testRecord("walTorn", i, true))
	}
	path, offs := writeSegment(t, dir, 7, recs)
	if err := os.Truncate(path, int64(offs[9]+30)); err != nil {
		t.Fatal(err)
	}
	f := &fakeSender{}
	w, lb := newFakeWriter(t, f, Options{SpoolDir: dir})
	if err := w.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, want := f.ids(), ids(recs[:9]); !reflect.DeepEqual(got, want) {
		t.Errorf("replayed %v, want the 9 whole frames %v", got, want)
	}
	if d := dropped(w, dropTorn); d != 1 {
		t.Errorf("dropped{torn} %d, want 1", d)
	}
	if d, c := dropped(w, dropCorrupt), metric(w.m.spoolCorrupt); d != 0 || c != 0 {
		t.Errorf("dropped{corrupt} %d, spool_corrupt %d: a tear is not damage", d, c)
	}
	if !lb.Contains("torn tail") {
		t.Error("tear not logged")
	}
}

// TestWALSegmentParse: an open-ended segment's losses: a damaged frame in
// the middle is counted exactly, a clean segment loses nothing.
func TestWALSegmentParse(t *testing.T) {
	dir := t.TempDir()
	var recs []*record.Record
	for i := range 5 {
		recs = append(recs, testRecord("walParse", i, false))
	}
	path, offs := writeSegment(t, dir, 1, recs)
	data, _ := os.ReadFile(path)
	rd, err := parseSpool(data)
	if err != nil || len(rd.recs) != 5 || rd.torn != nil || rd.damaged() || rd.lostCorrupt != 0 {
		t.Fatalf("clean segment: %d records, torn %v, damage %v, lost %d, %v", len(rd.recs), rd.torn, rd.damage, rd.lostCorrupt, err)
	}
	data[offs[2]+frameHeaderV2+3] ^= 0xff
	rd, err = parseSpool(data)
	if err != nil || len(rd.recs) != 4 || rd.torn != nil || !rd.damaged() || rd.lostCorrupt != 1 || !rd.exact {
		t.Errorf("damaged frame 2: %d records, torn %v, damage %v, lost %d exact %v, %v", len(rd.recs), rd.torn, rd.damage, rd.lostCorrupt, rd.exact, err)
	}
}

// TestWALUnwritable: a log that cannot be written does not stop calls:
// records are delivered from memory, the failure is counted and logged;
// once the disk is usable again a new segment is tried and records are
// logged again.
func TestWALUnwritable(t *testing.T) {
	old := walRetry
	walRetry = 20 * time.Millisecond
	t.Cleanup(func() { walRetry = old })
	dir := t.TempDir()
	blocker := filepath.Join(dir, walDirName)
	if err := os.WriteFile(blocker, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fakeSender{}
	w, lb := newFakeWriter(t, f, Options{SpoolDir: dir})
	for i := range 50 {
		w.Write(testRecord("nowal", i, false))
	}
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if f.count() != 50 {
		t.Errorf("%d delivered, want 50", f.count())
	}
	if e, u := metric(w.m.walErrors), metric(w.m.walUnlogged); e == 0 || u != 50 {
		t.Errorf("wal errors %d, unlogged rows %d; want >0 and 50", e, u)
	}
	if !lb.Contains("WRITE-AHEAD LOG FAILED") {
		t.Error("failure not logged")
	}

	// The disk comes back: the log makes its directory again.
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	i := 50
	testenv.WaitFor(t, 10*time.Second, "records logged again", func() bool {
		before := metric(w.m.walUnlogged)
		w.Write(testRecord("nowal", i, false))
		i++
		return metric(w.m.walUnlogged) == before
	})
	if err := w.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if f.count() != i {
		t.Errorf("%d delivered, want %d", f.count(), i)
	}
}

// TestWALReplayKeepsIDs: a record without a usable id gets one before it is
// logged, so the row inserted from memory and the one replayed from the
// log are the same row (they collapse under FINAL).
func TestWALReplayKeepsIDs(t *testing.T) {
	dir := t.TempDir()
	f := &fakeSender{}
	w, _ := newFakeWriter(t, f, Options{SpoolDir: dir})
	noID := testRecord("ids", 1, false)
	noID.RequestID = ""
	noID.CreatedAt = time.Time{}
	w.Write(noID)
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	// The segment still holds the record (it retires asynchronously or
	// with the next rotation): read it back as a replay would.
	segs, _ := filepath.Glob(filepath.Join(dir, walDirName, "*"+walExt))
	var logged []*record.Record
	for _, s := range segs {
		if rd, err := readSpoolFile(s); err == nil {
			logged = append(logged, rd.recs...)
		}
	}
	f.mu.Lock()
	inserted := f.rows
	f.mu.Unlock()
	if len(logged) != 1 || len(inserted) != 1 {
		t.Fatalf("%d logged, %d inserted", len(logged), len(inserted))
	}
	if logged[0].RequestID != inserted[0].RequestID || !logged[0].CreatedAt.Equal(inserted[0].CreatedAt) {
		t.Errorf("logged %s %v, inserted %s %v: a replay would add a second row",
			logged[0].RequestID, logged[0].CreatedAt, inserted[0].RequestID, inserted[0].CreatedAt)
	}
}
