// Command bench measures what Tollgate adds to a call (DESIGN §7) and prints
// a markdown report. Run it with `make bench` or
//
//	go run ./internal/bench [-duration 10s] [-reps 3] [-rates 200,1000,2000]
//	                        [-only extproc,sse,hit,limited,ingest,ingest-cluster,dataplane]
//	                        [-sink clickhouse|file|discard] [-store redis|memory|none]
//	                        [-out report.md] [-json bench-report.json]
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

// defaultJSONReport is where the JSON report goes unless -json says
// otherwise: bin/ is ignored by git, so a run leaves the tree clean.
const defaultJSONReport = "bin/bench-report.json"

// Scenarios, selectable with -only.
const (
	scenarioExtProc   = "extproc"   // four ext_proc round trips, buffered bodies
	scenarioSSE       = "sse"       // ext_proc with an event-stream response
	scenarioHit       = "hit"       // ext_proc answered from the cache at the request body
	scenarioLimited   = "limited"   // ext_proc answered 429 at the request body
	scenarioIngest    = "ingest"    // rows/s from one chstore.Writer into ClickHouse
	scenarioDataPlane = "dataplane" // HTTP through the local data plane vs the mock directly
	// scenarioIngestCluster (ingestcluster.go): ingest through a cluster's Distributed table
)

var allScenarios = []string{scenarioExtProc, scenarioSSE, scenarioHit, scenarioLimited, scenarioIngest, scenarioIngestCluster, scenarioDataPlane}

// config is what the flags say.
type config struct {
	Duration   time.Duration
	Reps       int
	Rates      []int // ext_proc (buffered) rates, calls/s
	SSERate    int
	DPRates    []int // data plane rates, calls/s on each path
	GateRate   int   // hit and limited scenarios, calls/s
	IngestRows int
	// IngestClusterRows: the ingest-cluster scenario's records (four
	// servers and ZooKeeper share the machine: fewer than IngestRows).
	IngestClusterRows int
	Only              []string
	Skipped           []string // default scenarios left out, with the reason
	Sink              string
	Store             string
	RedisURL          string // from TOLLGATE_TEST_REDIS
	CHURL             string // from TOLLGATE_TEST_CLICKHOUSE (server, no database)
	Out               string
	JSON              string // the JSON report's path; "" writes none
	CPUProfile        string
	MemProfile        string
	GOMAXPROCS        int
	// UpstreamFilter configures the upstream-level ext_proc filter in the
	// data plane scenario as the configs in envoy/ do: on the *_attempts
	// clusters only, so its plain calls open no upstream-level stream.
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
	fs.BoolVar(&c.UpstreamFilter, "upstream-filter", true, "data plane: configure the upstream-level ext_proc filter as envoy/ does (on the *_attempts clusters; plain calls open no upstream-level stream)")
	fs.IntVar(&c.GateRate, "gate-rate", 1000, "call rate of the hit and limited scenarios, calls/s")
	fs.IntVar(&c.IngestRows, "ingest-rows", 300000, "records the ingest scenario writes into ClickHouse")
	fs.IntVar(&c.IngestClusterRows, "ingest-cluster-rows", 100000, "records the ingest-cluster scenario writes into the test cluster's Distributed table")
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
	fs.StringVar(&c.JSON, "json", defaultJSONReport, "write the JSON report to this file (\"\": none)")
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
	if c.IngestClusterRows < 1 || c.IngestClusterRows > 10_000_000 {
		errs = append(errs, errors.New("-ingest-cluster-rows must be between 1 and 10,000,000"))
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
	if cfg.JSON != "" {
		if err := writeJSONReport(cfg.JSON, res, commandLine(args)); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "JSON report written to %s\n", cfg.JSON)
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
