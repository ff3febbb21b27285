package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/provider"
)

// TestEveryScenarioRuns keeps the harness working: every scenario, a tiny
// duration, a low rate. Only that calls succeed and the report has its
// sections is checked — never a timing.
func TestEveryScenarioRuns(t *testing.T) {
	cfg, err := parseFlags([]string{"-duration", "200ms", "-reps", "1", "-rates", "200", "-sse-rate", "200",
		"-dp-rates", "200", "-gate-rate", "200", "-ingest-rows", "3000"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var progressOut bytes.Buffer
	res, err := runBench(t.Context(), cfg, &progressOut)
	if err != nil {
		t.Fatalf("runBench: %v\nprogress:\n%s", err, progressOut.String())
	}

	checkStats := func(what string, st stats) {
		t.Helper()
		if st.Calls == 0 || st.OK != st.Calls || st.Errors != 0 {
			t.Errorf("%s: %d calls, %d ok, %d errors (first: %s)", what, st.Calls, st.OK, st.Errors, st.FirstErr)
		}
		if st.P50 <= 0 || st.P99 < st.P50 {
			t.Errorf("%s: p50 %v, p99 %v", what, st.P50, st.P99)
		}
	}
	scenarios := map[string]bool{}
	for _, r := range res.ExtProc {
		scenarios[r.Scenario] = true
		if len(r.Pairs) != 1 {
			t.Errorf("%s: %d pairs, want 1", r.Scenario, len(r.Pairs))
		}
		for _, p := range r.Pairs {
			checkStats(r.Scenario+" floor", p.Floor.stats)
			checkStats(r.Scenario+" tollgate", p.Tollgate.stats)
		}
	}
	if !scenarios[scenarioExtProc] || !scenarios[scenarioSSE] || !scenarios[scenarioHit] || !scenarios[scenarioLimited] {
		t.Errorf("ext_proc scenarios run: %v", scenarios)
	}
	if sr := res.Semantic; sr == nil || sr.LookupNs <= 0 || sr.HeapPerEntry <= 0 || sr.MissInProcNs <= 0 || sr.MissMockHTTPNs <= 0 {
		t.Errorf("semantic scenario: %+v", sr)
	}
	for _, r := range res.ExtProc {
		for _, p := range r.Pairs {
			rt := p.Tollgate.RoundTrips
			switch {
			case cfg.Store != storeRedis:
				if rt != -1 {
					t.Errorf("%s: %v round trips counted without Redis", r.Scenario, rt)
				}
			case r.Scenario == scenarioHit || r.Scenario == scenarioLimited:
				// One by design; a client retry after a timeout on a
				// loaded machine (the race detector) may add a few.
				if rt < 1 || rt >= 1.5 {
					t.Errorf("%s: %v Redis round trips per call, want 1", r.Scenario, rt)
				}
			default:
				// Admit, then the fill; the report shows the exact figure.
				if rt < 2 || rt >= 3 {
					t.Errorf("%s: %v Redis round trips per call, want 2 (or a little above)", r.Scenario, rt)
				}
			}
		}
	}
	if cfg.CHURL != "" {
		if res.Ingest == nil || res.Ingest.Final != 3000 || res.Ingest.rowsPerSec() <= 0 {
			t.Errorf("ingest: %+v", res.Ingest)
		}
	} else if res.Ingest != nil {
		t.Errorf("ingest ran without ClickHouse")
	}
	if len(res.DataPlane) != 1 || len(res.DataPlane[0].Runs) != 1 {
		t.Fatalf("data plane results: %+v", res.DataPlane)
	}
	checkStats("direct", res.DataPlane[0].Runs[0].Direct)
	checkStats("through the data plane", res.DataPlane[0].Runs[0].Plane)

	if len(res.Processor) != 2 || res.Processor[0].Script != "buffered" || res.Processor[1].Script != "sse" {
		t.Errorf("processor heap: %+v", res.Processor)
	}
	if _, err := json.Marshal(buildJSONReport(res, "go run ./internal/bench")); err != nil {
		t.Errorf("JSON report: %v", err)
	}
	if dp := buildJSONReport(res, "").DataPlane; len(dp) != 1 || dp[0].StreamsPerCall < 1 {
		t.Errorf("JSON data plane: %+v", dp)
	}

	var report strings.Builder
	writeReport(&report, res)
	for _, want := range []string{titleReport, "| Machine |", "| Go |", "| Date |", titleHeap,
		titleExtProc, "| extproc | 200 |", "| sse | 200 |", "| hit | 200 |", "| limited | 200 |",
		titleGate, "| HIT | 2 | 200 |", "| LIMITED (429) | 2 | 200 |", "| MISS + fill (extproc) | 4 | 200 |",
		titleMemory, titleDataPlane} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}
	if strings.Contains(report.String(), "Errors:") {
		t.Errorf("report lists errors:\n%s", report.String())
	}
	if cfg.CHURL != "" && !strings.Contains(report.String(), titleIngest) {
		t.Errorf("report lacks the ingestion section:\n%s", report.String())
	}
}

// The defaults follow the test environment: ClickHouse and Redis when its
// variables are set, a file and the in-process store otherwise.
func TestBackendDefaults(t *testing.T) {
	for _, env := range []struct{ redis, ch, sink, store string }{
		{"", "", sinkFile, storeMemory},
		{"redis://127.0.0.1:1", "clickhouse://127.0.0.1:1", sinkClickHouse, storeRedis},
	} {
		t.Setenv(envRedis, env.redis)
		t.Setenv(envClickHouse, env.ch)
		cfg, err := parseFlags(nil, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Sink != env.sink || cfg.Store != env.store {
			t.Errorf("env %+v: sink %s, store %s", env, cfg.Sink, cfg.Store)
		}
		if hasCH := slices.Contains(cfg.Only, scenarioIngest); hasCH != (env.ch != "") {
			t.Errorf("env %+v: scenarios %v, skipped %v", env, cfg.Only, cfg.Skipped)
		}
	}
	t.Setenv(envRedis, "")
	t.Setenv(envClickHouse, "")
	for _, args := range [][]string{{"-sink", "clickhouse"}, {"-store", "redis"}, {"-only", "ingest"},
		{"-store", "none", "-only", "hit"}} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%q without servers: no error", args)
		}
	}
	cfg, err := parseFlags([]string{"-store", "none"}, &bytes.Buffer{})
	if err != nil || slices.Contains(cfg.Only, scenarioHit) || len(cfg.Skipped) != 3 {
		t.Errorf("-store none: %v, %+v", err, cfg)
	}
}

func TestOnlyLimitsTheScenarios(t *testing.T) {
	cfg, err := parseFlags([]string{"-duration", "100ms", "-reps", "1", "-rates", "100", "-only", "sse"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.SSERate = 100
	res, err := runBench(t.Context(), cfg, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ExtProc) != 1 || res.ExtProc[0].Scenario != scenarioSSE || len(res.DataPlane) != 0 {
		t.Fatalf("ran %+v, data plane %+v", res.ExtProc, res.DataPlane)
	}
	var report strings.Builder
	writeReport(&report, res)
	if strings.Contains(report.String(), titleDataPlane) {
		t.Errorf("report has a data plane section without that scenario")
	}
}

func TestRunWritesTheReport(t *testing.T) {
	dir := t.TempDir()
	out, jsonOut := dir+"/report.md", dir+"/sub/report.json"
	var stdout, stderr bytes.Buffer
	args := []string{"-duration", "100ms", "-reps", "1", "-rates", "100", "-only", "extproc", "-sink", "discard", "-out", out, "-json", jsonOut}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	// Two runs, then the processor's heap.
	if !strings.HasPrefix(stdout.String(), titleReport) || !strings.Contains(stderr.String(), "[3/3") ||
		!strings.Contains(stdout.String(), titleHeap) {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	data, err := os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	var rep jsonReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, data)
	}
	if rep.Version != jsonReportVersion || rep.Machine.Cores == 0 || rep.Machine.GoVersion == "" || rep.Date.IsZero() ||
		!strings.HasPrefix(rep.Command, "go run ./internal/bench -duration 100ms") || len(rep.Caveats) == 0 {
		t.Errorf("JSON report header: %s", data)
	}
	if len(rep.ExtProc) != 1 || len(rep.ExtProc[0].Runs) != 1 || rep.ExtProc[0].Rate != 100 {
		t.Fatalf("JSON report scenarios: %s", data)
	}
	e := rep.ExtProc[0]
	if e.Floor.P50 <= 0 || e.Tollgate.P99 <= 0 || e.CPUUsPerCall.Tollgate <= 0 || e.AllocBytes.Tollgate <= 0 ||
		e.RSSBytes.Tollgate <= 0 || e.Runs[0].Tollgate.OK != e.Runs[0].Tollgate.Calls {
		t.Errorf("JSON report figures: %+v", e)
	}
	if len(rep.Processor) != 1 || rep.Processor[0].BytesPerCall <= 0 || rep.Processor[0].Calls != heapCalls {
		t.Errorf("JSON report processor heap: %+v", rep.Processor)
	}
}

// Without -json the report goes to bin/ under the current folder (git
// ignores it); -json "" writes none.
func TestJSONReportDefault(t *testing.T) {
	cfg, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil || cfg.JSON != "bin/bench-report.json" {
		t.Errorf("default -json: %q, %v", cfg.JSON, err)
	}
	cfg, err = parseFlags([]string{"-json", ""}, &bytes.Buffer{})
	if err != nil || cfg.JSON != "" {
		t.Errorf("-json \"\": %q, %v", cfg.JSON, err)
	}
	if got := commandLine([]string{"-only", "extproc", "-out", "my report.md"}); got != `go run ./internal/bench -only extproc -out "my report.md"` {
		t.Errorf("command line: %s", got)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-rates", "0"},
		{"-rates", "fast"},
		{"-only", "everything"},
		{"-only", ","},
		{"-reps", "0"},
		{"-duration", "0s"},
		{"-sink", "nowhere"},
		{"-store", "disk"},
		{"-gate-rate", "0"},
		{"-ingest-rows", "0"},
		{"-gomaxprocs", "-1"},
		{"extra"},
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	cfg, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Duration != 10*time.Second || cfg.Reps != 3 || len(cfg.Rates) != 3 || len(cfg.Only)+len(cfg.Skipped) != len(allScenarios) {
		t.Errorf("defaults: %+v", cfg)
	}
}

// The traffic must look like the real thing, or the figures mean little.
func TestFixturesAreRealistic(t *testing.T) {
	for _, stream := range []bool{false, true} {
		body := chatRequestBody(stream)
		if !json.Valid(body) || len(body) < 1800 || len(body) > 2600 {
			t.Errorf("request body (stream %v): valid %v, %d bytes", stream, json.Valid(body), len(body))
		}
		req, err := provider.ParseRequest(body)
		if err != nil || req.Model == "" || req.Stream != stream {
			t.Errorf("request body (stream %v): %+v, %v", stream, req, err)
		}
	}
	if !json.Valid([]byte(chatResponseJSON)) {
		t.Error("response body is not JSON")
	}
	if u, _, err := provider.ParseResponse(provider.OpenAI, []byte(chatResponseJSON)); err != nil || u.PromptTokens == 0 {
		t.Errorf("response usage: %+v, %v", u, err)
	}

	chunks := sseChunks(sseChunkCount)
	if len(chunks) != sseChunkCount {
		t.Fatalf("%d chunks, want %d", len(chunks), sseChunkCount)
	}
	acc := provider.NewStreamAccumulator(provider.OpenAI)
	for _, c := range chunks {
		data, ok := strings.CutPrefix(strings.TrimSuffix(string(c), "\n\n"), "data: ")
		if !ok || (data != "[DONE]" && !json.Valid([]byte(data))) {
			t.Errorf("chunk %q is not one SSE data event", c)
		}
		acc.Write(c)
	}
	acc.Finish()
	if u := acc.Usage(); u.PromptTokens != 412 || u.CompletionTokens != 43 {
		t.Errorf("stream usage: %+v", u)
	}
	if n := len(sseScript().msgs); n != 3+sseChunkCount {
		t.Errorf("sse script has %d messages", n)
	}
}

func TestPercentileAndMedian(t *testing.T) {
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(i+1) * time.Millisecond
	}
	if p := percentile(ds, 0.5); p != 50*time.Millisecond {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(ds, 0.99); p != 99*time.Millisecond {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile(nil, 0.5); p != 0 {
		t.Errorf("p50 of nothing = %v", p)
	}
	if m := median([]time.Duration{3, -1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]time.Duration{4, 1, 2, 3}); m != 2 {
		t.Errorf("median of four = %v", m)
	}
}
