package processor

import (
	"context"
	"io"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// fakeStream replays scripted Envoy messages into Process and collects the
// replies. After the script it returns end (io.EOF when nil), which is how a
// test simulates a client cancel or a deadline.
type fakeStream struct {
	grpc.ServerStream
	ctx     context.Context
	script  []*extprocv3.ProcessingRequest
	end     error
	replies []*extprocv3.ProcessingResponse
	// failSendAt > 0: the reply of that number (1-based) and later ones
	// fail to send, as when Envoy resets the stream because the client
	// went away while the processor was answering.
	failSendAt int
	sends      int
}

func (f *fakeStream) Context() context.Context     { return f.ctx }
func (f *fakeStream) SetHeader(metadata.MD) error  { return nil }
func (f *fakeStream) SendHeader(metadata.MD) error { return nil }
func (f *fakeStream) SetTrailer(metadata.MD)       {}
func (f *fakeStream) Send(r *extprocv3.ProcessingResponse) error {
	if f.sends++; f.failSendAt > 0 && f.sends >= f.failSendAt {
		return cancelled
	}
	f.replies = append(f.replies, r)
	return nil
}
func (f *fakeStream) Recv() (*extprocv3.ProcessingRequest, error) {
	if len(f.script) == 0 {
		if f.end != nil {
			return nil, f.end
		}
		return nil, io.EOF
	}
	next := f.script[0]
	f.script = f.script[1:]
	return next, nil
}

// run plays the script through a server and returns the replies.
func run(s *Server, end error, script ...*extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	f := &fakeStream{ctx: context.Background(), script: script, end: end}
	err := s.Process(f)
	return f.replies, err
}

// Builders for the messages Envoy sends: header values in raw_value only.
func headerMap(kv ...string) *corev3.HeaderMap {
	m := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return m
}

func reqHeaders(endOfStream bool, kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv...), EndOfStream: endOfStream}}}
}

func reqBody(body string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}}
}

func respHeaders(endOfStream bool, kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv...), EndOfStream: endOfStream}}}
}

func respBody(body string, endOfStream bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: endOfStream}}}
}
