package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"
)

// results is everything the report shows.
type results struct {
	Machine   machine
	Config    *config
	ExtProc   []*extprocResult  // buffered rates first, then SSE, hit, limited
	Processor []processorAllocs // the processor's own heap per call, without gRPC
	Ingest    *ingestResult
	// IngestCluster is the ingest scenario through a cluster's Distributed
	// table (ingestcluster.go).
	IngestCluster *ingestResult
	WAL           []walResult     // the local record log's Write cost (wal.go)
	Semantic      *semanticResult // the semantic cache's added cost (semantic.go)
	DataPlane     []*dpResult
}

// runStats is one measured run of one target.
type runStats struct {
	stats
	Mem memPeak
	// RoundTrips is the store's Redis round trips per call during the
	// measured run; -1 when not counted (floor, memstore, no gate).
	RoundTrips float64
	// AllocBytes and AllocObjects are the heap this whole process
	// (generator, gRPC client and server) allocated per call during the
	// measured run: Tollgate's minus the floor's is the processor's and its
	// gRPC's share.
	AllocBytes, AllocObjects float64
}

// extprocPair is one floor run and one Tollgate run back to back.
type extprocPair struct {
	Rep        int
	FloorFirst bool
	Floor      runStats
	Tollgate   runStats
}

type extprocResult struct {
	Scenario string // scenarioExtProc, scenarioSSE, scenarioHit or scenarioLimited
	Rate     int
	Pairs    []extprocPair
}

// medianDiff is the median over the pairs of Tollgate − floor at p50 or p99.
func (r *extprocResult) medianDiff(p99 bool) time.Duration {
	return medianGap(r.Pairs, p99, func(p extprocPair) (stats, stats) { return p.Floor.stats, p.Tollgate.stats })
}

// warmupFor: each run starts with a short unmeasured stretch at the same
// rate, so connection set-up and the first GC cycles are not in the figures.
func warmupFor(d time.Duration) time.Duration {
	return min(max(d/20, 100*time.Millisecond), 500*time.Millisecond)
}

// progress numbers the runs on stderr.
type progress struct {
	w     io.Writer
	done  int
	total int
	start time.Time
}

func (p *progress) printf(format string, args ...any) {
	p.done++
	fmt.Fprintf(p.w, "[%d/%d %5.0fs] %s\n", p.done, p.total, time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

func runBench(ctx context.Context, cfg *config, stderr io.Writer) (*results, error) {
	res := &results{Machine: describeMachine(), Config: cfg}
	total := 0
	if cfg.runs(scenarioExtProc) {
		total += 2 * cfg.Reps * len(cfg.Rates)
	}
	if cfg.runs(scenarioSSE) {
		total += 2 * cfg.Reps
	}
	for _, s := range []string{scenarioHit, scenarioLimited} {
		if cfg.runs(s) {
			total += 2 * cfg.Reps
		}
	}
	if cfg.runs(scenarioIngest) {
		total++
	}
	if cfg.runs(scenarioIngestCluster) {
		total++
	}
	total += walRunCount(cfg)
	heapScripts := processorHeapScripts(cfg)
	total += len(heapScripts)
	if cfg.runs(scenarioDataPlane) {
		total += cfg.Reps * len(cfg.DPRates)
	}
	pr := &progress{w: stderr, total: total, start: time.Now()}
	fmt.Fprintf(stderr, "bench: %d runs of %s each (+%s warm-up), GOMAXPROCS=%d, sink %s, store %s\n",
		total, cfg.Duration, warmupFor(cfg.Duration), runtime.GOMAXPROCS(0), cfg.Sink, cfg.Store)
	for _, s := range cfg.Skipped {
		fmt.Fprintf(stderr, "bench: skipping %s\n", s)
	}

	be := &backends{sink: cfg.Sink, store: cfg.Store, redisURL: cfg.RedisURL, logs: &logCounter{who: "Tollgate's sink or store", w: stderr, counts: map[string]int{}}}
	needsTollgate := slices.ContainsFunc(cfg.Only, func(s string) bool { return s != scenarioIngest && s != scenarioIngestCluster })
	if cfg.Sink == sinkClickHouse && needsTollgate {
		url, db, drop, err := benchDatabase(ctx, cfg.CHURL, "log", be.logger())
		if err != nil {
			return nil, err
		}
		be.chURL = url
		defer func() {
			if err := drop(); err != nil {
				fmt.Fprintf(stderr, "bench: dropping %s: %v\n", db, err)
			}
		}()
	}

	if cfg.runs(scenarioExtProc) {
		for _, rate := range cfg.Rates {
			r, err := runExtProcScenario(ctx, cfg, be, pr, scenarioExtProc, bufferedScript(), rate)
			if err != nil {
				return nil, err
			}
			res.ExtProc = append(res.ExtProc, r)
		}
	}
	if cfg.runs(scenarioSSE) {
		r, err := runExtProcScenario(ctx, cfg, be, pr, scenarioSSE, sseScript(), cfg.SSERate)
		if err != nil {
			return nil, err
		}
		res.ExtProc = append(res.ExtProc, r)
	}
	for _, sse := range heapScripts {
		p, err := measureProcessorAllocs(sse, heapWarmCalls, heapCalls)
		if err != nil {
			return nil, fmt.Errorf("processor heap: %w", err)
		}
		res.Processor = append(res.Processor, p)
		pr.printf("processor heap %s (%d B request) %d calls  %.0f B/call  %.1f objects/call",
			p.Script, p.RequestBytes, p.Calls, p.BytesPerCall, p.AllocsPerOp)
	}
	for _, g := range []struct {
		name string
		sc   func() *script
	}{{scenarioHit, hitScript}, {scenarioLimited, limitedScript}} {
		if cfg.runs(g.name) {
			r, err := runExtProcScenario(ctx, cfg, be, pr, g.name, g.sc(), cfg.GateRate)
			if err != nil {
				return nil, err
			}
			res.ExtProc = append(res.ExtProc, r)
		}
	}
	if cfg.runs(scenarioIngest) {
		r, err := runIngest(ctx, cfg.CHURL, cfg.IngestRows, pr)
		if err != nil {
			return nil, err
		}
		res.Ingest = r
	}
	if cfg.runs(scenarioIngestCluster) {
		r, err := runIngestCluster(ctx, cfg.IngestClusterRows, pr)
		if err != nil {
			return nil, err
		}
		res.IngestCluster = r
	}
	if cfg.runs(scenarioWAL) {
		r, err := runWAL(ctx, cfg, pr)
		if err != nil {
			return nil, err
		}
		res.WAL = r
	}
	if cfg.runs(scenarioSemantic) {
		r, err := runSemantic(ctx, pr)
		if err != nil {
			return nil, err
		}
		res.Semantic = r
	}
	if cfg.runs(scenarioDataPlane) {
		for _, rate := range cfg.DPRates {
			r, err := runDataPlaneScenario(ctx, cfg, be, pr, rate)
			if err != nil {
				return nil, err
			}
			res.DataPlane = append(res.DataPlane, r)
		}
	}
	return res, nil
}

// runExtProcScenario does reps floor/Tollgate pairs at one rate. The order
// within a pair alternates (F T, T F, F T, …) so a drift of the machine
// during the scenario does not always favour the same side.
func runExtProcScenario(ctx context.Context, cfg *config, be *backends, pr *progress, name string, sc *script, rate int) (*extprocResult, error) {
	res := &extprocResult{Scenario: name, Rate: rate}
	for rep := range cfg.Reps {
		pair := extprocPair{Rep: rep + 1, FloorFirst: rep%2 == 0}
		order := []string{targetFloor, targetTollgate}
		if !pair.FloorFirst {
			order = []string{targetTollgate, targetFloor}
		}
		for _, kind := range order {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			st, err := measureExtProc(ctx, cfg, be, kind, sc, rate)
			if err != nil {
				return nil, fmt.Errorf("%s %d/s %s: %w", name, rate, kind, err)
			}
			if kind == targetFloor {
				pair.Floor = st
			} else {
				pair.Tollgate = st
			}
			pr.printf("%s %d/s rep %d %-8s %6d calls  p50 %s  p99 %s  late %d  errors %d%s%s%s",
				name, rate, rep+1, kind, st.Calls, ms(st.P50), ms(st.P99), st.Late, st.Errors, tripsNote(st.RoundTrips), busyNote(st.stats), errSuffix(st.stats))
		}
		res.Pairs = append(res.Pairs, pair)
	}
	return res, nil
}

// measureExtProc runs one target at one rate on a fresh server: the
// script's prime call if any, the warm-up, then the measured run.
func measureExtProc(ctx context.Context, cfg *config, be *backends, kind string, sc *script, rate int) (runStats, error) {
	t, err := startTarget(kind, be)
	if err != nil {
		return runStats{}, err
	}
	if sc.prime != nil {
		if _, err := t.call(ctx, sc.prime); err != nil {
			return runStats{}, errors.Join(fmt.Errorf("prime call: %w", err), t.stop())
		}
	}
	do := func(ctx context.Context, _ int) (time.Duration, error) { return t.call(ctx, sc) }
	openLoop(ctx, float64(rate), warmupFor(cfg.Duration), do)
	runtime.GC()
	var trips0 uint64
	if t.trips != nil {
		trips0 = t.trips()
	}
	mem := startMemSampler(250 * time.Millisecond)
	c0, a0 := takeCPU(), readHeapAllocs()
	samples := openLoop(ctx, float64(rate), cfg.Duration, do)
	c1, a1 := takeCPU(), readHeapAllocs()
	peak := mem.Stop()
	// Every call has ended (Process returned, the fill after a MISS
	// included), so the count is exactly the measured calls'.
	roundTrips := -1.0
	if t.trips != nil && len(samples) > 0 {
		roundTrips = float64(t.trips()-trips0) / float64(len(samples))
	}
	if err := t.stop(); err != nil {
		return runStats{}, fmt.Errorf("stopping: %w", err)
	}
	st := summarize(samples, nil)
	st.CPUPerCall, st.OtherCPU = cpuPerCall(c0, c1, len(samples)), otherCPU(c0, c1)
	rs := runStats{stats: st, Mem: peak, RoundTrips: roundTrips}
	rs.AllocBytes, rs.AllocObjects = a1.perCall(a0, len(samples))
	return rs, nil
}

func tripsNote(rt float64) string {
	if rt < 0 {
		return ""
	}
	return fmt.Sprintf("  redis %.2f trips/call", rt)
}

// cpuPerCall is this process's CPU time between a and b divided by calls
// (-1 when unknown).
func cpuPerCall(a, b cpuSnap, calls int) time.Duration {
	cores := selfCPU(a, b)
	if cores < 0 || calls == 0 {
		return -1
	}
	return time.Duration(cores * b.at.Sub(a.at).Seconds() * float64(time.Second) / float64(calls))
}

// busyCores: a run during which other programs used this many cores or
// more competed for the CPU, and its figures are suspect.
const busyCores = 0.2

// busyNote warns on the progress line when other programs took a noticeable
// share of the CPU during a run.
func busyNote(st stats) string {
	if st.OtherCPU < busyCores {
		return ""
	}
	return fmt.Sprintf("  (busy machine: others used %.1f cores)", st.OtherCPU)
}

func errSuffix(st stats) string {
	if st.FirstErr == "" {
		return ""
	}
	return "  first error: " + st.FirstErr
}
