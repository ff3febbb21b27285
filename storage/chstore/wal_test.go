package chstore

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
)

// startWALHelper runs TestHelperProcess in mode "concurrent" and returns
// once it printed that Write returned for all n records.
func startWALHelper(t *testing.T, url, dir string, n int, env ...string) *os.Process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	attr := &os.ProcAttr{
		Env: append(append(os.Environ(), helperEnv+"=concurrent", "HELPER_URL="+url, "HELPER_SPOOL="+dir,
			fmt.Sprintf("HELPER_N=%d", n)), env...),
		Files: []*os.File{nil, wr, os.Stderr},
	}
	p, err := os.StartProcess(exe, []string{exe, "-test.run=^TestHelperProcess$", "-test.count=1"}, attr)
	wr.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill(); p.Wait() })
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "all written") {
			return p
		}
	}
	t.Fatalf("helper ended before writing everything: %v", sc.Err())
	return nil
}

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
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, db, conn := testDB(t, sharedURL(t))
			dir := t.TempDir()
			const n = 2000
			p := startWALHelper(t, url, dir, n, tc.env...)
			if err := p.Kill(); err != nil { // SIGKILL, by PID
				t.Fatal(err)
			}
			p.Wait()
			before, _, _ := counts(t, conn, db, "")

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

// TestWALSegmentsRetire: the log does not grow while records are delivered,
// nor while ClickHouse is down (they move to the spool and their segments
// go); once everything is delivered only the current segment is left.
func TestWALSegmentsRetire(t *testing.T) {
	old := walSegmentBytes
	walSegmentBytes = 32 << 10
	t.Cleanup(func() { walSegmentBytes = old })
	f := &fakeSender{}
	dir := t.TempDir()
	w, _ := newFakeWriter(t, f, Options{SpoolDir: dir, BatchSize: 100})
	walFiles := func() int {
		es, _ := os.ReadDir(filepath.Join(dir, walDirName))
		return len(es)
	}
	maxFiles := 0
	write := func(tag string, n int) {
		for i := range n {
			w.Write(testRecord(tag, i, true))
			if i%500 == 0 {
				maxFiles = max(maxFiles, walFiles())
			}
		}
	}
	// ~2 KB a record: 3000 records fill about 180 segments of 32 KiB.
	write("up", 3000)
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "delivered segments deleted", func() bool { return walFiles() <= 2 })

	f.setDown(true)
	write("down", 3000)
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil { // spools them
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "spooled segments deleted", func() bool { return walFiles() <= 2 })
	if recs, _, _ := spoolRecords(t, dir); recs != 3000 {
		t.Errorf("spool holds %d records, want 3000", recs)
	}
	// Written faster than batches leave memory, the log holds at most what
	// memory does (QueueSize rows, 100000 here) plus a spare: no bound was
	// hit here, but nothing accumulates either.
	if maxFiles > 200 {
		t.Errorf("up to %d segments during the run", maxFiles)
	}
	f.setDown(false)
	if err := w.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if f.count() != 6000 {
		t.Errorf("%d delivered, want 6000", f.count())
	}
	if _, err := os.Stat(filepath.Join(dir, walDirName)); !os.IsNotExist(err) {
		t.Errorf("wal dir left after a clean close: %v", err)
	}
}

// writeSegment writes a WAL segment of n records as Write would have,
// numbered num, into spool dir's wal/.
func writeSegment(t *testing.T, dir string, num uint64, recs []*record.Record) (path string, offs []int) {
	t.Helper()
	b := appendSpoolHeader(nil, openCount)
	for i, r := range recs {
		offs = append(offs, len(b))
		f := len(b)
		b = appendFrame(b, openCount, r)
		sumFrame(b[f:], uint32(i))
	}
	if err := os.MkdirAll(filepath.Join(dir, walDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, walDirName, walSegmentName(num))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, offs
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
