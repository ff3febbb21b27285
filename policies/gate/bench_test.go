package gate_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/storage/memstore"
	"github.com/tollgate-dev/tollgate/storage/redisstore"
)

// BenchmarkGateCheck measures Check — what Envoy waits for — for a cache
// hit, a miss (cache read and a token taken, one round trip) and a call
// over its limit, against memstore and the Redis of the test environment;
// and Complete filling the cache (off the client's path). For Redis it
// reports round trips per call.
//
//	scripts/testenv.sh -- go test -run '^$' -bench BenchmarkGate ./policies/
func BenchmarkGateCheck(b *testing.B) {
	b.Run("memstore", func(b *testing.B) {
		benchGate(b, func(b *testing.B) (gate.Store, func() uint64) {
			return memstore.New(memstore.Options{}), nil
		})
	})
	b.Run("redis", func(b *testing.B) {
		url := testenv.RedisURL(b)
		benchGate(b, func(b *testing.B) (gate.Store, func() uint64) {
			s, err := redisstore.Open(url, redisstore.Options{Prefix: "bench-" + randomID() + ":"})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s, s.RoundTrips
		})
		// The floor: one PING on the same kind of client. What the Gate
		// adds on top of it is its own work (hashing, script, parsing).
		b.Run("floor-ping", func(b *testing.B) {
			s, err := redisstore.Open(url, redisstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			for b.Loop() {
				if err := s.Ping(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// A realistic chat-completion request body (~1 KB).
var benchBody = `{"model":"gpt-4o-mini","temperature":0.2,"user":"user-42","messages":[` +
	`{"role":"system","content":"You are a helpful assistant that answers questions about the company's internal documentation. Be concise."},` +
	`{"role":"user","content":"` + strings.Repeat("How do I rotate the API keys of the billing service? ", 14) + `"}]}`

func benchGate(b *testing.B, open func(b *testing.B) (gate.Store, func() uint64)) {
	run := func(b *testing.B, prepare func(g *gateRig) call, each func(g *gateRig, req gate.RequestInfo, i int)) {
		s, trips := open(b)
		g := newRig(b, s, func(o *gate.Options) { o.Timeout = 0; o.CompleteTimeout = 0 })
		c := prepare(g).info()
		for i := range 3 { // warm up: dial, load scripts
			each(g, c, i)
		}
		var before uint64
		if trips != nil {
			before = trips()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			each(g, c, i)
		}
		b.StopTimer()
		if trips != nil {
			b.ReportMetric(float64(trips()-before)/float64(b.N), "trips/op")
		}
	}
	both := call{tenant: "bench", user: "user-42", body: benchBody, headers: map[string]string{
		"Helicone-Cache-Enabled": "true", "Helicone-RateLimit-Policy": "1000000000;w=60;s=user",
		"Authorization": "Bearer sk-bench", "Cache-Control": "max-age=600"}}
	b.Run("hit", func(b *testing.B) {
		run(b, func(g *gateRig) call {
			g.respond(g.check(b, both), 200, `{"id":"chatcmpl-1","choices":[{"message":{"content":"Use the rotate command."}}]}`, 0)
			return both
		}, func(g *gateRig, req gate.RequestInfo, _ int) {
			if d, err := g.Check(context.Background(), req); err != nil || d.Hit == nil {
				b.Fatalf("not a hit: %v", err)
			}
		})
	})
	b.Run("miss", func(b *testing.B) {
		run(b, func(*gateRig) call { return both }, func(g *gateRig, req gate.RequestInfo, _ int) {
			if d, err := g.Check(context.Background(), req); err != nil || d.Hit != nil || d.Answer != nil {
				b.Fatalf("not a miss: %v", err)
			}
		})
	})
	b.Run("limited", func(b *testing.B) {
		c := both.with("Helicone-Cache-Enabled", "false", "Helicone-RateLimit-Policy", "1;w=3600")
		run(b, func(g *gateRig) call { g.check(b, c); return c }, func(g *gateRig, req gate.RequestInfo, _ int) {
			if d, err := g.Check(context.Background(), req); err != nil || !d.RateLimited {
				b.Fatalf("not limited: %v", err)
			}
		})
	})
	b.Run("complete-fill", func(b *testing.B) {
		// 1024 rotating keys: the first round stores, later ones find the
		// slot full; either way one round trip, off the client's path.
		decisions := make([]*gate.Decision, 1024)
		resp := gate.ResponseInfo{RequestID: "r", Status: 200, ContentType: "application/json",
			Body: []byte(`{"id":"chatcmpl-1","choices":[{"message":{"content":"Use the rotate command."}}]}`), LatencyMs: 300}
		run(b, func(g *gateRig) call {
			for i := range decisions {
				decisions[i] = g.check(b, both.with("Helicone-Cache-Seed", strconv.Itoa(i)))
			}
			return both
		}, func(g *gateRig, _ gate.RequestInfo, i int) {
			g.Complete(context.Background(), decisions[i%len(decisions)], resp)
		})
	})
}
