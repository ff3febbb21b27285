package main

import (
	"context"
	"io"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/tollgate-dev/tollgate/processor"
)

// memStream feeds a script into Process without gRPC, so the processor's
// own CPU and allocations per call can be read apart from the transport's:
//
//	go test -run '^$' -bench Processor -benchmem ./internal/bench
type memStream struct {
	grpc.ServerStream
	ctx  context.Context
	msgs []*extprocv3.ProcessingRequest
	next int
}

func (m *memStream) Context() context.Context                 { return m.ctx }
func (m *memStream) Send(*extprocv3.ProcessingResponse) error { return nil }
func (m *memStream) Recv() (*extprocv3.ProcessingRequest, error) {
	if m.next == len(m.msgs) {
		return nil, io.EOF
	}
	m.next++
	return m.msgs[m.next-1], nil
}

func benchmarkProcessor(b *testing.B, sc *script, sinkKind string) {
	sink, err := openLogSink(&backends{sink: sinkKind}, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close(context.Background())
	srv := processor.New(processor.Options{Sink: sink})
	stream := &memStream{ctx: context.Background(), msgs: sc.msgs}
	b.ReportAllocs()
	for b.Loop() {
		stream.next = 0
		if err := srv.Process(stream); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProcessorBufferedFileSink(b *testing.B) {
	benchmarkProcessor(b, bufferedScript(), "file")
}
func BenchmarkProcessorBufferedDiscard(b *testing.B) {
	benchmarkProcessor(b, bufferedScript(), "discard")
}
func BenchmarkProcessorSSEFileSink(b *testing.B) { benchmarkProcessor(b, sseScript(), "file") }
func BenchmarkProcessorSSEDiscard(b *testing.B)  { benchmarkProcessor(b, sseScript(), "discard") }
