package main

import (
	"fmt"
	"io"
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
)

// Section titles; the test looks for them.
const (
	titleReport    = "# Tollgate benchmark"
	titleExtProc   = "## Processor time per call (ext_proc)"
	titleMemory    = "## Memory"
	titleDataPlane = "## Data plane added latency"
)

func writeReport(w io.Writer, r *results) {
	m, c := r.Machine, r.Config
	fmt.Fprintf(w, "%s\n\n", titleReport)
	fmt.Fprintf(w, "| | |\n|---|---|\n")
	fmt.Fprintf(w, "| Date | %s |\n", m.Date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "| Machine | %s/%s, %s, %d cores |\n", m.OS, m.Arch, m.CPU, m.Cores)
	fmt.Fprintf(w, "| Go | %s, GOMAXPROCS %d (one process: generator and servers share it) |\n", m.GoVersion, m.GOMAXPROCS)
	fmt.Fprintf(w, "| Runs | %s each after %s unmeasured warm-up, %d rep(s), log sink: %s |\n\n",
		c.Duration, warmupFor(c.Duration), c.Reps, c.Sink)
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
		writeMemory(w, r.ExtProc)
	}
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
		"Tollgate: `processor.New` with the log sink on (no cache or rate limit exists in the processor yet). "+
		"Each run gets a fresh server and connection.\n\n", sseChunkCount, lateAfter)

	fmt.Fprintf(w, "| Scenario | Calls/s | Pairs | Floor p50 / p99 | Tollgate p50 / p99 | Δp50 | Target | p50 | Δp99 | Target | p99 | CPU µs/call F / T |\n")
	fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|--:|---|--:|--:|---|--:|\n")
	for _, r := range rs {
		official := r.Scenario == scenarioExtProc && r.Rate == targetRate
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
		official := r.Scenario == scenarioExtProc && r.Rate == targetRate
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
	fmt.Fprintf(w, "Mock provider (no latency), Tollgate's processor (gRPC, log sink on) and the local data plane "+
		"run in this process on loopback. One run alternates call by call between the mock directly and "+
		"the same request through the data plane; the rate is per path (so twice as many calls in total). "+
		"Each path has its own http.Client and Transport. Time runs from sending the request to reading the "+
		"whole response body. CPU µs/pair: this process's CPU per direct call plus data plane call.\n\n")
	fmt.Fprintf(w, "| Calls/s (each path) | Runs | Direct p50 / p99 | Data plane p50 / p99 | Added p50 | Target | p50 | Added p99 | Target | p99 |\n")
	fmt.Fprintf(w, "|--:|--:|--:|--:|--:|--:|---|--:|--:|---|\n")
	for _, r := range rs {
		official := r.Rate == targetRate
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

// verdict is PASS or MISS; in parentheses where the target does not apply.
func verdict(ok, official bool) string {
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
