package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Targets from DESIGN §7, all stated at 1,000 calls/s.
const (
	targetRate          = 1000
	targetExtProcP50    = 100 * time.Microsecond // over the floor
	targetExtProcP99    = 500 * time.Microsecond // over the floor
	targetDataPlaneP50  = 500 * time.Microsecond // over the mock called directly
	targetDataPlaneP99  = 2 * time.Millisecond
	targetResidentBytes = 64 << 20
	targetIngestRows    = 50000 // rows/s into ClickHouse from one writer
)

// Section titles; the test looks for them.
const (
	titleReport    = "# Tollgate benchmark"
	titleExtProc   = "## Processor time per call (ext_proc)"
	titleMemory    = "## Memory"
	titleDataPlane = "## Data plane added latency"
	titleGate      = "## Cache hit, miss and rate limited"
	titleIngest    = "## Log ingestion into ClickHouse"
	titleHeap      = "## Processor heap per call"
)

func writeReport(w io.Writer, r *results) {
	m, c := r.Machine, r.Config
	fmt.Fprintf(w, "%s\n\n", titleReport)
	fmt.Fprintf(w, "| | |\n|---|---|\n")
	fmt.Fprintf(w, "| Date | %s |\n", m.Date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "| Machine | %s/%s, %s, %d cores |\n", m.OS, m.Arch, m.CPU, m.Cores)
	fmt.Fprintf(w, "| Go | %s, GOMAXPROCS %d (one process: generator and servers share it) |\n", m.GoVersion, m.GOMAXPROCS)
	fmt.Fprintf(w, "| Runs | %s each after %s unmeasured warm-up, %d rep(s) |\n", c.Duration, warmupFor(c.Duration), c.Reps)
	fmt.Fprintf(w, "| Tollgate | log sink: %s; cache and rate-limit store: %s |\n", sinkDesc(c.Sink), storeDesc(c.Store))
	for _, s := range c.Skipped {
		fmt.Fprintf(w, "| Skipped | %s |\n", s)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Times in milliseconds. Δ = Tollgate − floor (data plane: through the data plane − direct), "+
		"judged on the median over the runs, as DESIGN §7 asks. The targets are stated for %d calls/s; "+
		"other rates show the same comparison in parentheses, for information.\n\n", targetRate)
	if busy, total := r.busyRuns(); busy > 0 {
		fmt.Fprintf(w, "**Caveat: during %d of %d runs other programs used %.1f cores or more "+
			"(see *Others' CPU* in the run tables). Those figures measure the machine's load as much as Tollgate; "+
			"rerun on a quiet machine before judging the targets.**\n\n", busy, total, busyCores)
	}

	if len(r.ExtProc) > 0 {
		writeExtProc(w, r.ExtProc)
		writeGate(w, r.ExtProc, r.Config)
		writeMemory(w, r.ExtProc)
	}
	writeProcessorHeap(w, r.Processor)
	if r.Ingest != nil {
		writeIngest(w, r.Ingest)
	}
	if r.IngestCluster != nil {
		writeIngestCluster(w, r.IngestCluster, r.Ingest)
	}
	writeWAL(w, r.WAL)
	writeSemantic(w, r.Semantic)
	if len(r.DataPlane) > 0 {
		writeDataPlane(w, r.DataPlane)
	}
}

// busyRuns counts the measured runs during which other programs competed
// for the CPU, out of all runs.
func (r *results) busyRuns() (busy, total int) {
	count := func(other float64) {
		total++
		if other >= busyCores {
			busy++
		}
	}
	for _, e := range r.ExtProc {
		for _, p := range e.Pairs {
			count(p.Floor.OtherCPU)
			count(p.Tollgate.OtherCPU)
		}
	}
	for _, d := range r.DataPlane {
		for _, run := range d.Runs {
			count(run.OtherCPU)
		}
	}
	return busy, total
}

func writeExtProc(w io.Writer, rs []*extprocResult) {
	fmt.Fprintf(w, "%s\n\n", titleExtProc)
	fmt.Fprintf(w, "Each call opens one gRPC stream on a shared connection and waits for every reply, as Envoy does: "+
		"request headers (with Helicone user, session and two properties), a 2 KB chat-completion body, "+
		"response headers and the response body with usage (*extproc*), or for *sse* an event-stream response "+
		"switched to STREAMED and %d body chunks ending with the usage chunk and [DONE]. "+
		"Time runs from the first Send to the end of the stream after CloseSend. Calls start on an open-loop "+
		"schedule (call i at start + i/rate); *late* counts calls that started more than %s behind it "+
		"(Go's timers wake up to ~1 ms late on an idle machine, so some are always late). "+
		"Floor: a do-nothing server answering every message with an empty CONTINUE. "+
		"Tollgate: `processor.New` with the log sink and the cache / rate-limit gate on, as DESIGN §7 measures it: "+
		"the requests carry `helicone-cache-enabled: true` and `helicone-ratelimit-policy: %s` (never reached), and "+
		"every call of *extproc* and *sse* sends a body no other call sends, so each is a cache MISS plus a rate-limit "+
		"check in one store round trip at the request body, and a cache fill after the response. "+
		"*hit* and *limited* are the calls the gate answers itself at the request body (two round trips; see below). "+
		"Each run gets a fresh server, connection and store (Redis: a key prefix of its own).\n\n"+
		"A call's time runs from its first message to its last reply, as Envoy waits; the cache fill after the last "+
		"reply is not in it (it still costs CPU, counted in the CPU column).\n\n", sseChunkCount, lateAfter, policyHigh)

	fmt.Fprintf(w, "| Scenario | Calls/s | Pairs | Floor p50 / p99 | Tollgate p50 / p99 | Δp50 | Target | p50 | Δp99 | Target | p99 | CPU µs/call F / T |\n")
	fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|--:|---|--:|--:|---|--:|\n")
	for _, r := range rs {
		official := judged(r.Scenario == scenarioExtProc && r.Rate == targetRate)
		var fp50, fp99, tp50, tp99, fcpu, tcpu []time.Duration
		for _, p := range r.Pairs {
			fp50, fp99 = append(fp50, p.Floor.P50), append(fp99, p.Floor.P99)
			tp50, tp99 = append(tp50, p.Tollgate.P50), append(tp99, p.Tollgate.P99)
			fcpu, tcpu = append(fcpu, p.Floor.CPUPerCall), append(tcpu, p.Tollgate.CPUPerCall)
		}
		d50, d99 := r.medianDiff(false), r.medianDiff(true)
		fmt.Fprintf(w, "| %s | %d | %d | %s / %s | %s / %s | %s | ≤ %s | %s | %s | ≤ %s | %s | %s / %s |\n",
			r.Scenario, r.Rate, len(r.Pairs),
			ms(median(fp50)), ms(median(fp99)), ms(median(tp50)), ms(median(tp99)),
			signedMs(d50), signedMs(targetExtProcP50), verdict(d50 <= targetExtProcP50, official),
			signedMs(d99), signedMs(targetExtProcP99), verdict(d99 <= targetExtProcP99, official),
			us(median(fcpu)), us(median(tcpu)))
	}
	fmt.Fprintf(w, "\nFloor and Tollgate columns are medians over the runs; Δ is the median of the paired differences. "+
		"CPU µs/call is this whole process's CPU time (generator, gRPC client and server) during the run divided by "+
		"the calls, so T − F is what the processor costs in CPU per call. "+
		"*Others' CPU* (per run, below) is the cores used meanwhile by other programs and the hypervisor (steal): "+
		"from %.1f up the run competed for the CPU and its figures are suspect.\n\n", busyCores)

	fmt.Fprintf(w, "### Runs\n\n")
	fmt.Fprintf(w, "| Scenario | Calls/s | Rep | Order | Floor p50 | Floor p99 | Tollgate p50 | Tollgate p99 | Δp50 | Δp99 | Calls F / T | Errors F / T | Late F / T | Start lag p99 F / T | CPU µs/call F / T | Others' CPU F / T |\n")
	fmt.Fprintf(w, "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var errs []string
	for _, r := range rs {
		for _, p := range r.Pairs {
			order := "F T"
			if !p.FloorFirst {
				order = "T F"
			}
			f, t := p.Floor, p.Tollgate
			fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %d / %d | %d / %d | %d / %d | %s / %s | %s / %s | %s / %s |\n",
				r.Scenario, r.Rate, p.Rep, order, ms(f.P50), ms(f.P99), ms(t.P50), ms(t.P99),
				signedMs(t.P50-f.P50), signedMs(t.P99-f.P99), f.OK, t.OK, f.Errors, t.Errors, f.Late, t.Late,
				ms(f.LagP99), ms(t.LagP99), us(f.CPUPerCall), us(t.CPUPerCall), cores(f.OtherCPU), cores(t.OtherCPU))
			errs = appendErr(errs, fmt.Sprintf("%s %d/s rep %d floor", r.Scenario, r.Rate, p.Rep), f.stats)
			errs = appendErr(errs, fmt.Sprintf("%s %d/s rep %d Tollgate", r.Scenario, r.Rate, p.Rep), t.stats)
		}
	}
	writeErrors(w, errs)
	fmt.Fprintln(w)
}

// writeGate: the calls the gate decides — HIT, MISS (the extproc scenario),
// LIMITED — side by side at the gate rate, with Redis round trips per call.
func writeGate(w io.Writer, rs []*extprocResult, c *config) {
	type row struct {
		label, rtEnvoy, want string
		r                    *extprocResult
	}
	var rows []row
	for _, r := range rs {
		switch {
		case r.Scenario == scenarioHit:
			rows = append(rows, row{"HIT", "2", "1", r})
		case r.Scenario == scenarioLimited:
			rows = append(rows, row{"LIMITED (429)", "2", "1", r})
		case r.Scenario == scenarioExtProc && r.Rate == c.GateRate:
			rows = append(rows, row{"MISS + fill (extproc)", "4", "2 (1 before the call, 1 fill after)", r})
		}
	}
	if len(rows) == 0 {
		return
	}
	slices.SortStableFunc(rows, func(a, b row) int { return strings.Compare(a.label, b.label) })
	fmt.Fprintf(w, "%s\n\n", titleGate)
	fmt.Fprintf(w, "Processor time per call when the gate answers (HIT: the same body every call, filled once by a call "+
		"before the warm-up; LIMITED: `helicone-ratelimit-policy: %s`, its one token taken by a call before the warm-up, "+
		"then a new body every call: a cache miss and a 429) and for the common MISS. HIT and LIMITED end at the "+
		"request body with an immediate response (two ext_proc round trips); their floor plays the same two messages. "+
		"Store: %s. Redis round trips per call: `RoundTrips()` of the run's store after the measured run minus before, "+
		"divided by the calls (median over the runs; n/a without Redis). DESIGN §7: one round trip on the request path.\n\n",
		policyOfOne, storeDesc(c.Store))
	fmt.Fprintf(w, "| Call | Envoy round trips | Calls/s | Pairs | Floor p50 / p99 | Tollgate p50 / p99 | Δp50 | Δp99 | Redis trips/call | Expected | |\n")
	fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|\n")
	for _, x := range rows {
		var fp50, fp99, tp50, tp99 []time.Duration
		var trips []float64
		for _, p := range x.r.Pairs {
			fp50, fp99 = append(fp50, p.Floor.P50), append(fp99, p.Floor.P99)
			tp50, tp99 = append(tp50, p.Tollgate.P50), append(tp99, p.Tollgate.P99)
			if p.Tollgate.RoundTrips >= 0 {
				trips = append(trips, p.Tollgate.RoundTrips)
			}
		}
		rt, v := "n/a", ""
		if len(trips) > 0 {
			slices.Sort(trips)
			m := trips[(len(trips)-1)/2]
			rt = fmt.Sprintf("%.2f", m)
			want, _ := strconv.Atoi(x.want[:1])
			v = verdict(m <= float64(want)+0.05, targetApplies)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %d | %s / %s | %s / %s | %s | %s | %s | %s | %s |\n",
			x.label, x.rtEnvoy, x.r.Rate, len(x.r.Pairs),
			ms(median(fp50)), ms(median(fp99)), ms(median(tp50)), ms(median(tp99)),
			signedMs(x.r.medianDiff(false)), signedMs(x.r.medianDiff(true)), rt, x.want, v)
	}
	fmt.Fprintln(w)
}

func writeIngest(w io.Writer, r *ingestResult) {
	fmt.Fprintf(w, "%s\n\n", titleIngest)
	fmt.Fprintf(w, "One `chstore.Writer` (default batch size and flush interval; QueueSize above N, so ClickHouse and not "+
		"the disk spool is measured) on a fresh database: N records built beforehand (distinct ids, %d bytes of request + "+
		"response body each, every body different), written from one goroutine as fast as `Write` takes them, then `Flush`. "+
		"rows/s = N / (first Write → Flush returned). Write cost = the Write loop's time / N: the request-path cost of "+
		"logging a record, batch sealing included, while the writer's goroutines insert meanwhile. "+
		"Delivery is checked with `SELECT count() FROM <db>.requests FINAL`.\n\n", r.BodyBytes)
	fmt.Fprintf(w, "| N | Elapsed | Rows/s | Target | | Write ns/op | count() FINAL | |\n")
	fmt.Fprintf(w, "|--:|--:|--:|--:|---|--:|--:|---|\n")
	got := "all arrived"
	if r.Final != uint64(r.Rows) {
		got = fmt.Sprintf("**%d missing**", int64(r.Rows)-int64(r.Final))
	}
	fmt.Fprintf(w, "| %d | %s | %.0f | ≥ %d | %s | %.0f | %d | %s |\n",
		r.Rows, r.Elapsed.Round(time.Millisecond), r.rowsPerSec(), targetIngestRows,
		verdict(r.rowsPerSec() >= targetIngestRows, targetApplies), r.writeNs(), r.Final, got)
	if len(r.Logs) > 0 {
		fmt.Fprintf(w, "\nThe writer logged (warnings and errors, counted):\n\n")
		for _, l := range r.Logs {
			fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(l, "|", "\\|"))
		}
	}
	fmt.Fprintln(w)
}

func sinkDesc(s string) string {
	switch s {
	case sinkClickHouse:
		return "ClickHouse (chstore.Writer, a database of this run's own)"
	case sinkFile:
		return "JSON-lines file"
	}
	return s
}

func storeDesc(s string) string {
	switch s {
	case storeRedis:
		return "Redis (storage/redisstore)"
	case storeMemory:
		return "in-process (storage/memstore)"
	case storeNone:
		return "none (no cache, no rate limit)"
	}
	return s
}

func writeMemory(w io.Writer, rs []*extprocResult) {
	fmt.Fprintf(w, "%s\n\n", titleMemory)
	fmt.Fprintf(w, "Peaks sampled every 250 ms during the measured runs. VmRSS is the whole process — load generator, "+
		"gRPC client, floor or Tollgate server — so the Tollgate column is an upper bound for the processor alone, "+
		"and the difference to the floor runs is the better estimate of what Tollgate holds. "+
		"Go's RSS shrinks slowly after a peak, so a floor run right after a Tollgate run may inherit some of it. "+
		"Heap objects: `/memory/classes/heap/objects:bytes` from runtime/metrics.\n\n")
	fmt.Fprintf(w, "| Scenario | Calls/s | VmRSS floor | VmRSS Tollgate | Δ | Heap objects floor / Tollgate | Target | |\n")
	fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|--:|---|\n")
	for _, r := range rs {
		var fRSS, tRSS, fHeap, tHeap uint64
		for _, p := range r.Pairs {
			fRSS, tRSS = max(fRSS, p.Floor.Mem.RSS), max(tRSS, p.Tollgate.Mem.RSS)
			fHeap, tHeap = max(fHeap, p.Floor.Mem.HeapObjs), max(tHeap, p.Tollgate.Mem.HeapObjs)
		}
		official := judged(r.Scenario == scenarioExtProc && r.Rate == targetRate)
		v := "n/a"
		if tRSS > 0 {
			v = verdict(tRSS <= targetResidentBytes, official)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s / %s | ≤ %s | %s |\n",
			r.Scenario, r.Rate, mib(fRSS), mib(tRSS), signedMib(int64(tRSS)-int64(fRSS)),
			mib(fHeap), mib(tHeap), mib(targetResidentBytes), v)
	}
	fmt.Fprintln(w)
}

func writeDataPlane(w io.Writer, rs []*dpResult) {
	fmt.Fprintf(w, "%s\n\n", titleDataPlane)
	fmt.Fprintf(w, "Mock provider (no latency), Tollgate's processor (gRPC, log sink and gate on; a new body every call, so "+
		"every call is a cache MISS) and the local data plane "+
		"run in this process on loopback. One run alternates call by call between the mock directly and "+
		"the same request through the data plane; the rate is per path (so twice as many calls in total). "+
		"Each path has its own http.Client and Transport. Time runs from sending the request to reading the "+
		"whole response body. CPU µs/pair: this process's CPU per direct call plus data plane call.\n\n")
	fmt.Fprintf(w, "| Calls/s (each path) | Runs | Direct p50 / p99 | Data plane p50 / p99 | Added p50 | Target | p50 | Added p99 | Target | p99 |\n")
	fmt.Fprintf(w, "|--:|--:|--:|--:|--:|--:|---|--:|--:|---|\n")
	for _, r := range rs {
		official := judged(r.Rate == targetRate)
		var dp50, dp99, pp50, pp99 []time.Duration
		for _, run := range r.Runs {
			dp50, dp99 = append(dp50, run.Direct.P50), append(dp99, run.Direct.P99)
			pp50, pp99 = append(pp50, run.Plane.P50), append(pp99, run.Plane.P99)
		}
		d50, d99 := r.medianDiff(false), r.medianDiff(true)
		fmt.Fprintf(w, "| %d | %d | %s / %s | %s / %s | %s | ≤ %s | %s | %s | ≤ %s | %s |\n",
			r.Rate, len(r.Runs), ms(median(dp50)), ms(median(dp99)), ms(median(pp50)), ms(median(pp99)),
			signedMs(d50), signedMs(targetDataPlaneP50), verdict(d50 <= targetDataPlaneP50, official),
			signedMs(d99), signedMs(targetDataPlaneP99), verdict(d99 <= targetDataPlaneP99, official))
	}
	fmt.Fprintf(w, "\n### Runs\n\n")
	fmt.Fprintf(w, "| Calls/s | Rep | Direct p50 | Direct p99 | Data plane p50 | Data plane p99 | Δp50 | Δp99 | Calls D / P | Errors D / P | Late D / P | CPU µs/pair | Others' CPU |\n")
	fmt.Fprintf(w, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var errs []string
	for _, r := range rs {
		for _, run := range r.Runs {
			d, p := run.Direct, run.Plane
			fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %s | %s | %s | %d / %d | %d / %d | %d / %d | %s | %s |\n",
				r.Rate, run.Rep, ms(d.P50), ms(d.P99), ms(p.P50), ms(p.P99),
				signedMs(p.P50-d.P50), signedMs(p.P99-d.P99), d.OK, p.OK, d.Errors, p.Errors, d.Late, p.Late,
				us(run.CPUPerPair), cores(run.OtherCPU))
			errs = appendErr(errs, fmt.Sprintf("data plane %d/s rep %d direct", r.Rate, run.Rep), d)
			errs = appendErr(errs, fmt.Sprintf("data plane %d/s rep %d through the data plane", r.Rate, run.Rep), p)
		}
	}
	writeErrors(w, errs)
	var logs []string
	for _, r := range rs {
		for _, l := range r.Logs {
			logs = append(logs, fmt.Sprintf("%d/s: %s", r.Rate, l))
		}
	}
	if len(logs) > 0 {
		fmt.Fprintf(w, "\nThe data plane logged (warnings and errors, counted, warm-up included):\n\n")
		for _, l := range logs {
			fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(l, "|", "\\|"))
		}
	}
	fmt.Fprintln(w)
}

func appendErr(errs []string, what string, st stats) []string {
	if st.Errors == 0 {
		return errs
	}
	return append(errs, fmt.Sprintf("%s: %d failed, first: %s", what, st.Errors, st.FirstErr))
}

func writeErrors(w io.Writer, errs []string) {
	if len(errs) == 0 {
		return
	}
	fmt.Fprintf(w, "\nErrors:\n\n")
	for _, e := range errs {
		fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(e, "|", "\\|"))
	}
}

// judged says whether a row's target applies to it (the design's
// scenario and rate); a typed flag, so a verdict's two arguments cannot be
// swapped.
type judged bool

// targetApplies judges a row that has one target whatever its scenario.
const targetApplies judged = true

// verdict is PASS or MISS; in parentheses where the target does not apply.
func verdict(ok bool, official judged) string {
	v := "MISS"
	if ok {
		v = "PASS"
	}
	if !official {
		return "(" + v + ")"
	}
	return "**" + v + "**"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

func us(d time.Duration) string {
	if d < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond))
}

func cores(c float64) string {
	if c < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", c)
}

func signedMs(d time.Duration) string {
	return fmt.Sprintf("%+.3f", float64(d)/float64(time.Millisecond))
}

func mib(b uint64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func signedMib(b int64) string { return fmt.Sprintf("%+.1f MiB", float64(b)/(1<<20)) }
