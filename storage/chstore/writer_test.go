package chstore

// Unit tests of the writer's queue, spool and retry logic against a fake
// ClickHouse (no server needed).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
)

// closeAtEnd closes w when the test ends, giving it 10 s to flush.
func closeAtEnd(t testing.TB, w *Writer) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.Close(ctx)
	})
}

func newFakeWriter(t *testing.T, f *fakeSender, o Options) (*Writer, *testenv.LogBuffer) {
	t.Helper()
	log, lb := testLogger(t)
	o.Logger = log
	if o.SpoolDir == "" {
		o.SpoolDir = t.TempDir()
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 20 * time.Millisecond
	}
	o.Registerer = prometheus.NewRegistry()
	w, err := newWriter(o, f)
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, w)
	return w, lb
}

func metric(c prometheus.Collector) int { return int(testutil.ToFloat64(c)) }

func dropped(w *Writer, reason string) int { return metric(w.m.dropped.WithLabelValues(reason)) }

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestWriterFlushDelivers(t *testing.T) {
	f := &fakeSender{}
	w, _ := newFakeWriter(t, f, Options{BatchSize: 100, FlushInterval: time.Hour})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 262 {
				w.Write(testRecord(fmt.Sprint("g", g), i, false))
			}
		})
	}
	wg.Wait()
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Flush returned: everything is in "ClickHouse" (the fake is up).
	if n := f.count(); n != 4*262 {
		t.Fatalf("fake has %d rows, want %d", n, 4*262)
	}
	if q, wr := metric(w.m.queued), metric(w.m.written); q != 4*262 || wr != 4*262 {
		t.Errorf("queued %d written %d", q, wr)
	}
	if ids := f.ids(); len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
		t.Error("duplicate rows")
	}
}

func TestWriterIntervalFlush(t *testing.T) {
	f := &fakeSender{}
	w, _ := newFakeWriter(t, f, Options{BatchSize: 1000, FlushInterval: 30 * time.Millisecond})
	w.Write(testRecord("iv", 1, false))
	testenv.WaitFor(t, 5*time.Second, "a partial batch sent by the interval", func() bool { return f.count() == 1 })
}

// TestWriterReplaysInOrder: files a previous run left are replayed oldest
// first, before new records.
func TestWriterReplaysInOrder(t *testing.T) {
	dir := t.TempDir()
	sp, err := openSpool(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{30, 10, 20} {
		if _, err := sp.write(seq, []*record.Record{testRecord("order", int(seq), false)}); err != nil {
			t.Fatal(err)
		}
	}
	sp.close()

	f := &fakeSender{}
	w, _ := newFakeWriter(t, f, Options{SpoolDir: dir, BatchSize: 1})
	if w.nextSeq != 31 {
		t.Errorf("new batches start at seq %d, want 31", w.nextSeq)
	}
	w.Write(testRecord("order", 40, false))
	testenv.WaitFor(t, 5*time.Second, "4 rows", func() bool { return f.count() == 4 })
	want := []string{testID("order", 10), testID("order", 20), testID("order", 30), testID("order", 40)}
	if got := f.ids(); !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if metric(w.m.replayed) != 3 || metric(w.m.written) != 1 {
		t.Errorf("replayed %d written %d", metric(w.m.replayed), metric(w.m.written))
	}
}

func TestWriterOutageSpoolsThenReplays(t *testing.T) {
	f := &fakeSender{down: true}
	w, lb := newFakeWriter(t, f, Options{BatchSize: 50, QueueSize: 100000})
	for i := range 500 {
		w.Write(testRecord("out", i, false))
	}
	// Down: the batches go to disk, not memory.
	// The spool write lands before the batch's rows leave the memory
	// count: wait for both.
	testenv.WaitFor(t, 10*time.Second, "500 spooled rows, none in memory", func() bool {
		n, _, _ := spoolRecords(t, w.o.SpoolDir)
		w.mu.Lock()
		inMem := w.memRows
		w.mu.Unlock()
		return n == 500 && inMem == 0
	})
	if !lb.Contains("ClickHouse unavailable") {
		t.Error("outage not logged")
	}
	f.setDown(false)
	testenv.WaitFor(t, 20*time.Second, "replay", func() bool { return f.count() == 500 })
	testenv.WaitFor(t, 5*time.Second, "empty spool", func() bool { n, _ := w.spool.stats(); return n == 0 })
	if s, r := metric(w.m.spooled), metric(w.m.replayed); s != 500 || r != 500 {
		t.Errorf("spooled %d replayed %d", s, r)
	}
	if !lb.Contains("ClickHouse is back") {
		t.Error("recovery not logged")
	}
}

func TestWriterCloseWhileDownThenReopen(t *testing.T) {
	dir := t.TempDir()
	f := &fakeSender{down: true}
	w, _ := newFakeWriter(t, f, Options{SpoolDir: dir, BatchSize: 64})
	for i := range 300 {
		w.Write(testRecord("reopen", i, true))
	}
	start := time.Now()
	if err := w.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close while down took %v", d)
	}
	if n, _, _ := spoolRecords(t, dir); n != 300 {
		t.Fatalf("spool holds %d records, want 300", n)
	}
	f2 := &fakeSender{}
	w2, _ := newFakeWriter(t, f2, Options{SpoolDir: dir})
	if err := w2.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	got := f2.ids()
	slices.Sort(got)
	var want []string
	for i := range 300 {
		want = append(want, testID("reopen", i))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("replayed %d rows, want the 300 written", len(got))
	}
	if n, _, _ := spoolRecords(t, dir); n != 0 {
		t.Errorf("%d records left in the spool", n)
	}
}

func TestWriterSpoolCapDrops(t *testing.T) {
	f := &fakeSender{down: true}
	w, lb := newFakeWriter(t, f, Options{BatchSize: 20, SpoolMaxBytes: 16 << 10})
	for i := range 1000 {
		w.Write(testRecord("cap", i, false))
	}
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	spooled, drops := metric(w.m.spooled), dropped(w, dropSpoolFull)
	if drops == 0 || spooled+drops != 1000 {
		t.Errorf("spooled %d + dropped %d, want 1000 with drops", spooled, drops)
	}
	if _, bytes := w.spool.stats(); bytes > 16<<10 {
		t.Errorf("spool %d bytes over the cap", bytes)
	}
	if n, _, _ := spoolRecords(t, w.o.SpoolDir); n != spooled {
		t.Errorf("spool holds %d records, metrics say %d", n, spooled)
	}
	if !lb.Contains("RECORDS DROPPED: spool full") {
		t.Error("drop not logged loudly")
	}
}

// TestWriterSlowClickHouseSpills: up but slow, memory stays near QueueSize
// and the overflow goes through the spool; nothing is lost or doubled.
func TestWriterSlowClickHouseSpills(t *testing.T) {
	const queue = 1000
	f := &fakeSender{delay: 200 * time.Millisecond}
	w, _ := newFakeWriter(t, f, Options{BatchSize: 100, QueueSize: queue})
	peak := 0
	for i := range 4000 {
		w.Write(testRecord("slow", i, false))
		if i%10 == 0 {
			// A fast burst, not an instant one: the fake takes at most
			// 2 x 400 rows per 200 ms, the burst comes at up to 10,000 rows/s.
			time.Sleep(time.Millisecond)
			w.mu.Lock()
			peak = max(peak, w.memRows)
			w.mu.Unlock()
		}
	}
	if err := w.Flush(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := dropped(w, dropQueueFull); d != 0 {
		t.Fatalf("%d dropped: the spool did not keep up", d)
	}
	testenv.WaitFor(t, 30*time.Second, "all rows", func() bool { return f.count() == 4000 })
	if metric(w.m.spooled) == 0 {
		t.Error("nothing spilled although ClickHouse was slower than the writes")
	}
	if peak > 2*queue {
		t.Errorf("memory peaked at %d rows, QueueSize %d", peak, queue)
	}
	if ids := f.ids(); len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 4000 {
		t.Error("rows lost or doubled")
	}
	t.Logf("peak %d rows in memory; %d spooled", peak, metric(w.m.spooled))
}

// TestWriterFlushDeadlineSpools: ClickHouse hangs; Flush's deadline puts
// the in-flight batch and the rest in the spool.
func TestWriterFlushDeadlineSpools(t *testing.T) {
	f := &fakeSender{delay: time.Hour}
	w, _ := newFakeWriter(t, f, Options{BatchSize: 10})
	for i := range 95 {
		w.Write(testRecord("hang", i, false))
	}
	start := time.Now()
	if err := w.Flush(ctxT(t, 300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Flush took %v", d)
	}
	if n, _, _ := spoolRecords(t, w.o.SpoolDir); n != 95 {
		t.Errorf("spool holds %d records after Flush, want 95", n)
	}
	// Close gives up on the hung server when its context ends; the file
	// being replayed stays in the spool.
	start = time.Now()
	if err := w.Close(ctxT(t, 300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	if n, _, _ := spoolRecords(t, w.o.SpoolDir); n != 95 {
		t.Errorf("spool holds %d records after Close, want 95", n)
	}
}

func TestWriteAfterClose(t *testing.T) {
	w, lb := newFakeWriter(t, &fakeSender{}, Options{})
	w.Close(ctxT(t, 5*time.Second))
	w.Write(testRecord("late", 1, false))
	if dropped(w, dropClosed) != 1 || !lb.Contains("Write after Close") {
		t.Error("write after close not counted or logged")
	}
}

func TestNormalize(t *testing.T) {
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	r := &record.Record{}
	normalize(r, now)
	id, err := uuid.Parse(r.RequestID)
	if err != nil || id.Version() != 7 || !r.CreatedAt.Equal(now) {
		t.Errorf("empty record: id %q (%v) created %v", r.RequestID, err, r.CreatedAt)
	}
	a := &record.Record{RequestID: "not-a-uuid", CreatedAt: now.In(time.FixedZone("X", 3600))}
	b := &record.Record{RequestID: "not-a-uuid"}
	normalize(a, now)
	normalize(b, now)
	if a.RequestID != b.RequestID || a.RequestID == "not-a-uuid" {
		t.Errorf("non-UUID ids: %q %q", a.RequestID, b.RequestID)
	}
	if a.CreatedAt.Location() != time.UTC {
		t.Error("created_at not UTC")
	}
	keep := testID("n", 1)
	c := &record.Record{RequestID: keep, CreatedAt: now}
	normalize(c, now.Add(time.Hour))
	if c.RequestID != keep || !c.CreatedAt.Equal(now) {
		t.Error("valid record changed")
	}
}

// TestWriterSpoolUnwritable: when the spool cannot be written (disk full,
// directory gone) records stay in memory, Flush says so, and nothing is
// lost once the disk is back.
func TestWriterSpoolUnwritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	f := &fakeSender{down: true}
	w, lb := newFakeWriter(t, f, Options{SpoolDir: dir, BatchSize: 30})
	// The log's loop may be making its next segment meanwhile.
	testenv.WaitFor(t, 10*time.Second, "spool dir removed", func() bool { return os.RemoveAll(dir) == nil })
	for i := range 100 {
		w.Write(testRecord("nodisk", i, false))
	}
	if err := w.Flush(ctxT(t, 300*time.Millisecond)); err == nil {
		t.Fatal("Flush reported success without ClickHouse or spool")
	}
	w.mu.Lock()
	inMem := w.memRows
	w.mu.Unlock()
	if inMem != 100 || !lb.Contains("cannot write the spool") {
		t.Errorf("%d rows in memory (want 100); logged: %v", inMem, lb.Contains("cannot write the spool"))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := spoolRecords(t, dir); n != 100 {
		t.Errorf("spool holds %d records after the disk came back, want 100", n)
	}
}

// TestWriterAbandonsStuckInsert: an insert that ignores cancellation (the
// driver blocked in a read on a hung server) holds neither Flush nor Close
// much past their deadlines; its records are spooled.
func TestWriterAbandonsStuckInsert(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	f := &fakeSender{stuck: stuck}
	w, lb := newFakeWriter(t, f, Options{BatchSize: 50})
	for i := range 120 {
		w.Write(testRecord("stuck", i, false))
	}
	start := time.Now()
	if err := w.Flush(ctxT(t, 200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Flush took %v", d)
	}
	if n, _, _ := spoolRecords(t, w.o.SpoolDir); n != 120 {
		t.Errorf("spool holds %d records after Flush, want 120", n)
	}
	for i := 120; i < 200; i++ {
		w.Write(testRecord("stuck", i, false))
	}
	start = time.Now()
	if err := w.Close(ctxT(t, 200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	if n, _, _ := spoolRecords(t, w.o.SpoolDir); n != 200 {
		t.Errorf("spool holds %d records after Close, want 200", n)
	}
	if !lb.Contains("gave up waiting for a stuck insert") {
		t.Error("abandonment not logged")
	}
}
