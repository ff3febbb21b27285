package processor

import (
	"bytes"
	"context"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The replies of real calls (a buffered and an SSE call through the gate,
// an immediate 400, a call with a fallback link in its metadata) survive
// the registered codec: what Envoy decodes is what the processor built,
// whichever path (vtproto or gRPC's codec) the build takes.
func TestCodecRoundTrip(t *testing.T) {
	c := encoding.GetCodecV2("proto")
	if _, ok := c.(vtCodec); !ok {
		t.Fatalf(`codec "proto" is %T, want the processor's vtCodec`, c)
	}
	var replies []*extprocv3.ProcessingResponse
	for _, bc := range []*benchCall{newBenchCall(false), newBenchCall(true)} {
		replies = append(replies, playReplies(t, bc.msgs)...)
	}
	replies = append(replies, playReplies(t, []*extprocv3.ProcessingRequest{
		reqHeaders(true, ":method", "POST", ":path", "/v1/chat/completions", "helicone-prompt-id", "support")})...)
	replies = append(replies, playReplies(t, []*extprocv3.ProcessingRequest{
		reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "helicone-retry-enabled", "true")})...)
	// A body over gRPC's pooling threshold takes the pooled buffer.
	replies = append(replies, requestBodyReply(common(&headerMutation{}, replyChanges{replaceBody: true, body: bytes.Repeat([]byte("x"), 64<<10)})))
	var immediate, linked int
	for _, r := range replies {
		if r.GetImmediateResponse() != nil {
			immediate++
		}
		if r.GetDynamicMetadata() != nil {
			linked++
		}
	}
	if len(replies) < 10 || immediate == 0 || linked == 0 {
		t.Fatalf("%d replies, %d immediate, %d with metadata: the script no longer covers them", len(replies), immediate, linked)
	}
	for i, want := range replies {
		data, err := c.Marshal(want)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		got := &extprocv3.ProcessingResponse{}
		if err := proto.Unmarshal(data.Materialize(), got); err != nil {
			t.Fatalf("reply %d does not decode: %v", i, err)
		}
		data.Free()
		if !proto.Equal(got, want) {
			t.Errorf("reply %d decodes as\n%v\nwant\n%v", i, got, want)
		}
	}
}

// A message without vtproto code goes through gRPC's own codec, both ways.
func TestCodecFallback(t *testing.T) {
	c := encoding.GetCodecV2("proto")
	data, err := c.Marshal(wrapperspb.String("health"))
	if err != nil {
		t.Fatal(err)
	}
	got := &wrapperspb.StringValue{}
	if err := c.Unmarshal(data, got); err != nil || got.GetValue() != "health" {
		t.Fatalf("round trip = %q, %v; want health", got.GetValue(), err)
	}
	// A received message owns its bytes: the receive buffer is reused.
	in := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(`{"model":"m"}`)}}}
	raw, _ := proto.Marshal(in)
	req := &extprocv3.ProcessingRequest{}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(raw)}, req); err != nil {
		t.Fatal(err)
	}
	clear(raw)
	if got := string(req.GetRequestBody().GetBody()); got != `{"model":"m"}` {
		t.Fatalf("body after the receive buffer was reused = %q", got)
	}
}

// playReplies runs msgs through a gated server and returns its replies.
func playReplies(t *testing.T, msgs []*extprocv3.ProcessingRequest) []*extprocv3.ProcessingResponse {
	t.Helper()
	f := &fakeStream{ctx: context.Background(), script: msgs}
	if err := benchServer().Process(f); err != nil {
		t.Fatal(err)
	}
	return f.replies
}
