package processor

import (
	"strings"
	"testing"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tollgate-dev/tollgate/record"
)

func respTrailers(kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{
		ResponseTrailers: &extprocv3.HttpTrailers{Trailers: headerMap(kv...)}}}
}

var cancelled = status.Error(codes.Canceled, "context canceled")

// With trailers SKIP, Envoy sends a buffered response that has trailers as
// one body message without end_of_stream, and then ends the stream the way a
// client cancel does. The message is still the whole body.
func TestBufferedBodyBeforeTrailersIsTheWholeBody(t *testing.T) {
	s, sink := newTestServer(t)
	_, _ = run(s, cancelled,
		reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"),
		reqBody(chatBody),
		respHeaders(false, ":status", "200", "content-type", "application/json"),
		respBody(chatResponse, false),
	)
	recs := sink.Records()
	if len(recs) != 1 {
		t.Fatalf("records %+v", recs)
	}
	r := recs[0]
	if r.Status != 200 || r.PromptTokens != 1200 || r.CompletionTokens != 300 || cmp.Diff(chatCost, r.CostUSD, approxCost) != "" || r.Error != "" {
		t.Fatalf("record %+v, want status 200, 1200/300 tokens, cost %v", r, chatCost)
	}
}

// A streamed response asks for its trailers, and one that has them ends
// there: every chunk came without end_of_stream.
func TestStreamedResponseEndsAtItsTrailers(t *testing.T) {
	s, sink := newTestServer(t)
	replies, _ := run(s, cancelled,
		reqHeaders(false, ":method", "POST", ":path", "/v1/messages"),
		reqBody(`{"model":"claude-sonnet-4-5","stream":true,"max_tokens":64}`),
		respHeaders(false, ":status", "200", "content-type", "text/event-stream"),
		respBody(anthropicStream[:60], false),
		respBody(anthropicStream[60:], false),
		respTrailers("x-upstream-trailer", "done"),
	)
	if m := replies[2].GetModeOverride(); m.GetResponseBodyMode() != filterv3.ProcessingMode_STREAMED ||
		m.GetResponseTrailerMode() != filterv3.ProcessingMode_SEND {
		t.Fatalf("mode override %v: want STREAMED body and trailers sent", m)
	}
	if len(replies) != 6 || replies[5].GetResponseTrailers() == nil {
		t.Fatalf("want a trailers reply last, got %v", replies)
	}
	recs := sink.Records()
	if len(recs) != 1 {
		t.Fatalf("records %+v", recs)
	}
	r := recs[0]
	if r.Status != 200 || r.PromptTokens != 150 || r.CompletionTokens != 25 || cmp.Diff(anthropicStreamCost, r.CostUSD, approxCost) != "" || r.Error != "" {
		t.Fatalf("record %+v, want cost %v", r, anthropicStreamCost)
	}
}

// Without trailers and without end_of_stream the client went away, even
// when every byte of the stream had been seen.
func TestStreamedResponseWithoutEndIsACancel(t *testing.T) {
	s, sink := newTestServer(t)
	_, _ = run(s, cancelled,
		reqHeaders(false, ":method", "POST", ":path", "/v1/messages"),
		reqBody(`{"model":"claude-sonnet-4-5","stream":true,"max_tokens":64}`),
		respHeaders(false, ":status", "200", "content-type", "text/event-stream"),
		respBody(anthropicStream, false),
	)
	recs := sink.Records()
	if len(recs) != 1 || recs[0].Status != record.StatusClientCancelled || recs[0].PromptTokens != 150 {
		t.Fatalf("records %+v", recs)
	}
}

// A request with trailers reaches the processor the same way: the BUFFERED
// body without end_of_stream, and it is the whole body.
func TestBufferedRequestBodyBeforeTrailersIsTheWholeBody(t *testing.T) {
	s, sink := newTestServer(t)
	body := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(`{"model":"gpt-4o-mini","stream":true}`)}}}
	replies, _ := run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions"),
		body,
		respHeaders(false, ":status", "200", "content-type", "text/event-stream"),
		respBody(openAIStream, true),
	)
	if b := replies[1].GetRequestBody().GetResponse().GetBodyMutation().GetBody(); !strings.Contains(string(b), "include_usage") {
		t.Fatalf("request body not rewritten: %q", b)
	}
	if r := sink.Records()[0]; r.Model != "gpt-4o-mini" || r.Status != 200 || r.PromptTokens != 11 {
		t.Fatalf("record %+v", r)
	}
}
