package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

// The wal scenario: what the local record log costs the request path. A
// call's record is written to a local file (the ClickHouse writer's
// write-ahead log, or the embedded JSON-lines file) before the call is
// answered, by group commit; this measures Write's latency as the
// processor's concurrent streams see it, and its heap per call.
const scenarioWAL = "wal"

func init() { allScenarios = append(allScenarios, scenarioWAL) }

// Each run lasts -duration, at most walRunFor (the scenario is meant to
// be short), after a fifth of that unmeasured.
const (
	walRunFor    = time.Second
	walAllocRuns = 500 // few: with an fsync per write each takes a disk round trip
)

func walDurations(cfg *config) (run, warm time.Duration) {
	run = min(cfg.Duration, walRunFor)
	return run, run / 5
}

var walRates = []int{1000, 2000}

// walResult is one sink's Write at one rate.
type walResult struct {
	Sink          string
	Rate          int
	Run, Warm     time.Duration
	Stats         stats
	AllocsPerCall float64 // heap objects per Write (serial, no background inserts)
	BytesPerCall  float64
}

// walSink opens a sink for the scenario; close ends it.
type walSink struct {
	name string
	open func(ctx context.Context, dir string, quiet bool) (record.Sink, error)
}

func walSinks(chURL string) []walSink {
	sinks := []walSink{{"JSON-lines file, fsync every 1 s", func(_ context.Context, dir string, _ bool) (record.Sink, error) {
		return record.OpenFileSink(dir+"/requests.jsonl", time.Second)
	}}}
	if chURL == "" {
		return sinks
	}
	ch := func(o chstore.Options) func(context.Context, string, bool) (record.Sink, error) {
		return func(ctx context.Context, dir string, quiet bool) (record.Sink, error) {
			o.URL, o.SpoolDir = chURL, dir
			if quiet { // no insert while allocations are counted
				o.BatchSize, o.FlushInterval = 100000, time.Hour
			}
			return chstore.Open(ctx, o)
		}
	}
	return append(sinks,
		walSink{"ClickHouse writer, no log (memory only, before)", ch(chstore.Options{NoWAL: true})},
		walSink{"ClickHouse writer, log, fsync every 1 s (default)", ch(chstore.Options{})},
		walSink{"ClickHouse writer, log, fsync per group (--log-fsync-interval 0)", ch(chstore.Options{WALSyncEveryWrite: true})},
	)
}

func walRunCount(cfg *config) int {
	if !cfg.runs(scenarioWAL) {
		return 0
	}
	return len(walSinks(cfg.CHURL)) * len(walRates)
}

// runWAL measures each sink at each rate: an open loop (one goroutine per
// call, as the processor has per stream) whose samples are Write alone.
func runWAL(ctx context.Context, cfg *config, pr *progress) ([]walResult, error) {
	var chURL string
	if cfg.CHURL != "" {
		logs := newLogCounter(pr.w)
		url, db, drop, err := benchDatabase(ctx, cfg.CHURL, "wal", slogTo(logs))
		if err != nil {
			return nil, err
		}
		defer func() {
			if derr := drop(); derr != nil {
				fmt.Fprintf(pr.w, "bench: dropping %s: %v\n", db, derr)
			}
		}()
		chURL = url
	}
	run, warm := walDurations(cfg)
	var out []walResult
	for _, s := range walSinks(chURL) {
		objs, bytes, err := walAllocs(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("wal %s: %w", s.name, err)
		}
		for _, rate := range walRates {
			st, err := walLatency(ctx, s, rate, run, warm)
			if err != nil {
				return nil, fmt.Errorf("wal %s: %w", s.name, err)
			}
			out = append(out, walResult{Sink: s.name, Rate: rate, Run: run, Warm: warm, Stats: st, AllocsPerCall: objs, BytesPerCall: bytes})
			pr.printf("wal %s %d/s: Write p50 %s p99 %s max %s, %.1f objects %.0f B per call",
				s.name, rate, ms(st.P50), ms(st.P99), ms(st.Max), objs, bytes)
		}
	}
	return out, nil
}

func walLatency(ctx context.Context, s walSink, rate int, run, warmFor time.Duration) (stats, error) {
	dir, err := os.MkdirTemp("", "tollgate-bench-wal-")
	if err != nil {
		return stats{}, err
	}
	defer os.RemoveAll(dir)
	sink, err := s.open(ctx, dir, false)
	if err != nil {
		return stats{}, err
	}
	n := int(float64(rate) * (run + warmFor).Seconds())
	recs := make([]*record.Record, n+1)
	at := time.Now().UTC()
	for i := range recs {
		recs[i] = ingestRecord(i, at.Add(time.Duration(i)*time.Microsecond))
	}
	write := func(base int) func(context.Context, int) (time.Duration, error) {
		return func(_ context.Context, i int) (time.Duration, error) {
			t0 := time.Now()
			sink.Write(recs[base+i])
			return time.Since(t0), nil
		}
	}
	warm := int(float64(rate) * warmFor.Seconds())
	openLoop(ctx, float64(rate), warmFor, write(0))
	samples := openLoop(ctx, float64(rate), run, write(warm))
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sink.Close(cctx); err != nil {
		return stats{}, err
	}
	return summarize(samples, nil), nil
}

// walAllocs counts the heap one Write allocates, from one goroutine on a
// sink that inserts nothing meanwhile (the writer's batches would count).
func walAllocs(ctx context.Context, s walSink) (objects, bytes float64, err error) {
	dir, err := os.MkdirTemp("", "tollgate-bench-wal-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	sink, err := s.open(ctx, dir, true)
	if err != nil {
		return 0, 0, err
	}
	recs := make([]*record.Record, 2*walAllocRuns)
	at := time.Now().UTC()
	for i := range recs {
		recs[i] = ingestRecord(i, at)
	}
	for _, r := range recs[:walAllocRuns] { // warm: pools, buffers grown
		sink.Write(r)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for _, r := range recs[walAllocRuns:] {
		sink.Write(r)
	}
	runtime.ReadMemStats(&m1)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sink.Close(cctx); err != nil {
		return 0, 0, err
	}
	return float64(m1.Mallocs-m0.Mallocs) / walAllocRuns, float64(m1.TotalAlloc-m0.TotalAlloc) / walAllocRuns, nil
}

// writeWAL is the report's section.
func writeWAL(w io.Writer, rs []walResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(w, "## Local record log: Write on the request path\n\n")
	fmt.Fprintf(w, "A call's record reaches a local file before the call is answered (group commit: concurrent Writes "+
		"share one write(2); the page cache, so a killed process loses nothing). Each call of an open loop "+
		"(one goroutine per call, %s after %s warm-up, ~3 KB of bodies a record) times `Write` alone. "+
		"Heap per call: %d Writes from one goroutine, nothing inserted meanwhile.\n\n", rs[0].Run, rs[0].Warm, walAllocRuns)
	fmt.Fprintf(w, "| Sink | Calls/s | Write p50 (ms) | p99 (ms) | max (ms) | Objects/call | Bytes/call |\n")
	fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %.1f | %.0f |\n",
			r.Sink, r.Rate, ms(r.Stats.P50), ms(r.Stats.P99), ms(r.Stats.Max), r.AllocsPerCall, r.BytesPerCall)
	}
	fmt.Fprintln(w)
}
