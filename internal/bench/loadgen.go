package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// lateAfter: a call that starts more than this after its scheduled time is
// counted as late. Go's timers park in epoll with millisecond resolution when
// the machine is idle, so sub-millisecond lag is normal and not reported.
const lateAfter = time.Millisecond

// callGrace bounds how long the calls of a run may outlive its schedule; a
// call still running then is cancelled and counted as an error.
const callGrace = 10 * time.Second

// sample is what one call of an open-loop run measured.
type sample struct {
	lat time.Duration // as the caller measured it (first send to last reply)
	lag time.Duration // actual start − scheduled start
	err error
}

// openLoop calls do(ctx, i) for i = 0…n-1 with n = rate × d, call i starting
// at start + i/rate whether or not earlier calls have finished (an open-loop
// generator: a slow call does not hold back the next, as with real traffic).
// Each call runs on its own goroutine. A call that starts late is still
// measured from its own first send, as Envoy would wait; its lag is kept so
// the report can say how many started late.
func openLoop(ctx context.Context, rate float64, d time.Duration, do func(ctx context.Context, i int) (time.Duration, error)) []sample {
	n := max(int(rate*d.Seconds()), 1)
	samples := make([]sample, n)
	interval := float64(time.Second) / rate

	ctx, cancel := context.WithTimeout(ctx, d+callGrace)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(float64(i) * interval))
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		if err := ctx.Err(); err != nil {
			for j := i; j < n; j++ {
				samples[j].err = err
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &samples[i]
			s.lag = time.Since(due)
			s.lat, s.err = do(ctx, i)
		}()
	}
	wg.Wait()
	return samples
}

// stats summarises the calls of one run (or one path of an interleaved run).
type stats struct {
	Calls    int // scheduled
	OK       int
	Errors   int
	Late     int // started more than lateAfter behind schedule
	P50, P99 time.Duration
	Max      time.Duration
	LagP99   time.Duration
	FirstErr string

	// Set by the caller for the measured stretch: CPU of this process per
	// scheduled call, and cores used meanwhile by everything else.
	CPUPerCall time.Duration
	OtherCPU   float64
}

// summarize computes the stats of the samples for which keep(i) is true
// (all of them when keep is nil). Percentiles are nearest-rank over the
// successful calls.
func summarize(samples []sample, keep func(i int) bool) stats {
	var st stats
	lats := make([]time.Duration, 0, len(samples))
	lags := make([]time.Duration, 0, len(samples))
	for i, s := range samples {
		if keep != nil && !keep(i) {
			continue
		}
		st.Calls++
		if s.err != nil {
			st.Errors++
			if st.FirstErr == "" {
				st.FirstErr = s.err.Error()
			}
			continue
		}
		st.OK++
		lats = append(lats, s.lat)
		lags = append(lags, s.lag)
		if s.lag > lateAfter {
			st.Late++
		}
	}
	slices.Sort(lats)
	slices.Sort(lags)
	st.P50, st.P99 = percentile(lats, 0.50), percentile(lats, 0.99)
	st.LagP99 = percentile(lags, 0.99)
	if len(lats) > 0 {
		st.Max = lats[len(lats)-1]
	}
	return st
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// median of durations (the mean of the middle two for an even count).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianGap is the median over runs of what one side adds to the other
// (with − base) at p50 or p99.
func medianGap[T any](runs []T, p99 bool, sides func(T) (base, with stats)) time.Duration {
	var d []time.Duration
	for _, r := range runs {
		base, with := sides(r)
		if p99 {
			d = append(d, with.P99-base.P99)
		} else {
			d = append(d, with.P50-base.P50)
		}
	}
	return median(d)
}
