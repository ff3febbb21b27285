package dataplane

import (
	"strings"
	"testing"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

var duplexMode = &filterv3.ProcessingMode{
	ResponseBodyMode:    filterv3.ProcessingMode_FULL_DUPLEX_STREAMED,
	ResponseTrailerMode: filterv3.ProcessingMode_SEND,
}

func streamedReply(req *extprocv3.ProcessingRequest, body string, eos bool) step {
	return step{resp: reply(req, &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{
		Mutation: &extprocv3.BodyMutation_StreamedResponse{StreamedResponse: &extprocv3.StreamedBodyResponse{Body: []byte(body), EndOfStream: eos}},
	}})}
}

// In FULL_DUPLEX_STREAMED (asked for in the response-headers reply) every
// chunk reaches the processor, the last with end_of_stream, and the
// client gets the bytes of the processor's streamed_response replies, the
// body ending with the one marked end_of_stream.
func TestDuplexResponseBody(t *testing.T) {
	open := newGate(t)
	open.open()
	h := newHarness(t, harnessOpts{
		upstream: sse([]string{"data: a\n\n", "data: b\n\n"}, open),
		script: func(req *extprocv3.ProcessingRequest) step {
			switch kind(req) {
			case "response_headers":
				resp := continueAll(req).resp
				resp.ModeOverride = duplexMode
				return step{resp: resp}
			case "response_body":
				b := req.GetResponseBody()
				out := strings.ToUpper(string(b.GetBody()))
				if b.GetEndOfStream() {
					out += "data: END\n\n"
				}
				return streamedReply(req, out, b.GetEndOfStream())
			}
			return continueAll(req)
		},
	})
	code, _, body := h.do(t, "POST", "/v1/chat/completions", `{"stream":true}`, nil)
	if code != 200 || body != "DATA: A\n\nDATA: B\n\ndata: END\n\n" {
		t.Fatalf("client got %d %q", code, body)
	}
	rec := h.stream(t)
	if k := kinds(rec.messages()); !strings.HasSuffix(k, "response_body") || strings.Contains(k, "response_trailers") {
		t.Errorf("processor saw %s", k)
	}
}

// A reply that is not a streamed_response breaks the duplex body: the
// headers are gone, so the client stream is reset rather than completed.
func TestDuplexWrongReplyResets(t *testing.T) {
	open := newGate(t)
	open.open()
	h := newHarness(t, harnessOpts{
		upstream: sse([]string{"data: a\n\n", "data: b\n\n"}, open),
		script: func(req *extprocv3.ProcessingRequest) step {
			switch kind(req) {
			case "response_headers":
				resp := continueAll(req).resp
				resp.ModeOverride = duplexMode
				return step{resp: resp}
			case "response_body":
				return step{resp: reply(req, &extprocv3.CommonResponse{BodyMutation: bodyMutation("x")})}
			}
			return continueAll(req)
		},
	})
	resp := h.send(t, t.Context(), "POST", "/v1/chat/completions", `{"stream":true}`, nil)
	defer resp.Body.Close()
	buf := make([]byte, 64)
	var err error
	for err == nil {
		_, err = resp.Body.Read(buf)
	}
	if err.Error() == "EOF" {
		t.Errorf("the client stream ended cleanly; want a reset")
	}
}
