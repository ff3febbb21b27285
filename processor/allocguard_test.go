//go:build !race

// The race detector's instrumentation allocates on its own, so the guard
// runs only in builds without -race (make test runs with it: this test is
// for go test ./processor/ and CI jobs without -race).

package processor

import (
	"context"
	"runtime"
	"testing"
)

// allocTarget is the heap a call may allocate: a 3 KB chat completion
// through the four phases with the cache and a rate limit on (the
// processor's share, as BenchmarkCall measures it). The guard fails only at
// twice that, on a gross regression, never on timing.
const allocTarget = 8 << 10

func TestAllocationsPerCall(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sse   bool
		limit uint64 // 0: report only
	}{{"buffered", false, 2 * allocTarget}, {"sse", true, 0}} {
		bytes := bytesPerCall(t, newBenchCall(tc.sse))
		t.Logf("%s: %d bytes per call (target %d for a buffered call)", tc.name, bytes, allocTarget)
		if tc.limit > 0 && bytes > tc.limit {
			t.Errorf("%s call allocates %d bytes, over twice the %d-byte target: see BenchmarkCall and its -memprofile",
				tc.name, bytes, allocTarget)
		}
	}
}

// bytesPerCall is the heap one call allocates, the least of three rounds
// (another goroutine of the test binary allocating at the same time can
// only add to a round).
func bytesPerCall(t *testing.T, bc *benchCall) uint64 {
	const calls = 200
	srv := benchServer()
	stream := &benchStream{ctx: context.Background(), msgs: bc.msgs}
	n := 0
	run := func() {
		n++
		bc.number(n)
		stream.next = 0
		if err := srv.Process(stream); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 { // pools and first-call work out of the way
		run()
	}
	best := ^uint64(0)
	var before, after runtime.MemStats
	for range 3 {
		runtime.ReadMemStats(&before)
		for range calls {
			run()
		}
		runtime.ReadMemStats(&after)
		best = min(best, (after.TotalAlloc-before.TotalAlloc)/calls)
	}
	if stream.immediate != 0 {
		t.Fatalf("%d calls answered by Tollgate; every call must reach the provider", stream.immediate)
	}
	return best
}
