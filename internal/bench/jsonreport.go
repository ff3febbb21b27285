package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The JSON report carries the figures of the markdown one for programs:
// a dashboard of runs over time, a comparison of two commits. Times are in
// microseconds, sizes in bytes; a figure that was not measured is absent
// (or -1 inside a run, as in the markdown's n/a).

const jsonReportVersion = 1

type jsonReport struct {
	Version   int             `json:"version"`
	Date      time.Time       `json:"date"`
	Command   string          `json:"command"`
	Machine   jsonMachine     `json:"machine"`
	Settings  jsonSettings    `json:"settings"`
	Caveats   []string        `json:"caveats"`
	ExtProc   []jsonScenario  `json:"extproc,omitempty"`
	Processor []jsonProcessor `json:"processor_heap,omitempty"`
	DataPlane []jsonDataPlane `json:"data_plane,omitempty"`
	Ingest    *jsonIngest     `json:"ingest,omitempty"`
	// IngestCluster: the ingest scenario through a cluster's Distributed table.
	IngestCluster *jsonIngest      `json:"ingest_cluster,omitempty"`
	WAL           []jsonWAL        `json:"wal,omitempty"`
	Semantic      *semanticResult  `json:"semantic,omitempty"`
	Targets       map[string]int64 `json:"targets"`
}

type jsonMachine struct {
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	GOGC       string `json:"gogc,omitempty"`       // the environment's, if set
	GOMEMLIMIT string `json:"gomemlimit,omitempty"` // the environment's, if set
}

type jsonSettings struct {
	DurationS      float64  `json:"duration_s"`
	WarmupS        float64  `json:"warmup_s"`
	Reps           int      `json:"reps"`
	Sink           string   `json:"sink"`
	Store          string   `json:"store"`
	UpstreamFilter bool     `json:"upstream_filter"`
	Scenarios      []string `json:"scenarios"`
	Skipped        []string `json:"skipped,omitempty"`
}

// jsonPair is a floor figure beside Tollgate's.
type jsonPair struct {
	Floor    float64 `json:"floor"`
	Tollgate float64 `json:"tollgate"`
}

type jsonLatency struct {
	P50 float64 `json:"p50_us"`
	P99 float64 `json:"p99_us"`
}

type jsonScenario struct {
	Scenario string `json:"scenario"`
	Rate     int    `json:"rate"`
	Pairs    int    `json:"pairs"`
	// Floor and Tollgate are medians over the runs; Added is the median
	// of the paired differences (what the targets judge).
	Floor    jsonLatency `json:"floor"`
	Tollgate jsonLatency `json:"tollgate"`
	Added    jsonLatency `json:"added"`
	// Judged: this row is the one the targets are stated for.
	Judged       bool        `json:"judged"`
	TargetAdded  jsonLatency `json:"target_added"`
	CPUUsPerCall jsonPair    `json:"cpu_us_per_call"`
	AllocBytes   jsonPair    `json:"alloc_bytes_per_call"`
	AllocObjects jsonPair    `json:"alloc_objects_per_call"`
	RSSBytes     jsonPair    `json:"rss_peak_bytes"`
	HeapBytes    jsonPair    `json:"heap_objects_peak_bytes"`
	RedisTrips   *float64    `json:"redis_round_trips_per_call,omitempty"`
	Runs         []jsonRun   `json:"runs"`
}

// jsonSide is one measured run of one side.
type jsonSide struct {
	Calls        int     `json:"calls"`
	OK           int     `json:"ok"`
	Errors       int     `json:"errors"`
	FirstError   string  `json:"first_error,omitempty"`
	Late         int     `json:"late"`
	P50          float64 `json:"p50_us"`
	P99          float64 `json:"p99_us"`
	Max          float64 `json:"max_us"`
	StartLagP99  float64 `json:"start_lag_p99_us"`
	CPUPerCall   float64 `json:"cpu_us_per_call"`
	OthersCPU    float64 `json:"others_cpu_cores"`
	AllocBytes   float64 `json:"alloc_bytes_per_call,omitempty"`
	AllocObjects float64 `json:"alloc_objects_per_call,omitempty"`
	RSSBytes     uint64  `json:"rss_peak_bytes,omitempty"`
	RedisTrips   float64 `json:"redis_round_trips_per_call"`
}

type jsonRun struct {
	Rep        int      `json:"rep"`
	FloorFirst bool     `json:"floor_first"`
	Floor      jsonSide `json:"floor"`
	Tollgate   jsonSide `json:"tollgate"`
}

type jsonProcessor struct {
	Script       string  `json:"script"`
	RequestBytes int     `json:"request_bytes"`
	Calls        int     `json:"calls"`
	BytesPerCall float64 `json:"bytes_per_call"`
	AllocsPerOp  float64 `json:"objects_per_call"`
}

type jsonDataPlane struct {
	Rate        int         `json:"rate"`
	Runs        int         `json:"runs"`
	Direct      jsonLatency `json:"direct"`
	Plane       jsonLatency `json:"data_plane"`
	Added       jsonLatency `json:"added"`
	Judged      bool        `json:"judged"`
	TargetAdded jsonLatency `json:"target_added"`
	// StreamsPerCall: ext_proc streams opened to the processor per call
	// through the data plane (median over the runs).
	StreamsPerCall float64       `json:"extproc_streams_per_call"`
	RunList        []jsonDataRun `json:"run_list"`
	Logs           []string      `json:"logs,omitempty"`
}

type jsonDataRun struct {
	Rep            int      `json:"rep"`
	Direct         jsonSide `json:"direct"`
	Plane          jsonSide `json:"data_plane"`
	CPUPerPair     float64  `json:"cpu_us_per_pair"`
	OthersCPU      float64  `json:"others_cpu_cores"`
	StreamsPerCall float64  `json:"extproc_streams_per_call"`
}

// jsonWAL is one row of the wal scenario (wal.go): a record sink's Write.
type jsonWAL struct {
	Sink         string   `json:"sink"`
	Rate         int      `json:"rate"`
	Write        jsonSide `json:"write"`
	BytesPerCall float64  `json:"alloc_bytes_per_write"`
	AllocsPerOp  float64  `json:"alloc_objects_per_write"`
}

type jsonIngest struct {
	Rows       int      `json:"rows"`
	BodyBytes  int      `json:"body_bytes"`
	ElapsedS   float64  `json:"elapsed_s"`
	RowsPerSec float64  `json:"rows_per_s"`
	WriteNs    float64  `json:"write_ns_per_row"`
	Arrived    uint64   `json:"arrived"`
	Logs       []string `json:"logs,omitempty"`
}

func usOf(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return float64(d) / float64(time.Microsecond)
}

func sideOf(st stats) jsonSide {
	return jsonSide{
		Calls: st.Calls, OK: st.OK, Errors: st.Errors, FirstError: st.FirstErr, Late: st.Late,
		P50: usOf(st.P50), P99: usOf(st.P99), Max: usOf(st.Max), StartLagP99: usOf(st.LagP99),
		CPUPerCall: usOf(st.CPUPerCall), OthersCPU: st.OtherCPU, RedisTrips: -1,
	}
}

func runSide(rs runStats) jsonSide {
	s := sideOf(rs.stats)
	s.AllocBytes, s.AllocObjects, s.RSSBytes, s.RedisTrips = rs.AllocBytes, rs.AllocObjects, rs.Mem.RSS, rs.RoundTrips
	return s
}

// medianOf is the median of a figure over runs, skipping the unknown (< 0).
func medianOf[T any](runs []T, f func(T) float64) float64 {
	var vs []time.Duration
	for _, r := range runs {
		// Durations keep median's rounding rule; the figures here are
		// far from overflowing.
		if v := f(r); v >= 0 {
			vs = append(vs, time.Duration(v*1000))
		}
	}
	if len(vs) == 0 {
		return -1
	}
	return float64(median(vs)) / 1000
}

// buildJSONReport turns the results into the JSON report's shape. command
// is the command line to record.
func buildJSONReport(r *results, command string) *jsonReport {
	m, c := r.Machine, r.Config
	out := &jsonReport{
		Version: jsonReportVersion,
		Date:    m.Date,
		Command: command,
		Machine: jsonMachine{OS: m.OS, Arch: m.Arch, CPU: m.CPU, Cores: m.Cores, GOMAXPROCS: m.GOMAXPROCS,
			GoVersion: m.GoVersion, GOGC: os.Getenv("GOGC"), GOMEMLIMIT: os.Getenv("GOMEMLIMIT")},
		Settings: jsonSettings{DurationS: c.Duration.Seconds(), WarmupS: warmupFor(c.Duration).Seconds(), Reps: c.Reps,
			Sink: c.Sink, Store: c.Store, UpstreamFilter: c.UpstreamFilter, Scenarios: c.Only, Skipped: c.Skipped},
		Caveats: reportCaveats(r),
		Targets: map[string]int64{
			"extproc_added_p50_us":   targetExtProcP50.Microseconds(),
			"extproc_added_p99_us":   targetExtProcP99.Microseconds(),
			"dataplane_added_p50_us": targetDataPlaneP50.Microseconds(),
			"dataplane_added_p99_us": targetDataPlaneP99.Microseconds(),
			"rss_bytes":              targetResidentBytes,
			"processor_heap_bytes":   targetHeapPerCall,
			"ingest_rows_per_s":      targetIngestRows,
			"rate":                   targetRate,
		},
	}
	for _, e := range r.ExtProc {
		pairs := e.Pairs
		js := jsonScenario{
			Scenario: e.Scenario, Rate: e.Rate, Pairs: len(pairs),
			Floor: jsonLatency{
				P50: medianOf(pairs, func(p extprocPair) float64 { return usOf(p.Floor.P50) }),
				P99: medianOf(pairs, func(p extprocPair) float64 { return usOf(p.Floor.P99) })},
			Tollgate: jsonLatency{
				P50: medianOf(pairs, func(p extprocPair) float64 { return usOf(p.Tollgate.P50) }),
				P99: medianOf(pairs, func(p extprocPair) float64 { return usOf(p.Tollgate.P99) })},
			Added:       jsonLatency{P50: usOf2(e.medianDiff(false)), P99: usOf2(e.medianDiff(true))},
			Judged:      e.Scenario == scenarioExtProc && e.Rate == targetRate,
			TargetAdded: jsonLatency{P50: usOf(targetExtProcP50), P99: usOf(targetExtProcP99)},
			CPUUsPerCall: jsonPair{
				Floor:    medianOf(pairs, func(p extprocPair) float64 { return usOf(p.Floor.CPUPerCall) }),
				Tollgate: medianOf(pairs, func(p extprocPair) float64 { return usOf(p.Tollgate.CPUPerCall) })},
			AllocBytes: jsonPair{
				Floor:    medianOf(pairs, func(p extprocPair) float64 { return p.Floor.AllocBytes }),
				Tollgate: medianOf(pairs, func(p extprocPair) float64 { return p.Tollgate.AllocBytes })},
			AllocObjects: jsonPair{
				Floor:    medianOf(pairs, func(p extprocPair) float64 { return p.Floor.AllocObjects }),
				Tollgate: medianOf(pairs, func(p extprocPair) float64 { return p.Tollgate.AllocObjects })},
		}
		for _, p := range pairs {
			js.RSSBytes.Floor = max(js.RSSBytes.Floor, float64(p.Floor.Mem.RSS))
			js.RSSBytes.Tollgate = max(js.RSSBytes.Tollgate, float64(p.Tollgate.Mem.RSS))
			js.HeapBytes.Floor = max(js.HeapBytes.Floor, float64(p.Floor.Mem.HeapObjs))
			js.HeapBytes.Tollgate = max(js.HeapBytes.Tollgate, float64(p.Tollgate.Mem.HeapObjs))
			js.Runs = append(js.Runs, jsonRun{Rep: p.Rep, FloorFirst: p.FloorFirst, Floor: runSide(p.Floor), Tollgate: runSide(p.Tollgate)})
		}
		if t := medianOf(pairs, func(p extprocPair) float64 { return p.Tollgate.RoundTrips }); t >= 0 {
			js.RedisTrips = &t
		}
		out.ExtProc = append(out.ExtProc, js)
	}
	for _, p := range r.Processor {
		out.Processor = append(out.Processor, jsonProcessor(p))
	}
	for _, d := range r.DataPlane {
		runs := d.Runs
		jd := jsonDataPlane{
			Rate: d.Rate, Runs: len(runs),
			Direct: jsonLatency{
				P50: medianOf(runs, func(x dpRun) float64 { return usOf(x.Direct.P50) }),
				P99: medianOf(runs, func(x dpRun) float64 { return usOf(x.Direct.P99) })},
			Plane: jsonLatency{
				P50: medianOf(runs, func(x dpRun) float64 { return usOf(x.Plane.P50) }),
				P99: medianOf(runs, func(x dpRun) float64 { return usOf(x.Plane.P99) })},
			Added:          jsonLatency{P50: usOf2(d.medianDiff(false)), P99: usOf2(d.medianDiff(true))},
			Judged:         d.Rate == targetRate,
			TargetAdded:    jsonLatency{P50: usOf(targetDataPlaneP50), P99: usOf(targetDataPlaneP99)},
			StreamsPerCall: medianOf(runs, func(x dpRun) float64 { return x.StreamsPerCall }),
			Logs:           d.Logs,
		}
		for _, x := range runs {
			jd.RunList = append(jd.RunList, jsonDataRun{Rep: x.Rep, Direct: sideOf(x.Direct), Plane: sideOf(x.Plane),
				CPUPerPair: usOf(x.CPUPerPair), OthersCPU: x.OtherCPU, StreamsPerCall: x.StreamsPerCall})
		}
		out.DataPlane = append(out.DataPlane, jd)
	}
	for _, w := range r.WAL {
		out.WAL = append(out.WAL, jsonWAL{Sink: w.Sink, Rate: w.Rate, Write: sideOf(w.Stats),
			BytesPerCall: w.BytesPerCall, AllocsPerOp: w.AllocsPerCall})
	}
	out.Semantic = r.Semantic
	if in := r.Ingest; in != nil {
		out.Ingest = &jsonIngest{Rows: in.Rows, BodyBytes: in.BodyBytes, ElapsedS: in.Elapsed.Seconds(),
			RowsPerSec: in.rowsPerSec(), WriteNs: in.writeNs(), Arrived: in.Final, Logs: in.Logs}
	}
	if in := r.IngestCluster; in != nil {
		out.IngestCluster = &jsonIngest{Rows: in.Rows, BodyBytes: in.BodyBytes, ElapsedS: in.Elapsed.Seconds(),
			RowsPerSec: in.rowsPerSec(), WriteNs: in.writeNs(), Arrived: in.Final, Logs: in.Logs}
	}
	return out
}

// usOf2 is usOf for a difference, which may be negative.
func usOf2(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// reportCaveats are the conditions a reader must know to trust the
// figures, in words.
func reportCaveats(r *results) []string {
	cv := []string{
		"One process: the load generator, the gRPC client and the servers share the machine's cores, " +
			"so CPU, allocation and RSS figures are the whole process's; Tollgate minus floor is the processor's share.",
		"Targets are judged on the median over the runs of the paired differences (Tollgate − floor measured next to it).",
	}
	if busy, total := r.busyRuns(); busy > 0 {
		cv = append(cv, fmt.Sprintf("During %d of %d runs other programs used %.1f cores or more: "+
			"those figures measure the machine's load as much as Tollgate.", busy, total, busyCores))
	}
	for _, s := range r.Config.Skipped {
		cv = append(cv, "Skipped: "+s)
	}
	if r.Config.Duration < 5*time.Second {
		cv = append(cv, fmt.Sprintf("Short runs (%s each): p99 rests on few calls.", r.Config.Duration))
	}
	return cv
}

// writeJSONReport writes the report to path, indented.
func writeJSONReport(path string, r *results, command string) error {
	data, err := json.MarshalIndent(buildJSONReport(r, command), "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// commandLine is how the run was started, as a user would type it (no
// machine paths).
func commandLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if a == "" || strings.ContainsAny(a, " \t\"'$") {
			q[i] = fmt.Sprintf("%q", a)
		}
	}
	return strings.TrimSpace("go run ./internal/bench " + strings.Join(q, " "))
}
