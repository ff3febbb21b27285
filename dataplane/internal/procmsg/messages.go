package procmsg

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
)

// The builders below fill metadata_context with an empty Metadata on every
// message and protocol_config on the first one, as current Envoy does.

// RequestHeaders is the request_headers message; the first of a stream, it
// carries protocol_config.
func RequestHeaders(h headers.List, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestHeaders{
			RequestHeaders: &extprocv3.HttpHeaders{Headers: h.Proto(), EndOfStream: eos},
		},
		MetadataContext: &corev3.Metadata{},
		ProtocolConfig: &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  ConfiguredMode.GetRequestBodyMode(),
			ResponseBodyMode: ConfiguredMode.GetResponseBodyMode(),
		},
	}
}

// RequestBody is a request_body message.
func RequestBody(body []byte, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestBody{
			RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: eos},
		},
		MetadataContext: &corev3.Metadata{},
	}
}

// ResponseHeaders is a response_headers message.
func ResponseHeaders(h headers.List, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_ResponseHeaders{
			ResponseHeaders: &extprocv3.HttpHeaders{Headers: h.Proto(), EndOfStream: eos},
		},
		MetadataContext: &corev3.Metadata{},
	}
}

// ResponseBody is a response_body message.
func ResponseBody(body []byte, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_ResponseBody{
			ResponseBody: &extprocv3.HttpBody{Body: body, EndOfStream: eos},
		},
		MetadataContext: &corev3.Metadata{},
	}
}

// ResponseTrailers is a response_trailers message.
func ResponseTrailers(tr headers.List) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_ResponseTrailers{
			ResponseTrailers: &extprocv3.HttpTrailers{Trailers: tr.Proto()},
		},
		MetadataContext: &corev3.Metadata{},
	}
}

// Phase names what the data plane is waiting for; a reply of another kind
// (other than an ImmediateResponse) is spurious.
type Phase int

const (
	PhaseRequestHeaders Phase = iota
	PhaseRequestBody
	PhaseResponseHeaders
	PhaseResponseBody
	PhaseResponseTrailers
)

// ReplyMatches says whether resp is the reply to the phase's message.
func ReplyMatches(resp *extprocv3.ProcessingResponse, want Phase) bool {
	switch resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		return want == PhaseRequestHeaders
	case *extprocv3.ProcessingResponse_RequestBody:
		return want == PhaseRequestBody
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		return want == PhaseResponseHeaders
	case *extprocv3.ProcessingResponse_ResponseBody:
		return want == PhaseResponseBody
	case *extprocv3.ProcessingResponse_ResponseTrailers:
		return want == PhaseResponseTrailers
	}
	return false
}

// Common digs the CommonResponse out of any headers or body reply.
func Common(resp *extprocv3.ProcessingResponse) *extprocv3.CommonResponse {
	switch r := resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		return r.RequestHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		return r.ResponseHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_RequestBody:
		return r.RequestBody.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseBody:
		return r.ResponseBody.GetResponse()
	}
	return nil
}

// MutateBody applies a BodyMutation to body. swapped reports that the bytes
// were replaced (new slice, possibly nil); present reports that the reply
// carried a body mutation at all, which is what makes Envoy drop
// content-length, even for a mutation that leaves the bytes alone.
func MutateBody(body []byte, m *extprocv3.BodyMutation) (out []byte, swapped, present bool) {
	if m == nil {
		return body, false, false
	}
	switch v := m.GetMutation().(type) {
	case *extprocv3.BodyMutation_Body:
		return v.Body, true, true
	case *extprocv3.BodyMutation_ClearBody:
		if v.ClearBody {
			return nil, true, true
		}
	}
	return body, false, true
}
