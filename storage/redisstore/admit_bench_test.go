package redisstore

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// The request path's round trip, measured on its own: Admit with a cache
// read (one slot, a miss) and one token bucket, the script every limited
// call runs.
//
//	scripts/testenv.sh -- go test -run '^$' -bench 'BenchmarkAdmit' -benchmem ./storage/redisstore/
//
// BenchmarkAdmit is closed loop (one caller after another, then as many as
// GOMAXPROCS×8): time and allocations per call. BenchmarkAdmitOpenLoop
// starts calls on a schedule (1,000 and 2,000 a second, each in its own
// goroutine, as ext_proc streams are) whatever the previous ones are doing,
// and reports the latency percentiles (and, apart, from each goroutine's
// start) measured from each call's scheduled
// start, so that a stall delays every call behind it as it would in
// production; PING on the same client is the floor.

func benchAdmitReq(tenant string, i int) gate.StoreAdmit {
	return gate.StoreAdmit{
		CacheKey: ratelimit.TenantKeyPrefix(tenant) + "c:" + strconv.Itoa(i%4096),
		Slots:    1,
		Buckets: []ratelimit.BucketTake{{
			BucketRef: ratelimit.BucketRef{Key: ratelimit.TenantKeyPrefix(tenant) + "rl:request:user-" + strconv.Itoa(i%64), Capacity: 1e12, Window: time.Minute},
			Cost:      1,
		}},
	}
}

func benchStore(b *testing.B, maxInFlight int) *Store {
	s, err := Open(testenv.RedisURL(b), Options{Prefix: "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":", MaxInFlight: maxInFlight})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	for i := range 8 { // dial, load the script
		if _, err := s.Admit(context.Background(), benchAdmitReq("bench", i)); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkAdmit(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		s := benchStore(b, 0)
		reqs := make([]gate.StoreAdmit, 4096)
		for i := range reqs {
			reqs[i] = benchAdmitReq("bench", i)
		}
		ctx := context.Background()
		b.ReportAllocs()
		trips := s.RoundTrips()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Admit(ctx, reqs[i%len(reqs)]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(s.RoundTrips()-trips)/float64(b.N), "trips/op")
	})
	b.Run("ping-serial", func(b *testing.B) {
		s := benchStore(b, 0)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Ping(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, inFlight := range benchInFlight {
		b.Run("parallel-inflight"+strconv.Itoa(inFlight), func(b *testing.B) {
			s := benchStore(b, inFlight)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(8)
			trips, writes, cpu0 := s.RoundTrips(), s.Writes(), cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := s.Admit(ctx, benchAdmitReq("bench", i)); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.ReportMetric(float64(s.RoundTrips()-trips)/float64(b.N), "trips/op")
			b.ReportMetric(float64(s.Writes()-writes)/float64(b.N), "writes/op")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// benchInFlight are the MaxInFlight settings compared (-1: no coalescing).
var benchInFlight = []int{-1, 4}

func BenchmarkAdmitOpenLoop(b *testing.B) {
	const dur = 5 * time.Second
	for _, rate := range []int{1000, 2000} {
		r := strconv.Itoa(rate) + "rps"
		for _, inFlight := range benchInFlight {
			b.Run("admit-"+r+"-inflight"+strconv.Itoa(inFlight), func(b *testing.B) {
				s := benchStore(b, inFlight)
				reqs := make([]gate.StoreAdmit, 4096)
				for i := range reqs {
					reqs[i] = benchAdmitReq("bench", i)
				}
				trips, writes := s.RoundTrips(), s.Writes()
				openLoop(b, rate, dur, func(ctx context.Context, i int) error {
					_, err := s.Admit(ctx, reqs[i%len(reqs)])
					return err
				})
				calls := dur.Seconds() * float64(rate)
				b.ReportMetric(float64(s.RoundTrips()-trips)/calls, "trips/op")
				b.ReportMetric(float64(s.Writes()-writes)/calls, "writes/op")
			})
		}
		b.Run("ping-"+r, func(b *testing.B) {
			s := benchStore(b, 0)
			openLoop(b, rate, dur, func(ctx context.Context, _ int) error { return s.Ping(ctx) })
		})
	}
}

// openLoop runs call rate times a second for d and reports p50, p99 and
// the maximum in µs, from each call's scheduled start.
func openLoop(b *testing.B, rate int, d time.Duration, call func(ctx context.Context, i int) error) {
	b.Helper()
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	lat, svc := make([]time.Duration, n), make([]time.Duration, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr sync.Once
	ctx := context.Background()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			if err := call(cctx, i); err != nil {
				failed.Add(1)
				firstErr.Do(func() { b.Logf("call %d: %v", i, err) })
			}
			cancel()
			lat[i], svc[i] = time.Since(at), time.Since(began)
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/op")
	// A loaded machine can stall a call past its second: counted, not
	// fatal, so that one stall does not lose the run's figures.
	b.ReportMetric(float64(failed.Load()), "failed")
	slices.Sort(lat)
	slices.Sort(svc)
	q := func(l []time.Duration, p float64) float64 { return float64(l[int(p*float64(n-1))].Microseconds()) }
	b.ReportMetric(q(lat, 0.50), "p50-µs")
	b.ReportMetric(q(lat, 0.99), "p99-µs")
	b.ReportMetric(q(lat, 1), "max-µs")
	// From the goroutine's start: without the pacer's own lateness.
	b.ReportMetric(q(svc, 0.50), "svc-p50-µs")
	b.ReportMetric(q(svc, 0.99), "svc-p99-µs")
}

// cpuTime is the CPU (user and system) this process has used: the test
// binary's own work, not Redis's.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
