package chstore

// Tests against the shared ClickHouse of scripts/testenv.sh. Each test
// uses its own database.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

func openWriter(t *testing.T, o Options) (*Writer, *testenv.LogBuffer) {
	t.Helper()
	log, lb := testLogger(t)
	o.Logger = log
	if o.SpoolDir == "" {
		o.SpoolDir = t.TempDir()
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 50 * time.Millisecond
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	w, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, w)
	return w, lb
}

// TestRowsRoundTrip: every value arrives as written.
func TestRowsRoundTrip(t *testing.T) {
	url, db, conn := testDB(t, sharedURL(t))
	w, _ := openWriter(t, Options{URL: url})
	ctx := ctxT(t, 30*time.Second)

	full := fullRecord()
	full.ResponseBody = realisticResp
	timeout := testRecord("rt", 2, false)
	timeout.Status, timeout.Error, timeout.RequestBody, timeout.ResponseBody = record.StatusTimeout, "route timeout", "", ""
	timeout.Properties = nil
	noID := testRecord("rt", 3, false)
	noID.RequestID = ""
	badID := testRecord("rt", 4, false)
	badID.RequestID = "req-42"
	want := []*record.Record{full, timeout, noID, badID}
	for _, r := range want {
		cp := *r
		w.Write(&cp) // the writer owns (and normalizes) its copy
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// created_at keeps milliseconds in the modern variant (DateTime64(3)).
	var createdAtType string
	conn.QueryRow(ctx, "SELECT type FROM system.columns WHERE database = ? AND table = 'requests' AND name = 'created_at'", db).Scan(&createdAtType)
	precision := time.Second
	if strings.HasPrefix(createdAtType, "DateTime64") {
		precision = time.Millisecond
	}

	rows, err := conn.Query(ctx, "SELECT "+strings.Join(chschema.InsertColumnNames(), ", ")+
		" FROM "+db+".requests FINAL ORDER BY latency_ms, tenant")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []*record.Record
	for rows.Next() {
		var (
			id                            uuid.UUID
			keys, vals                    []string
			stream, cacheHit, rateLimited uint8
		)
		g := &record.Record{}
		if err := rows.Scan(&id, &g.CreatedAt, &g.Tenant, &g.UserID, &g.SessionID, &g.SessionPath, &g.SessionName,
			&g.RequestName, &keys, &vals, &g.Provider, &g.Model, &g.ResponseModel, &g.Method, &g.Path, &g.TargetURL,
			&g.Status, &stream, &g.PromptTokens, &g.CompletionTokens, &g.CachedTokens, &g.CacheWriteTokens,
			&g.ReasoningTokens, &g.CostUSD, &g.LatencyMs, &g.TTFTMs, &cacheHit, &g.CacheReferenceID, &rateLimited,
			&g.PromptID, &g.PromptVersion, &g.FallbackIndex,
			&g.Attempts, &g.RetryPolicy, &g.WorkloadNamespace, &g.WorkloadServiceAccount, &g.WorkloadName,
			&g.PolicyRule, &g.PolicyDecision,
			&g.RequestBody, &g.ResponseBody, &g.Error, &g.ModelOverride, &g.Warnings, &g.ProxyKeyID,
			&g.UsageSource, &g.CacheSimilarity); err != nil {
			t.Fatal(err)
		}
		g.RequestID = id.String()
		g.Stream, g.CacheHit, g.RateLimited = stream == 1, cacheHit == 1, rateLimited == 1
		for i := range keys {
			g.Properties = append(g.Properties, record.Property{Key: keys[i], Value: vals[i]})
		}
		g.CreatedAt = g.CreatedAt.UTC()
		got = append(got, g)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d rows, want %d", len(got), len(want))
	}
	byLatency := slices.Clone(want)
	slices.SortStableFunc(byLatency, func(a, b *record.Record) int { return int(a.LatencyMs - b.LatencyMs) })
	for i, exp := range byLatency {
		e := *exp
		g := got[i]
		switch e.RequestID {
		case "":
			if u, err := uuid.Parse(g.RequestID); err != nil || u.Version() != 7 {
				t.Errorf("empty request id stored as %q", g.RequestID)
			}
			e.RequestID = g.RequestID
		case "req-42":
			e.RequestID = requestUUID("req-42").String()
		}
		e.CreatedAt = e.CreatedAt.Truncate(precision)
		if !g.CreatedAt.Equal(e.CreatedAt) {
			t.Errorf("row %d created_at %v, want %v", i, g.CreatedAt, e.CreatedAt)
		}
		g.CreatedAt = e.CreatedAt
		if fmt.Sprintf("%+v", *g) != fmt.Sprintf("%+v", e) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, *g, e)
		}
	}
}

func TestFeedback(t *testing.T) {
	url, db, conn := testDB(t, sharedURL(t))
	w, _ := openWriter(t, Options{URL: url})
	ctx := ctxT(t, 30*time.Second)
	id := testID("fb", 1)
	t0 := time.Date(2025, 11, 25, 10, 0, 0, 0, time.UTC)
	if err := w.InsertFeedback(ctx, Feedback{RequestID: id, Tenant: "acme", Rating: true, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := w.InsertFeedback(ctx, Feedback{RequestID: id, Tenant: "acme", Rating: false, CreatedAt: t0.Add(time.Minute)},
		Feedback{RequestID: testID("fb", 2), Tenant: "acme", Rating: true}); err != nil {
		t.Fatal(err)
	}
	var rating int8
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT rating, count() OVER () FROM "+db+".feedback FINAL WHERE request_id = ?", id).Scan(&rating, &n); err != nil {
		// 18.16 has no window functions: plain query.
		if err := conn.QueryRow(ctx, "SELECT any(rating), count() FROM "+db+".feedback FINAL WHERE request_id = ?", id).Scan(&rating, &n); err != nil {
			t.Fatal(err)
		}
	}
	if rating != 0 || n != 1 {
		t.Errorf("rating %d from %d rows, want the last (0) from 1", rating, n)
	}
	if err := w.InsertFeedback(ctx, Feedback{RequestID: "nope"}); err == nil {
		t.Error("non-UUID request id accepted")
	}
}

// TestTornSpoolReplayed: a writer that could not reach ClickHouse leaves
// a spool; the last file is torn (its last bytes cut, as a crash would);
// a new writer replays everything up to the tear, and says so in the log.
func TestTornSpoolReplayed(t *testing.T) {
	url, db, conn := testDB(t, sharedURL(t))
	dir := t.TempDir()
	down, _ := openWriter(t, Options{URL: deadURL(t, db), SpoolDir: dir, BatchSize: 100})
	for i := range 450 {
		down.Write(testRecord("torn", i, i%3 == 0))
	}
	if err := down.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	files, err := scanSpoolDir(dir)
	if err != nil || len(files) != 5 {
		t.Fatalf("%d spool files (%v), want 5", len(files), err)
	}
	last := files[len(files)-1] // 50 records
	if err := os.Truncate(last.path, last.size-10); err != nil {
		t.Fatal(err)
	}
	w, lb := openWriter(t, Options{URL: url, SpoolDir: dir})
	if err := w.Close(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	final, distinct, _ := counts(t, conn, db, "")
	if final != 449 || distinct != 449 {
		t.Errorf("rows %d (distinct %d), want 449: all but the torn record", final, distinct)
	}
	if !lb.Contains("torn tail") {
		t.Error("tear not logged")
	}
	if got := metric(w.m.dropped.WithLabelValues(dropTorn)); got != 1 {
		t.Errorf("dropped{torn} %v, want 1", got)
	}
	if got := metric(w.m.spoolCorrupt); got != 0 {
		t.Errorf("spool_corrupt %v, want 0: a tear is not damage", got)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 || left[0].Name() != lockName {
		t.Errorf("spool dir not emptied: %v", left)
	}
}

// TestSpoolCapAgainstClickHouse: with a tiny cap the outage drops, counts
// and logs; what was spooled arrives once ClickHouse is reachable.
func TestSpoolCapAgainstClickHouse(t *testing.T) {
	url, db, conn := testDB(t, sharedURL(t))
	dir := t.TempDir()
	down, lb := openWriter(t, Options{URL: deadURL(t, db), SpoolDir: dir, BatchSize: 100, SpoolMaxBytes: 64 << 10})
	for i := range 2000 {
		down.Write(testRecord("cap", i, false))
	}
	if err := down.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	spooled, drops := metric(down.m.spooled), dropped(down, dropSpoolFull)
	if drops == 0 || spooled+drops != 2000 || !lb.Contains("RECORDS DROPPED") {
		t.Fatalf("spooled %d dropped %d", spooled, drops)
	}
	w, _ := openWriter(t, Options{URL: url, SpoolDir: dir})
	if err := w.Close(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if final, distinct, _ := counts(t, conn, db, ""); int(final) != spooled || int(distinct) != spooled {
		t.Errorf("rows %d (distinct %d), want the %d spooled", final, distinct, spooled)
	}
	t.Logf("cap 64 KiB: %d spooled, %d dropped", spooled, drops)
}

// Subprocess: TestProcessorKilled re-executes the test binary with
// TOLLGATE_CHSTORE_HELPER set; the helper plays a processor whose
// ClickHouse is unreachable and is SIGKILLed by the test.
const helperEnv = "TOLLGATE_CHSTORE_HELPER"

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return // not a subprocess
	}
	n := 0
	fmt.Sscan(os.Getenv("HELPER_N"), &n)
	o := Options{
		URL:           os.Getenv("HELPER_URL"),
		SpoolDir:      os.Getenv("HELPER_SPOOL"),
		BatchSize:     250,
		FlushInterval: 20 * time.Millisecond,
	}
	if d, err := time.ParseDuration(os.Getenv("HELPER_FLUSH")); err == nil {
		o.FlushInterval = d
	}
	fmt.Sscan(os.Getenv("HELPER_BATCH"), &o.BatchSize)
	o.WALSyncEveryWrite = os.Getenv("HELPER_SYNC") == "1"
	fmt.Sscan(os.Getenv("HELPER_WAL_SEGMENT"), &walSegmentBytes) // small: the log rotates often
	// A loaded test machine's slow fsync must not count as a stalled disk
	// here (that is TestWALStalledDiskDoesNotStopCalls).
	walAppendWait = time.Minute
	w, err := Open(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	if mode == "concurrent" {
		// Eight callers at once, as the processor's streams are: the
		// group commit carries several records per write.
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := g; i < n; i += 8 {
					w.Write(testRecord("killed", i, i%2 == 0))
				}
			})
		}
		wg.Wait()
	}
	for i := 0; mode == "endless" || mode == "count" && i < n; i++ {
		w.Write(testRecord("killed", i, true))
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	fmt.Println("helper: all written")
	time.Sleep(time.Minute) // SIGKILL arrives long before
	os.Exit(3)
}

// startHelper runs TestHelperProcess in mode with env added; the channel
// is closed once the helper printed that Write returned for every record
// (its other output goes to stderr).
func startHelper(t *testing.T, mode, url, dir string, n int, env ...string) (*os.Process, <-chan struct{}) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	attr := &os.ProcAttr{
		Env: append(append(os.Environ(), helperEnv+"="+mode, "HELPER_URL="+url, "HELPER_SPOOL="+dir,
			fmt.Sprintf("HELPER_N=%d", n)), env...),
		Files: []*os.File{nil, wr, os.Stderr},
	}
	p, err := os.StartProcess(exe, []string{exe, "-test.run=^TestHelperProcess$", "-test.count=1"}, attr)
	wr.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill(); p.Wait() })
	written := make(chan struct{})
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "all written") {
				close(written)
			} else {
				fmt.Fprintln(os.Stderr, sc.Text())
			}
		}
	}()
	return p, written
}

// TestProcessorKilledAfterSpooling: a processor spools while ClickHouse is
// down and is SIGKILLed; a new writer on the same spool (the restarted
// processor) delivers every row exactly once.
func TestProcessorKilledAfterSpooling(t *testing.T) {
	url, db, conn := testDB(t, sharedURL(t))
	dir := t.TempDir()
	const n = 3000
	p, _ := startHelper(t, "count", deadURL(t, db), dir, n)
	testenv.WaitFor(t, 60*time.Second, "the helper's spool to hold every record", func() bool {
		got, _, _ := spoolRecords(t, dir)
		return got == n
	})
	if err := p.Kill(); err != nil { // SIGKILL, by PID
		t.Fatal(err)
	}
	p.Wait()

	w, _ := openWriter(t, Options{URL: url, SpoolDir: dir})
	if err := w.Close(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	final, distinct, raw := counts(t, conn, db, "")
	if final != n || distinct != n {
		t.Errorf("rows %d (distinct %d, raw %d), want %d", final, distinct, raw, n)
	}
	var bad uint64
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "'" + testID("killed", i) + "'"
	}
	conn.QueryRow(ctxT(t, 10*time.Second), "SELECT count() FROM "+db+".requests WHERE request_id NOT IN ("+
		strings.Join(ids, ",")+")").Scan(&bad)
	if bad != 0 {
		t.Errorf("%d rows with unexpected ids", bad)
	}
}

// TestProcessorKilledWhileSpooling: SIGKILL at an arbitrary moment of
// spooling leaves only complete or detectably torn spool files, and every
// record the helper wrote arrives exactly once: the spooled ones and, from
// the write-ahead log, those still in memory.
func TestProcessorKilledWhileSpooling(t *testing.T) {
	url, db, conn := testDB(t, sharedURL(t))
	dir := t.TempDir()
	p, _ := startHelper(t, "endless", deadURL(t, db), dir, 0)
	testenv.WaitFor(t, 60*time.Second, "a few spool files", func() bool {
		_, files, _ := spoolRecords(t, dir)
		return files >= 4
	})
	p.Kill()
	p.Wait()
	files, _ := scanSpoolDir(dir)
	complete, torn := 0, 0
	for _, f := range files {
		rd, err := readSpoolFile(f.path)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f.path), err)
		}
		if rd.damaged() {
			t.Errorf("%s: damaged %+v, want at most a torn tail", filepath.Base(f.path), rd.damage)
		}
		complete += len(rd.recs)
		if rd.torn != nil {
			torn++
		}
	}
	t.Logf("after SIGKILL: %d files, %d complete records, %d torn files", len(files), complete, torn)
	w, _ := openWriter(t, Options{URL: url, SpoolDir: dir})
	if err := w.Close(ctxT(t, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	// The helper writes killed-0, killed-1, …: every one up to the last
	// Write it made must be there, once.
	final, distinct, _ := counts(t, conn, db, "")
	t.Logf("%d rows: %d from the spool, the rest from the write-ahead log", final, complete)
	if int(final) < complete || distinct != final {
		t.Fatalf("rows %d (distinct %d), want at least the %d spooled, once each", final, distinct, complete)
	}
	ids := make([]string, final)
	for i := range ids {
		ids[i] = "'" + testID("killed", i) + "'"
	}
	var in uint64
	conn.QueryRow(ctxT(t, 10*time.Second), "SELECT count() FROM "+db+".requests FINAL WHERE request_id IN ("+
		strings.Join(ids, ",")+")").Scan(&in)
	if in != final {
		t.Errorf("%d of the %d rows are the helper's first %d records: some in between are missing", in, final, final)
	}
}
