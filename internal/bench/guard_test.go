package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// The guard: a few seconds inside `make test` that fail only on a gross
// regression of what `make bench` measures at length — never on a timing,
// which a loaded test machine cannot judge. It counts what a call costs in
// work: Redis commands, ext_proc streams, heap bytes.

// Heap per call the guard allows: twice the targets (8 KiB for a
// 3 KB chat completion). The SSE call has no target of its own; its guard
// is twice its figure when the guard was written (29 KiB).
const (
	guardHeapBuffered = 2 * targetHeapPerCall
	guardHeapSSE      = 64 << 10
)

// maxStreamsPerPlainCall is the ext_proc streams a call without retries or
// fallbacks may open through the data plane configured as envoy/ configures
// Envoy: the router-level one only (its route's cluster has no upstream
// filter; only a call that asks for attempts is re-routed to the *_attempts
// cluster, which opens a second stream per attempt).
const maxStreamsPerPlainCall = 1

// TestGuardProcessorHeap: the processor's heap per call (Process fed from
// memory, as processor's BenchmarkCall) stays under twice the target. Run
// under the race detector (as `make test` runs every test), sync.Pool drops
// a quarter of what is put back, so pooled buffers are allocated again:
// raceHeapSlack allows for that, and the check still runs.
func TestGuardProcessorHeap(t *testing.T) {
	for _, c := range []struct {
		sse   bool
		limit float64
	}{{false, guardHeapBuffered}, {true, guardHeapSSE}} {
		p, err := measureProcessorAllocs(c.sse, 200, 2000)
		if err != nil {
			t.Fatal(err)
		}
		limit := c.limit * raceHeapSlack
		t.Logf("processor heap, %s call of a %d-byte request: %.0f B/call, %.1f objects/call (guard %.0f B%s)",
			p.Script, p.RequestBytes, p.BytesPerCall, p.AllocsPerOp, limit, raceNote())
		if p.RequestBytes < 2800 || p.RequestBytes > 3300 {
			t.Errorf("the %s request is %d bytes; the target is stated for 3 KB", p.Script, p.RequestBytes)
		}
		if p.BytesPerCall > limit {
			t.Errorf("the processor allocates %.0f bytes per %s call, over the guard of %.0f (target %d): a gross regression; "+
				"see `go test -run '^$' -bench BenchmarkCall -benchmem ./processor/` and a -memprofile", p.BytesPerCall, p.Script, limit, targetHeapPerCall)
		}
	}
}

// TestGuardRedisRoundTrips: on a Redis of its own, calls one after another
// — a cache HIT, a 429, a MISS — each costs at most one Redis command before
// Envoy may go on (the request path), and a MISS one more, the cache fill,
// after its last reply. Counted twice: by the client's hook (per call, at
// the request-body reply and at the end of the stream) and by the server
// (its network reads over all calls), so a command sent around the
// counted client shows too.
func TestGuardRedisRoundTrips(t *testing.T) {
	srv := testenv.StartRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	be := &backends{sink: sinkDiscard, store: storeRedis, redisURL: srv.URL()}

	const calls = 20
	for _, c := range []struct {
		name  string
		sc    *script
		total float64 // round trips per call, the fill included
	}{
		{"hit", hitScript(), 1},
		{"limited (429)", limitedScript(), 1},
		{"miss", bufferedScript(), 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			target, err := startTarget(targetTollgate, be)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := target.stop(); err != nil {
					t.Errorf("stopping: %v", err)
				}
			})
			ctx := t.Context()
			if c.sc.prime != nil {
				if _, err := target.call(ctx, c.sc.prime); err != nil {
					t.Fatalf("prime call: %v", err)
				}
			}
			// One unmeasured call loads the scripts and dials.
			if _, err := callCounting(ctx, target, c.sc); err != nil {
				t.Fatal(err)
			}
			reads0 := serverReads(t, admin)
			var onPath, all int
			for range calls {
				n, err := callCounting(ctx, target, c.sc)
				if err != nil {
					t.Fatal(err)
				}
				onPath += n.requestPath
				all += n.total
			}
			server := serverReads(t, admin) - reads0 - 1 // the second INFO's own read
			t.Logf("%s: Redis round trips per call: %.2f on the request path, %.2f in all (client hook); %.2f reads per call (server)",
				c.name, float64(onPath)/calls, float64(all)/calls, float64(server)/calls)
			// A client retry after a timeout on a loaded machine may add one
			// now and then; a design that takes two does so every call.
			const slack = 0.25
			if got := float64(onPath) / calls; got < 1 || got > 1+slack {
				t.Errorf("%.2f Redis round trips per call before the request goes on; DESIGN: exactly one", got)
			}
			if got := float64(all) / calls; got > c.total+slack {
				t.Errorf("%.2f Redis round trips per call in all; want %.0f", got, c.total)
			}
			if got := float64(server) / calls; got > c.total+slack {
				t.Errorf("Redis read %.2f requests per call; want %.0f", got, c.total)
			}
		})
	}
}

type tripCount struct{ requestPath, total int }

// callCounting plays one call like extprocTarget.call and reads the
// store's round-trip count when the request body's reply arrives (the
// request path: Envoy waits for it before calling the provider) and at
// the end of the stream (Process has returned, the cache fill included).
func callCounting(ctx context.Context, t *extprocTarget, sc *script) (tripCount, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := t.trips()
	var n tripCount
	stream, err := t.client.Process(ctx)
	if err != nil {
		return n, err
	}
	for k, msg := range sc.msgs {
		if k == 1 {
			msg = sc.requestBody()
		}
		if err := stream.Send(msg); err != nil {
			return n, fmt.Errorf("send %d: %w", k, err)
		}
		resp, err := stream.Recv()
		if err != nil {
			return n, fmt.Errorf("reply %d: %w", k, err)
		}
		if err := t.check(sc, msg, resp); err != nil {
			return n, fmt.Errorf("reply %d: %w", k, err)
		}
		if k == 1 {
			n.requestPath = int(t.trips() - start)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return n, err
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("end of stream: want EOF, got %v", err)
	}
	n.total = int(t.trips() - start)
	return n, nil
}

// serverReads is the server's total_reads_processed: the requests it read
// from its clients, one per round trip (a pipeline is one read, and a
// script's own redis.call()s are none, unlike in total_commands_processed
// and commandstats).
func serverReads(t *testing.T, c *redis.Client) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_reads_processed:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO stats line %q", line)
			}
			return n
		}
	}
	t.Fatalf("INFO stats has no total_reads_processed:\n%s", info)
	return 0
}

// TestGuardStreamsPerPlainCall: a call without fallback through the data
// plane, configured as envoy/ configures Envoy, opens no more ext_proc
// streams than that configuration needs.
func TestGuardStreamsPerPlainCall(t *testing.T) {
	be := &backends{sink: sinkDiscard, store: storeMemory}
	logs := newLogCounter(io.Discard)
	s, err := startDataPlaneStack(be, logs, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stopping: %v", err)
		}
	})
	header := appHeaders()
	const calls = 20
	before := s.streams.Load()
	for i := range calls {
		if _, err := post(t.Context(), s.plane, s.planeURL, header, chatRequestBodyN(false, uint64(i+1)), true); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	perCall := float64(s.streams.Load()-before) / calls
	t.Logf("ext_proc streams per plain call through the data plane: %.2f (guard %d)", perCall, maxStreamsPerPlainCall)
	if perCall < 1 || perCall > maxStreamsPerPlainCall {
		t.Errorf("%.2f ext_proc streams per plain call; the Envoy configuration needs at most %d", perCall, maxStreamsPerPlainCall)
	}
}
