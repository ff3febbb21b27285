package chstore

// Tests that kill and restart ClickHouse use a private server (the shared
// one serves every package at once). One server serves the subtests.

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

func TestClickHouseRestart(t *testing.T) {
	start := time.Now()
	s := testenv.StartClickHouse(t)
	t.Logf("private clickhouse up in %v at %s (pid %d)", time.Since(start).Round(time.Millisecond), s.Addr(), s.PID())
	// The data is throw-away: SIGKILL at the end instead of the graceful
	// stop (several seconds on 18.16). The testenv clean-up then has
	// nothing left to stop.
	t.Cleanup(func() {
		if s.Running() {
			s.Kill()
		}
	})

	t.Run("KilledMidBurst", func(t *testing.T) { killedMidBurst(t, s) })
	t.Run("WriterClosedWhileDown", func(t *testing.T) { closedWhileDown(t, s) })
	t.Run("HungServer", func(t *testing.T) { hungServer(t, s) })
}

// killedMidBurst: 20,000 records from 8 goroutines; ClickHouse is SIGKILLed
// after ~30% and restarted after ~65%; Close; every row exactly once.
func killedMidBurst(t *testing.T, s *testenv.ClickHouseServer) {
	url, db, _ := testDB(t, s.URL())
	w, _ := openWriter(t, Options{URL: url, BatchSize: 500, FlushInterval: 50 * time.Millisecond})

	const goroutines, perG = 8, 2500
	const total = goroutines * perG
	var written atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				w.Write(testRecord("burst", g*perG+i, i%4 == 0))
				written.Add(1)
				if i%10 == 0 {
					time.Sleep(2 * time.Millisecond) // spread the burst over a second or two
				}
			}
		})
	}
	testenv.WaitFor(t, 60*time.Second, "30% written", func() bool { return written.Load() >= total*3/10 })
	s.Kill()
	killedAt := written.Load()
	// The writers go on meanwhile.
	testenv.WaitFor(t, 60*time.Second, "65% written", func() bool { return written.Load() >= total*65/100 })
	t0 := time.Now()
	s.Start()
	startTook := time.Since(t0)
	wg.Wait()
	t.Logf("killed at %d records, restarted (in %v); all %d written", killedAt, startTook.Round(time.Millisecond), total)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t0 = time.Now()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %v", time.Since(t0).Round(time.Millisecond))

	conn := chConn(t, s.Addr())
	final, distinct, raw := counts(t, conn, db, "")
	t.Logf("rows: %d with FINAL, %d distinct ids, %d before merging; metrics: written %d, spooled %d, replayed %d, insert errors %d",
		final, distinct, raw, metric(w.m.written), metric(w.m.spooled), metric(w.m.replayed), metric(w.m.insertErrors))
	if final != total || distinct != total {
		t.Errorf("rows %d (distinct %d), want %d exactly once", final, distinct, total)
	}
	if metric(w.m.spooled) == 0 {
		t.Error("nothing was spooled: the outage did not hit the writer")
	}
	for _, r := range []string{dropSpoolFull, dropQueueFull, dropClosed, dropSpoolError} {
		if d := dropped(w, r); d != 0 {
			t.Errorf("%d dropped (%s)", d, r)
		}
	}
	if left, _ := scanSpoolDir(w.o.SpoolDir); len(left) != 0 {
		t.Errorf("%d spool files left after Close with ClickHouse up", len(left))
	}
}

// closedWhileDown: the writer is closed while ClickHouse is down; a new
// writer (a restarted processor) on the same spool delivers every row once.
func closedWhileDown(t *testing.T, s *testenv.ClickHouseServer) {
	url, db, _ := testDB(t, s.URL())
	dir := t.TempDir()
	s.Kill()
	w, _ := openWriter(t, Options{URL: url, SpoolDir: dir, BatchSize: 200})
	const n = 3000
	for i := range n {
		w.Write(testRecord("down", i, i%2 == 0))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close with ClickHouse down took %v", time.Since(t0).Round(time.Millisecond))
	if got, _, _ := spoolRecords(t, dir); got != n {
		t.Fatalf("spool holds %d records, want %d", got, n)
	}

	s.Start()
	w2, _ := openWriter(t, Options{URL: url, SpoolDir: dir})
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	conn := chConn(t, s.Addr())
	if final, distinct, _ := counts(t, conn, db, ""); final != n || distinct != n {
		t.Errorf("rows %d (distinct %d), want %d", final, distinct, n)
	}
	if metric(w2.m.replayed) != n {
		t.Errorf("replayed %d", metric(w2.m.replayed))
	}
}

// hungServer: ClickHouse stops answering (SIGSTOP) with an insert in
// flight. Flush and Close are bounded by their contexts and spool; the
// insert the server may still commit after it resumes is a duplicate of a
// spooled batch, which the ReplacingMergeTree collapses.
func hungServer(t *testing.T, s *testenv.ClickHouseServer) {
	url, db, _ := testDB(t, s.URL())
	dir := t.TempDir()
	w, _ := openWriter(t, Options{URL: url, SpoolDir: dir, BatchSize: 250})
	for i := range 1000 {
		w.Write(testRecord("hung", i, true))
	}
	if err := w.Flush(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	s.Pause()
	resumed := false
	defer func() {
		if !resumed {
			s.Resume()
		}
	}()
	for i := 1000; i < 2000; i++ {
		w.Write(testRecord("hung", i, true))
	}
	t0 := time.Now()
	if err := w.Flush(ctxT(t, time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctxT(t, time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("Flush+Close against a hung server took %v", d)
	}
	spooled, _, _ := spoolRecords(t, dir)
	t.Logf("hung server: Flush+Close took %v; %d records spooled", time.Since(t0).Round(time.Millisecond), spooled)
	if spooled != 1000 {
		t.Errorf("spool holds %d records, want the 1000 written while hung", spooled)
	}
	s.Resume()
	resumed = true
	w2, _ := openWriter(t, Options{URL: url, SpoolDir: dir})
	if err := w2.Close(ctxT(t, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	conn := chConn(t, s.Addr())
	final, distinct, raw := counts(t, conn, db, "")
	t.Logf("rows: %d with FINAL, %d distinct, %d before merging", final, distinct, raw)
	if final != 2000 || distinct != 2000 {
		t.Errorf("rows %d (distinct %d), want 2000", final, distinct)
	}
}
