package chstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
)

// userErasures erases the records of some users; fail makes Sync fail.
type userErasures struct {
	mu    sync.Mutex
	users map[string]bool
	fail  bool
	syncs int
}

func (e *userErasures) Sync(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncs++
	if e.fail {
		return errors.New("fake: list unreadable")
	}
	return nil
}

func (e *userErasures) Erased(r *record.Record) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.users[r.UserID]
}

func (e *userErasures) set(users ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.users = map[string]bool{}
	for _, u := range users {
		e.users[u] = true
	}
}

// TestWriterDropsErasedRecords: records of an erased user are dropped at
// insert and at replay of the spool; the others go in.
func TestWriterDropsErasedRecords(t *testing.T) {
	f := &fakeSender{down: true}
	er := &userErasures{}
	w, _ := newFakeWriter(t, f, Options{BatchSize: 17, Erasures: er})
	for i := range 34 { // user-0 … user-16, twice
		w.Write(testRecord("er", i, false))
	}
	testenv.WaitFor(t, 10*time.Second, "34 spooled rows", func() bool {
		n, _, _ := spoolRecords(t, w.o.SpoolDir)
		return n == 34
	})
	// Erased while spooled: the replay drops them.
	er.set("user-3")
	f.setDown(false)
	testenv.WaitFor(t, 20*time.Second, "replay", func() bool { n, _ := w.spool.stats(); return n == 0 && f.count() == 32 })
	// From memory too.
	er.set("user-5")
	for i := range 17 {
		w.Write(testRecord("er2", i, false))
	}
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.rows) != 48 {
		t.Errorf("%d rows inserted, want 48", len(f.rows))
	}
	for _, r := range f.rows {
		if r.UserID == "user-3" && r.Tenant == "tenant-er" || r.UserID == "user-5" && r.Tenant == "tenant-er2" {
			t.Errorf("erased record %s of %s inserted", r.RequestID, r.UserID)
		}
	}
}

// TestWriterErasureListUnreadable: while the list cannot be read, nothing
// is inserted (the records wait in the spool); once it can, they go in.
func TestWriterErasureListUnreadable(t *testing.T) {
	f := &fakeSender{}
	er := &userErasures{fail: true}
	w, _ := newFakeWriter(t, f, Options{BatchSize: 10, Erasures: er})
	for i := range 10 {
		w.Write(testRecord("unr", i, false))
	}
	testenv.WaitFor(t, 10*time.Second, "10 spooled rows", func() bool {
		n, _, _ := spoolRecords(t, w.o.SpoolDir)
		return n == 10
	})
	if f.count() != 0 {
		t.Fatalf("%d rows inserted without an erasure list", f.count())
	}
	er.mu.Lock()
	er.fail = false
	er.mu.Unlock()
	testenv.WaitFor(t, 30*time.Second, "replay", func() bool { return f.count() == 10 })
}

// lateErasure erases user-3 once the sender holds any row: an erasure
// that arrives while a replay of several inserts is under way.
type lateErasure struct{ f *fakeSender }

func (e lateErasure) Sync(context.Context) error { return nil }
func (e lateErasure) Erased(r *record.Record) bool {
	return r.UserID == "user-3" && e.f.count() > 0
}

// TestWriterErasureCheckedPerChunk: a replay is inserted in chunks, and
// each chunk is checked against the list as it stands then, so an erasure
// that arrives part-way keeps the subject's later records out.
func TestWriterErasureCheckedPerChunk(t *testing.T) {
	// A spool file of 200 records, written with a large batch size while
	// ClickHouse was down.
	dir := t.TempDir()
	const n = 200
	first, _ := newFakeWriter(t, &fakeSender{down: true}, Options{BatchSize: n, SpoolDir: dir})
	for i := range n {
		first.Write(testRecord("chunk", i, false))
	}
	if err := first.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := spoolRecords(t, dir); got != n {
		t.Fatalf("%d records spooled, want %d", got, n)
	}
	// Replayed by a writer with a smaller one: several inserts.
	f := &fakeSender{}
	w, _ := newFakeWriter(t, f, Options{BatchSize: 10, SpoolDir: dir, Erasures: lateErasure{f}})
	testenv.WaitFor(t, 20*time.Second, "replay", func() bool { s, _ := w.spool.stats(); return s == 0 })
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.batches) < 2 {
		t.Fatalf("the replay was %d inserts, want several", len(f.batches))
	}
	var late int
	for i, r := range f.rows {
		if r.UserID == "user-3" && i >= len(f.batches[0]) {
			late++
		}
	}
	if late != 0 {
		t.Errorf("%d records of user-3 inserted after its erasure arrived", late)
	}
}

// TestWriterErasureListStaleButRecent: once the list has been read, a
// failing read does not stop the inserts: they go on with the last list
// read (still dropping what it erases) while it is recent.
func TestWriterErasureListStaleButRecent(t *testing.T) {
	f := &fakeSender{}
	er := &userErasures{}
	er.set("user-3")
	w, _ := newFakeWriter(t, f, Options{BatchSize: 17, Erasures: er})
	w.Write(testRecord("fresh", 0, false))
	testenv.WaitFor(t, 10*time.Second, "first insert", func() bool { return f.count() == 1 })
	er.mu.Lock()
	er.fail = true
	er.mu.Unlock()
	w.erasure.mu.Lock() // the last good read a minute ago: stale, recent
	w.erasure.last = time.Now().Add(-time.Minute)
	w.erasure.mu.Unlock()
	for i := 1; i < 17; i++ {
		w.Write(testRecord("fresh", i, false))
	}
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the other inserts", func() bool { return f.count() == 16 })
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rows {
		if r.UserID == "user-3" {
			t.Errorf("erased record %s inserted", r.RequestID)
		}
	}
}
