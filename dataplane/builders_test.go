package dataplane

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Message builders for expectations.

type extprocMsg = extprocv3.ProcessingRequest

func hv(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }

func hmap(kv ...string) *corev3.HeaderMap {
	m := &corev3.HeaderMap{}
	for i := 0; i < len(kv); i += 2 {
		m.Headers = append(m.Headers, hv(kv[i], kv[i+1]))
	}
	return m
}

func wantReqHeaders(h *corev3.HeaderMap, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request:         &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: h, EndOfStream: eos}},
		MetadataContext: &corev3.Metadata{},
		ProtocolConfig: &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  filterv3.ProcessingMode_BUFFERED,
			ResponseBodyMode: filterv3.ProcessingMode_BUFFERED,
		},
	}
}

func wantReqBody(b string, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request:         &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(b), EndOfStream: eos}},
		MetadataContext: &corev3.Metadata{},
	}
}

func wantRespHeaders(h *corev3.HeaderMap, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request:         &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: h, EndOfStream: eos}},
		MetadataContext: &corev3.Metadata{},
	}
}

func wantRespBody(b string, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request:         &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(b), EndOfStream: eos}},
		MetadataContext: &corev3.Metadata{},
	}
}

func diffMsgs(t *testing.T, want, got []*extprocv3.ProcessingRequest) {
	t.Helper()
	if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
		t.Errorf("ext_proc messages (-want +got):\n%s", d)
	}
}

// Reply builders for scripts.

func setHdr(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: hv(k, v)}
}

func appendHdr(k, v string) *corev3.HeaderValueOption {
	//lint:ignore SA1019 Envoy's ext_proc filter honours only the deprecated field
	return &corev3.HeaderValueOption{Header: hv(k, v), Append: wrapperspb.Bool(true)}
}

func mutation(set []*corev3.HeaderValueOption, remove ...string) *extprocv3.HeaderMutation {
	return &extprocv3.HeaderMutation{SetHeaders: set, RemoveHeaders: remove}
}

func bodyMutation(b string) *extprocv3.BodyMutation {
	return &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(b)}}
}
