package chstore

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/record"
)

// discardSender is a ClickHouse that accepts everything at once.
type discardSender struct{}

func (discardSender) insert(context.Context, []*record.Record) error { return nil }
func (discardSender) ping(context.Context) error                     { return nil }

func benchRecords(n int, bodies bool) []*record.Record {
	recs := make([]*record.Record, n)
	for i := range recs {
		recs[i] = testRecord("bench", i, bodies)
	}
	return recs
}

// benchWriter is a writer whose batches go to a ClickHouse stand-in that
// accepts them at once, closed when the run ends.
func benchWriter(b *testing.B) *Writer {
	w, err := newWriter(Options{SpoolDir: b.TempDir(), Registerer: prometheus.NewRegistry()}, discardSender{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close(context.Background()) })
	return w
}

// BenchmarkWrite is the request-path cost of logging a record: Write with
// the writer's goroutines running (batches go to a ClickHouse stand-in
// that accepts them at once).
func BenchmarkWrite(b *testing.B) {
	w := benchWriter(b)
	ring := benchRecords(1<<16, false)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.Write(ring[i&(len(ring)-1)])
	}
}

// BenchmarkWriteParallel: the same from every P at once (mutex contention).
func BenchmarkWriteParallel(b *testing.B) {
	w := benchWriter(b)
	ring := benchRecords(1<<16, false)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			w.Write(ring[i&(len(ring)-1)])
			i++
		}
	})
}

// BenchmarkIngest is the sustained rate into the real ClickHouse of one
// writer with default options (5,000-row batches) and realistic bodies
// (~1.5 KB request, ~0.6 KB response): b.N rows written, then Flush; the
// rows/s metric is the figure. Run with e.g. -benchtime=200000x.
func BenchmarkIngest(b *testing.B) {
	url, db, conn := testDB(b, sharedURL(b))
	recs := benchRecords(b.N, true)
	log, _ := testLogger(b)
	w, err := Open(context.Background(), Options{
		URL:      url + os.Getenv("TOLLGATE_BENCH_CH_PARAMS"), // e.g. ?compress=none
		SpoolDir: b.TempDir(), Logger: log, Registerer: prometheus.NewRegistry(),
		QueueSize: b.N + 1, // measure ClickHouse, not the spool
	})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close(context.Background())
	serverPID := os.Getenv("TOLLGATE_TEST_CLICKHOUSE_PID") // exported by scripts/testenv.sh
	client0, server0 := cpuTime("self"), cpuTime(serverPID)
	b.ResetTimer()
	start := time.Now()
	for _, r := range recs {
		w.Write(r)
	}
	if err := w.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rows/s")
	// On a shared machine the wall-clock rate drifts with the neighbours'
	// load; CPU time per row (this process and the ClickHouse server,
	// which also merges in the background) is the steadier figure.
	if c := cpuTime("self"); c > 0 {
		b.ReportMetric(float64((c-client0).Microseconds())/float64(b.N), "client-cpu-µs/row")
	}
	if s := cpuTime(serverPID); s > 0 {
		b.ReportMetric(float64((s-server0).Microseconds())/float64(b.N), "server-cpu-µs/row")
	}
	if s := metric(w.m.spooled); s != 0 {
		b.Errorf("%d rows went through the spool", s)
	}
	if final, _, _ := counts(b, conn, db, ""); final != uint64(b.N) {
		b.Errorf("%d rows in ClickHouse, want %d", final, b.N)
	}
}

// BenchmarkSpoolWrite is the spool's rate (encode, write, fsync) for
// 5,000-row batches with realistic bodies: how fast an outage is absorbed.
func BenchmarkSpoolWrite(b *testing.B) {
	sp, err := openSpool(b.TempDir(), 1<<40)
	if err != nil {
		b.Fatal(err)
	}
	defer sp.close()
	batch := benchRecords(5000, true)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := sp.write(uint64(i+1), batch); err != nil {
			b.Fatal(err)
		}
		if f, ok := sp.head(); ok {
			sp.remove(f)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/time.Since(start).Seconds(), "rows/s")
}

func ExampleWriter() {
	w, err := Open(context.Background(), Options{
		URL:      "clickhouse://127.0.0.1:9000/tollgate",
		SpoolDir: "data/spool", // one directory per process, on a persistent volume
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	w.Write(&record.Record{Tenant: "acme", Model: "gpt-4o-mini", Status: 200})
	_ = w.Close(context.Background())
}

// cpuTime is the user+system CPU time of a process from /proc (Linux), or
// 0 when unknown.
func cpuTime(pid string) time.Duration {
	if pid == "" {
		return 0
	}
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields overall, in clock ticks (100 per second).
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// BenchmarkWALWrite is Write's request-path cost with the write-ahead log
// (group commit to the page cache, fsync every second) and without it,
// from 64 goroutines (calls in flight) with ~2 KB bodies.
func BenchmarkWALWrite(b *testing.B) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"NoWAL", Options{NoWAL: true}},
		{"WAL", Options{}},
		{"WALFsyncEveryWrite", Options{WALSyncEveryWrite: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			o := tc.o
			o.SpoolDir, o.Registerer = b.TempDir(), prometheus.NewRegistry()
			w, err := newWriter(o, discardSender{})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close(context.Background())
			ring := benchRecords(1<<12, true)
			b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					w.Write(ring[i&(len(ring)-1)])
					i++
				}
			})
		})
	}
}
