// Command bench measures what Tollgate adds to a call (DESIGN §7) and prints
// a markdown report. Run it with `make bench` or
//
//	go run ./internal/bench [-duration 10s] [-reps 3] [-rates 200,1000,2000]
//	                        [-only extproc,sse,hit,limited,ingest,dataplane]
//	                        [-sink clickhouse|file|discard] [-store redis|memory|none]
//	                        [-out report.md]
//
// Everything runs in this one process on loopback: the load generator, the
// do-nothing "floor" ext_proc server, Tollgate's processor, and for the data
// plane scenario the mock provider and the local data plane. Tollgate runs
// as DESIGN §7 measures it, with cache lookup, rate limit and logging on:
// the gate on Redis and the log sink into ClickHouse when the test
// environment's servers are there (TOLLGATE_TEST_REDIS,
// TOLLGATE_TEST_CLICKHOUSE, as scripts/testenv.sh exports them), else on an
// in-process store and a JSON-lines file. Each benchmark uses a ClickHouse
// database of its own, dropped at the end, and Redis keys under a prefix of
// each run's own, deleted after the run. GOMAXPROCS is
// left at its default (all cores) unless -gomaxprocs (or the GOMAXPROCS
// environment variable) says otherwise; it applies to the generator and the
// servers alike, since they share the process. On a 2-core machine
// GOMAXPROCS=1 gives a lower floor and about half the CPU per call, but one
// core saturates near 2,000 calls/s, so it is not the default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(1)
	}
}

// Scenarios, selectable with -only.
const (
	scenarioExtProc   = "extproc"   // four ext_proc round trips, buffered bodies
	scenarioSSE       = "sse"       // ext_proc with an event-stream response
	scenarioHit       = "hit"       // ext_proc answered from the cache at the request body
	scenarioLimited   = "limited"   // ext_proc answered 429 at the request body
	scenarioIngest    = "ingest"    // rows/s from one chstore.Writer into ClickHouse
	scenarioDataPlane = "dataplane" // HTTP through the local data plane vs the mock directly
)

var allScenarios = []string{scenarioExtProc, scenarioSSE, scenarioHit, scenarioLimited, scenarioIngest, scenarioDataPlane}

// config is what the flags say.
type config struct {
	Duration   time.Duration
	Reps       int
	Rates      []int // ext_proc (buffered) rates, calls/s
	SSERate    int
	DPRates    []int // data plane rates, calls/s on each path
	GateRate   int   // hit and limited scenarios, calls/s
	IngestRows int
	Only       []string
	Skipped    []string // default scenarios left out, with the reason
	Sink       string
	Store      string
	RedisURL   string // from TOLLGATE_TEST_REDIS
	CHURL      string // from TOLLGATE_TEST_CLICKHOUSE (server, no database)
	Out        string
	CPUProfile string
	MemProfile string
	GOMAXPROCS int
	// UpstreamFilter runs the upstream-level ext_proc stream per attempt in
	// the data plane scenario, as the configs in envoy/ do.
	UpstreamFilter bool
}

func (c *config) runs(scenario string) bool { return slices.Contains(c.Only, scenario) }

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "length of each measured run")
	fs.IntVar(&c.Reps, "reps", 3, "alternated floor/Tollgate run pairs per rate (data plane: interleaved runs per rate)")
	rates := fs.String("rates", "200,1000,2000", "ext_proc call rates, calls/s")
	fs.IntVar(&c.SSERate, "sse-rate", 1000, "ext_proc call rate of the SSE scenario, calls/s")
	dpRates := fs.String("dp-rates", "200,1000", "data plane call rates, calls/s on each path")
	fs.BoolVar(&c.UpstreamFilter, "upstream-filter", true, "data plane: run the upstream-level ext_proc stream per attempt, as envoy/ configures it")
	fs.IntVar(&c.GateRate, "gate-rate", 1000, "call rate of the hit and limited scenarios, calls/s")
	fs.IntVar(&c.IngestRows, "ingest-rows", 300000, "records the ingest scenario writes into ClickHouse")
	only := fs.String("only", "", "scenarios to run (default all that the servers allow): "+strings.Join(allScenarios, ", "))
	c.RedisURL, c.CHURL = os.Getenv(envRedis), os.Getenv(envClickHouse)
	defSink, defStore := sinkFile, storeMemory
	if c.CHURL != "" {
		defSink = sinkClickHouse
	}
	if c.RedisURL != "" {
		defStore = storeRedis
	}
	fs.StringVar(&c.Sink, "sink", defSink, "Tollgate's log sink: clickhouse (needs "+envClickHouse+"), file (JSON lines in a temp dir) or discard")
	fs.StringVar(&c.Store, "store", defStore, "the gate's store: redis (needs "+envRedis+"), memory or none (no cache, no rate limit)")
	fs.IntVar(&c.GOMAXPROCS, "gomaxprocs", 0, "set GOMAXPROCS for the whole process (0: leave the default, all cores)")
	fs.StringVar(&c.Out, "out", "", "also write the markdown report to this file")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole benchmark to this file")
	fs.StringVar(&c.MemProfile, "memprofile", "", "write an allocation profile (allocs) at the end to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	var err error
	if c.Rates, err = parseRates("rates", *rates); err != nil {
		errs = append(errs, err)
	}
	if c.DPRates, err = parseRates("dp-rates", *dpRates); err != nil {
		errs = append(errs, err)
	}
	explicit := *only != ""
	if !explicit {
		*only = strings.Join(allScenarios, ",")
	}
	for s := range strings.SplitSeq(*only, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
		case slices.Contains(allScenarios, s):
			if !slices.Contains(c.Only, s) {
				c.Only = append(c.Only, s)
			}
		default:
			errs = append(errs, fmt.Errorf("-only: unknown scenario %q (have %s)", s, strings.Join(allScenarios, ", ")))
		}
	}
	// Scenarios the chosen backends cannot run: an error when asked for,
	// left out (and said so in the report) by default.
	drop := func(scenario, why string) {
		if !slices.Contains(c.Only, scenario) {
			return
		}
		if explicit {
			errs = append(errs, fmt.Errorf("-only %s: %s", scenario, why))
			return
		}
		c.Only = slices.DeleteFunc(c.Only, func(s string) bool { return s == scenario })
		c.Skipped = append(c.Skipped, scenario+": "+why)
	}
	if c.Store == storeNone {
		drop(scenarioHit, "needs a store (-store none)")
		drop(scenarioLimited, "needs a store (-store none)")
	}
	if c.CHURL == "" {
		drop(scenarioIngest, envClickHouse+" is not set")
	}
	if len(c.Only) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("-only: no scenario"))
	}
	if c.Duration <= 0 {
		errs = append(errs, errors.New("-duration must be positive"))
	}
	if c.Reps < 1 {
		errs = append(errs, errors.New("-reps must be at least 1"))
	}
	if c.SSERate <= 0 {
		errs = append(errs, errors.New("-sse-rate must be positive"))
	}
	if c.GOMAXPROCS < 0 {
		errs = append(errs, errors.New("-gomaxprocs must not be negative"))
	}
	if c.GateRate <= 0 || c.GateRate > 20000 {
		errs = append(errs, errors.New("-gate-rate must be between 1 and 20000"))
	}
	if c.IngestRows < 1 || c.IngestRows > 10_000_000 {
		errs = append(errs, errors.New("-ingest-rows must be between 1 and 10,000,000"))
	}
	switch {
	case !slices.Contains(sinkKinds, c.Sink):
		errs = append(errs, fmt.Errorf("-sink: want %s, got %q", strings.Join(sinkKinds, ", "), c.Sink))
	case c.Sink == sinkClickHouse && c.CHURL == "":
		errs = append(errs, fmt.Errorf("-sink clickhouse: %s is not set (run under scripts/testenv.sh)", envClickHouse))
	}
	switch {
	case !slices.Contains(storeKinds, c.Store):
		errs = append(errs, fmt.Errorf("-store: want %s, got %q", strings.Join(storeKinds, ", "), c.Store))
	case c.Store == storeRedis && c.RedisURL == "":
		errs = append(errs, fmt.Errorf("-store redis: %s is not set (run under scripts/testenv.sh)", envRedis))
	}
	return c, errors.Join(errs...)
}

// parseRates reads "200,1000": positive, at most 20,000 calls/s (the
// generator must stay bounded).
func parseRates(name, s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n > 20000 {
			return nil, fmt.Errorf("-%s: %q is not a rate between 1 and 20000 calls/s", name, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-%s: no rate", name)
	}
	return out, nil
}

// run is the whole program: flags, benchmark, report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if cfg.GOMAXPROCS > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cfg.GOMAXPROCS))
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := runBench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if cfg.MemProfile != "" {
		if err := writeAllocProfile(cfg.MemProfile); err != nil {
			return err
		}
	}
	var report strings.Builder
	writeReport(&report, res)
	if _, err := io.WriteString(stdout, report.String()); err != nil {
		return err
	}
	if cfg.Out != "" {
		if err := os.WriteFile(cfg.Out, []byte(report.String()), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "report written to %s\n", cfg.Out)
	}
	return nil
}

func writeAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// results is everything the report shows.
type results struct {
	Machine   machine
	Config    *config
	ExtProc   []*extprocResult // buffered rates first, then SSE, hit, limited
	Ingest    *ingestResult
	DataPlane []*dpResult
}

// runStats is one measured run of one target.
type runStats struct {
	stats
	Mem memPeak
	// RoundTrips is the store's Redis round trips per call during the
	// measured run; -1 when not counted (floor, memstore, no gate).
	RoundTrips float64
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
	var d []time.Duration
	for _, p := range r.Pairs {
		if p99 {
			d = append(d, p.Tollgate.P99-p.Floor.P99)
		} else {
			d = append(d, p.Tollgate.P50-p.Floor.P50)
		}
	}
	return median(d)
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
	needsTollgate := slices.ContainsFunc(cfg.Only, func(s string) bool { return s != scenarioIngest })
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
	c0 := takeCPU()
	samples := openLoop(ctx, float64(rate), cfg.Duration, do)
	c1 := takeCPU()
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
	return runStats{stats: st, Mem: peak, RoundTrips: roundTrips}, nil
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
