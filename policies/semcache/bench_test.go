package semcache

import (
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
)

// BenchmarkIndexLookup100k is the in-process part of a semantic lookup:
// the nearest of 100k entries of one scope (the worst case: every entry
// in the scope searched) at 256 and 1536 dimensions (the mock's, and
// OpenAI's text-embedding-3-small). It reports the index's heap per entry.
func BenchmarkIndexLookup100k(b *testing.B) {
	for _, dims := range []int{256, 1536} {
		b.Run("dims="+strconv.Itoa(dims), func(b *testing.B) {
			const n = 100_000
			r := rand.New(rand.NewPCG(1, 2))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			x := newIndex(n, n)
			vec := make([]float32, dims)
			for i := range n {
				randomUnit(r, vec)
				x.add("scope", "{t:tenant}sc:0123456789abcdef:"+strconv.Itoa(i), vec, 1<<62)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			// A sweep builds the scope's compacted copy beside the old one:
			// the peak, read before the old one is collected.
			var swept runtime.MemStats
			debug.SetGCPercent(-1)
			x.sweep(0)
			runtime.ReadMemStats(&swept)
			debug.SetGCPercent(100)
			q := make([]float32, dims)
			randomUnit(r, q)
			for b.Loop() {
				if len(x.nearest("scope", q, 0, 1)) == 0 {
					b.Fatal("no entry found")
				}
			}
			// After the loop: ResetTimer (which b.Loop calls) drops metrics.
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heapB/entry")
			b.ReportMetric(float64(swept.HeapAlloc-before.HeapAlloc)/n, "peakB/entry")
			runtime.KeepAlive(x)
		})
	}
}

func randomUnit(r *rand.Rand, v []float32) {
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	normalize(v)
}
