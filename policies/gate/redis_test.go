package gate_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/storage/redisstore"
)

// TestTwoReplicasExactLimit: two Gates, each with its own Redis client (two
// Tollgate replicas), share one Redis; 500 parallel calls under a quota of
// 100 admit exactly 100.
func TestTwoReplicasExactLimit(t *testing.T) {
	runExactAdmission(t, testenv.RedisURL(t))
}

func runExactAdmission(t *testing.T, url string) {
	prefix := redisstore.Options{Prefix: "test-" + randomID() + ":"}
	var rigs []*gateRig
	for range 2 {
		s, err := redisstore.Open(url, prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		rigs = append(rigs, newRig(t, s))
	}
	const calls, quota = 500, 100
	var admitted, limited atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := rigs[i%2].Check(context.Background(), limit("100;w=86400").info())
			switch {
			case err != nil:
				t.Error(err)
			case d.RateLimited:
				limited.Add(1)
			case d.Answer == nil:
				admitted.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if admitted.Load() != quota || limited.Load() != calls-quota {
		t.Fatalf("admitted %d, limited %d; want exactly %d and %d", admitted.Load(), limited.Load(), quota, calls-quota)
	}
	for i, r := range rigs {
		if n := r.metric(t, "tollgate_ratelimit_checks_total", "result", "fail_open"); n != 0 {
			t.Fatalf("gate %d failed open %v times", i, n)
		}
	}
}

// TestCacheControlTTLExpiry: max-age=3 keeps the entry about three
// seconds (long enough for the hit right after the fill to come first on
// a loaded machine).
func TestCacheControlTTLExpiry(t *testing.T) {
	forEachBackend(t, runTTLExpiry)
}

func runTTLExpiry(t *testing.T, be backend) {
	g := newRig(t, be.open(t))
	c := cacheOn.with("Cache-Control", "max-age=3")
	start := time.Now()
	g.respond(g.check(t, c), 200, "A", 0)
	if got := cacheState(g.check(t, c)); got != "HIT:0:A" {
		t.Fatalf("right after the fill: %s", got)
	}
	testenv.WaitFor(t, 15*time.Second, "expiry", func() bool { return cacheState(g.check(t, c)) == "MISS" })
	if el := time.Since(start); el < 2900*time.Millisecond {
		t.Fatalf("expired after %v, before max-age=3", el)
	}
}

// TestRedisRoundTrips: a request costs one round trip whatever mix of
// cache and limit it uses; a flushed script cache costs one extra, once.
func TestRedisRoundTrips(t *testing.T) {
	srv := testenv.StartRedis(t)
	s, err := redisstore.Open(srv.URL(), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g := newRig(t, s)
	trips := func(f func()) uint64 {
		before := s.RoundTrips()
		f()
		return s.RoundTrips() - before
	}
	both := cacheOn.with("Helicone-RateLimit-Policy", "1000;w=60")
	// Load the scripts (EVALSHA, NOSCRIPT, EVAL) before counting.
	g.respond(g.check(t, both.with("Helicone-Cache-Seed", "warm-up")), 200, "W", 0)
	for _, tt := range []struct {
		name string
		c    call
	}{
		{"cache and limit, miss", both.with("Helicone-Cache-Seed", "x")},
		{"limit only", limit("1000;w=60")},
		{"cache only", cacheOn},
		{"cache only, 5 slots", cacheOn.with("Helicone-Cache-Bucket-Max-Size", "5")},
	} {
		if n := trips(func() { g.check(t, tt.c) }); n != 1 {
			t.Errorf("%s: %d round trips, want 1", tt.name, n)
		}
	}
	d := g.check(t, both)
	if n := trips(func() { g.respond(d, 200, "A", 0) }); n != 1 {
		t.Errorf("fill: %d round trips", n)
	}
	if n := trips(func() {
		if got := cacheState(g.check(t, both)); got != "HIT:0:A" {
			t.Errorf("hit: %s", got)
		}
	}); n != 1 {
		t.Errorf("hit: %d round trips", n)
	}
	if n := trips(func() { g.check(t, cacheOn.with("Helicone-Cache-Enabled", "false")) }); n != 0 {
		t.Errorf("nothing to do: %d round trips", n)
	}

	// After SCRIPT FLUSH (or a Redis restart) the script is sent again.
	if err := s.Client().ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if n := trips(func() { g.check(t, limit("1000;w=60")) }); n != 2 {
		t.Errorf("after SCRIPT FLUSH: %d round trips, want 2 (EVALSHA, EVAL)", n)
	}
	if n := trips(func() { g.check(t, limit("1000;w=60")) }); n != 1 {
		t.Errorf("after reload: %d round trips, want 1", n)
	}
	if g.metric(t, "tollgate_store_errors_total", "op", "admit") != 0 {
		t.Error("store errors counted")
	}
}

// TestRedisOutage: Redis killed mid-run, or hung, makes the Gate apply its
// fail mode within its timeout; when Redis comes back on the same port the
// limits apply again.
func TestRedisOutage(t *testing.T) {
	srv := testenv.StartRedis(t)
	type mode struct {
		name   string
		closed bool
		rig    *gateRig
	}
	modes := []*mode{{name: "fail-open"}, {name: "fail-closed", closed: true}}
	for _, m := range modes {
		s, err := redisstore.Open(srv.URL(), redisstore.Options{Prefix: m.name + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		m.rig = newRig(t, s, func(o *gate.Options) {
			o.FailClosed = m.closed
			o.Timeout = 250 * time.Millisecond // the default is 50 ms; -race on 2 cores needs room
			o.CompleteTimeout = 250 * time.Millisecond
		})
	}
	c := cacheOn.with("Helicone-RateLimit-Policy", "3;w=3600")
	for _, m := range modes {
		if d := m.rig.check(t, c); d.Answer != nil || header(d.ResponseHeaders, "helicone-ratelimit-remaining") != "2" {
			t.Fatalf("%s healthy: %+v", m.name, d)
		}
	}

	down := func(what string, calls int, wantFailures float64) {
		for _, m := range modes {
			for range calls {
				start := time.Now()
				d := m.rig.check(t, c)
				if el := time.Since(start); el > 2*time.Second {
					t.Errorf("%s, %s: Check took %v", m.name, what, el)
				}
				switch {
				case m.closed && (d.Answer == nil || d.Answer.Status != 503 || !d.FailedClosed):
					t.Fatalf("%s, %s: %+v, want a 503", m.name, what, d)
				case !m.closed && (d.Answer != nil || header(d.ResponseHeaders, "helicone-ratelimit-limit") != "" ||
					header(d.ResponseHeaders, "helicone-cache") != "MISS"):
					t.Fatalf("%s, %s: %+v, want a pass without limit headers", m.name, what, d)
				}
				// Complete must not hang either.
				start = time.Now()
				m.rig.respond(d, 200, "A", 0)
				if el := time.Since(start); el > 2*time.Second {
					t.Errorf("%s, %s: Complete took %v", m.name, what, el)
				}
			}
			result := "fail_open"
			if m.closed {
				result = "fail_closed"
			}
			if got := m.rig.metric(t, "tollgate_ratelimit_checks_total", "result", result); got != wantFailures {
				t.Fatalf("%s, %s: %s = %v, want %v", m.name, what, result, got, wantFailures)
			}
		}
	}

	t0 := time.Now()
	srv.Pause() // hung: connections open, no answers
	down("paused", 3, 3)
	srv.Resume()
	t.Logf("paused phase: %v", time.Since(t0))
	t0 = time.Now()
	srv.Kill() // crashed: connection refused
	down("killed", 5, 8)
	t.Logf("killed phase: %v", time.Since(t0))

	t0 = time.Now()
	srv.Start() // same port, empty (no persistence)
	defer func() { t.Logf("recovery phase: %v", time.Since(t0)) }()
	for _, m := range modes {
		testenv.WaitFor(t, 10*time.Second, m.name+" recovery", func() bool {
			d := m.rig.check(t, c)
			return d.Answer == nil && header(d.ResponseHeaders, "helicone-ratelimit-limit") == "3"
		})
		// The restarted Redis is empty: a fresh bucket of 3, one taken above.
		for i, want := range []string{"1", "0", "429"} {
			d := m.rig.check(t, c)
			if want == "429" {
				if !d.RateLimited {
					t.Fatalf("%s after recovery, call %d: %+v, want 429", m.name, i, d)
				}
				continue
			}
			if got := header(d.ResponseHeaders, "helicone-ratelimit-remaining"); got != want {
				t.Fatalf("%s after recovery, call %d: remaining %q, want %s", m.name, i, got, want)
			}
		}
	}
}

// TestDefaultTimeoutBoundsAHungRedis: with the default 50 ms timeout, a
// Redis that stopped answering costs a call about 50 ms, not seconds.
func TestDefaultTimeoutBoundsAHungRedis(t *testing.T) {
	srv := testenv.StartRedis(t)
	c, err := redisstore.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	g := newRig(t, newRedisStore(t, c), func(o *gate.Options) { o.Timeout = 0 })
	g.check(t, limit("5;w=60")) // dial and load the script while healthy
	srv.Pause()
	defer srv.Resume()
	var worst time.Duration
	for range 5 {
		start := time.Now()
		if d := g.check(t, limit("5;w=60")); d.Answer != nil {
			t.Fatalf("fail-open expected: %+v", d)
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("slowest Check against a hung Redis: %v", worst)
	if worst > time.Second {
		t.Fatalf("a hung Redis stalled Check for %v", worst)
	}
}

// TestRedisSentinel: the redis+sentinel:// form against a real Sentinel
// watching a private Redis, through the exact-admission test.
func TestRedisSentinel(t *testing.T) {
	addr := testenv.StartRedisSentinel(t, testenv.StartRedis(t))
	runExactAdmission(t, "redis+sentinel://"+addr+"?master=tg")
}
