package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/processor"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/memstore"
)

// heapAllocs reads the bytes and objects allocated on the heap by this
// process so far (runtime/metrics: no stop-the-world).
type heapAllocs struct{ bytes, objects uint64 }

var allocMetrics = []string{"/gc/heap/allocs:bytes", "/gc/heap/allocs:objects"}

func readHeapAllocs() heapAllocs {
	s := make([]metrics.Sample, len(allocMetrics))
	for i, name := range allocMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	var h heapAllocs
	if s[0].Value.Kind() == metrics.KindUint64 {
		h.bytes = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		h.objects = s[1].Value.Uint64()
	}
	return h
}

// perCall divides what was allocated between a and b by calls.
func (b heapAllocs) perCall(a heapAllocs, calls int) (bytes, objects float64) {
	if calls == 0 {
		return -1, -1
	}
	return float64(b.bytes-a.bytes) / float64(calls), float64(b.objects-a.objects) / float64(calls)
}

// processorAllocs is the processor's own heap per call, without gRPC and
// the load generator: Process fed a script from memory, one call after
// another, the way processor's BenchmarkCall measures it (the gate on an
// in-process store whose cache fills are dropped, a discarding sink, a new
// request body every call, so each is a cache MISS).
type processorAllocs struct {
	Script       string
	RequestBytes int
	Calls        int
	BytesPerCall float64
	AllocsPerOp  float64 // heap objects per call
}

// processorHeapScripts: the processor's heap is measured for the buffered
// call (sse false) when the extproc scenario runs, for the SSE call when
// sse does.
func processorHeapScripts(cfg *config) []bool {
	var out []bool
	if cfg.runs(scenarioExtProc) {
		out = append(out, false)
	}
	if cfg.runs(scenarioSSE) {
		out = append(out, true)
	}
	return out
}

// Calls of the report's processor heap measurement: enough that one GC
// cycle's own allocations or a pool refill are noise.
const (
	heapWarmCalls = 500
	heapCalls     = 5000
)

// targetHeapPerCall is the target for a 3 KB chat completion.
const targetHeapPerCall = 8 << 10

// guardRequestBytes is the size of the request of the allocation target
// (issue: "≤ 8 KiB for a 3 KB chat completion").
const guardRequestBytes = 3 << 10

// measureProcessorAllocs runs warm calls unmeasured, then calls measured.
func measureProcessorAllocs(sse bool, warm, calls int) (processorAllocs, error) {
	g := gate.New(gate.Options{Store: noFillStore{memstore.New(memstore.Options{})}})
	srv := processor.New(processor.Options{Gate: g, Sink: record.Discard{}})
	sc := newAllocScript(sse)
	stream := &scriptStream{ctx: context.Background(), msgs: sc.msgs}
	one := func() error {
		sc.number()
		stream.next = 0
		if err := srv.Process(stream); err != nil {
			return err
		}
		if n := stream.immediate.Load(); n != 0 {
			return fmt.Errorf("%d calls answered by Tollgate itself; every call must reach the provider", n)
		}
		return nil
	}
	for range warm {
		if err := one(); err != nil {
			return processorAllocs{}, err
		}
	}
	runtime.GC()
	a := readHeapAllocs()
	for range calls {
		if err := one(); err != nil {
			return processorAllocs{}, err
		}
	}
	b := readHeapAllocs()
	res := processorAllocs{Script: "buffered", RequestBytes: len(sc.body), Calls: calls}
	if sse {
		res.Script = "sse"
	}
	res.BytesPerCall, res.AllocsPerOp = b.perCall(a, calls)
	return res, nil
}

// noFillStore is the memstore without its cache writes: thousands of
// distinct calls would otherwise measure the map's growth.
type noFillStore struct{ *memstore.Store }

func (noFillStore) Fill(context.Context, string, int, []byte, time.Duration) (int, error) {
	return 0, nil
}

// scriptStream feeds a script into Process without gRPC and counts the
// immediate responses.
type scriptStream struct {
	grpc.ServerStream
	ctx       context.Context
	msgs      []*extprocv3.ProcessingRequest
	next      int
	immediate atomic.Int64
}

func (s *scriptStream) Context() context.Context { return s.ctx }
func (s *scriptStream) Send(r *extprocv3.ProcessingResponse) error {
	if r.GetImmediateResponse() != nil {
		s.immediate.Add(1)
	}
	return nil
}
func (s *scriptStream) Recv() (*extprocv3.ProcessingRequest, error) {
	if s.next == len(s.msgs) {
		return nil, io.EOF
	}
	s.next++
	return s.msgs[s.next-1], nil
}

// allocScript is one call of about guardRequestBytes of request, numbered
// in place per call (a new cache key, the same length, no allocation of
// the harness's own).
type allocScript struct {
	msgs []*extprocv3.ProcessingRequest
	body []byte
	tag  int // offset of the 10-digit call number in body
	n    uint64
}

// allocPadding lengthens the last user message of the 2 KB fixture to a
// 3 KB request: more conversation, not filler bytes, so JSON and token
// work grow as they would.
const allocPadding = " I'm leaving for a hiking trip in the Dolomites in ten days and would really like to break the new pair in before that, " +
	"so timing matters more to me than the shipping cost. If the 42.5 is only available in the darker colour, that is fine too. " +
	"Could you also tell me whether the exchange keeps the original two-year warranty, or whether it starts again from the date " +
	"of the new delivery? And one more thing: the insoles that came with the boots are a bit thin. Do you sell the thicker " +
	"Ridgeline comfort insoles separately, and if so, could they be added to the exchange parcel so I don't pay shipping twice? " +
	"I'd pay for them with the card on the order, of course. Thanks a lot for your help, the service so far has been great."

func newAllocScript(sse bool) *allocScript {
	body := chatRequestBodyTagged(sse, allocPadding+" (ticket #0000000000)")
	sc := &allocScript{body: body, tag: strings.Index(string(body), "#0000000000") + 1}
	if sse {
		s := sseScript()
		s.msgs[0] = requestHeadersMsg(requestHeaderPairs(len(body), policyHigh))
		s.msgs[1] = requestBodyMsg(body)
		sc.msgs = s.msgs
		return sc
	}
	sc.msgs = fixedBufferedScript(body, policyHigh).msgs
	return sc
}

// number writes the next call number into the body.
func (sc *allocScript) number() {
	sc.n++
	var digits [20]byte
	s := strconv.AppendUint(digits[:0], sc.n, 10)
	copy(sc.body[sc.tag:sc.tag+10], "0000000000")
	copy(sc.body[sc.tag+10-len(s):], s)
}

func writeProcessorHeap(w io.Writer, ps []processorAllocs) {
	if len(ps) == 0 {
		return
	}
	fmt.Fprintf(w, "%s\n\n", titleHeap)
	fmt.Fprintf(w, "`processor.Server.Process` fed one call at a time from memory (no gRPC, no load generator): the gate on "+
		"an in-process store, a discarding sink, a new request body every call (a cache MISS), %d calls after %d unmeasured; "+
		"heap bytes and objects from runtime/metrics over the calls, divided by them (the same set-up as processor's "+
		"BenchmarkCall). The target is stated for a 3 KB chat completion.\n\n", heapCalls, heapWarmCalls)
	fmt.Fprintf(w, "| Call | Request bytes | Bytes/call | Objects/call | Target | |\n|---|--:|--:|--:|--:|---|\n")
	for _, p := range ps {
		fmt.Fprintf(w, "| %s | %d | %.0f | %.1f | ≤ %d | %s |\n", p.Script, p.RequestBytes, p.BytesPerCall, p.AllocsPerOp,
			targetHeapPerCall, verdict(p.BytesPerCall <= targetHeapPerCall, judged(p.Script == "buffered")))
	}
	fmt.Fprintln(w)
}
