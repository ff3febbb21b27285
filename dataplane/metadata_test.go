package dataplane

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
)

// linkNS stands for the namespace Tollgate's processor links attempts
// through; the data plane gives it no meaning of its own.
const linkNS = "tollgate"

// withMetadata answers the router-level request_headers with dynamic
// metadata in three namespaces, one of them not a struct.
func withMetadata(req *extprocv3.ProcessingRequest) step {
	st := continueAll(req)
	if req.GetRequestHeaders() != nil {
		st.resp.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
			linkNS:   structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"link": structpb.NewStringValue("k1")}}),
			"other":  structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"x": structpb.NewBoolValue(true)}}),
			"scalar": structpb.NewStringValue("not a struct"),
		}}
	}
	return st
}

func linkMetadata(fields map[string]*structpb.Value) *corev3.Metadata {
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{linkNS: {Fields: fields}}}
}

// Envoy's ext_proc keeps only the namespaces a filter receives
// (ext_proc.cc, setDynamicMetadata), the upstream filters share the
// downstream request's StreamInfo (router/upstream_request.cc,
// UpstreamFilterManager::streamInfo), and each filter sends the namespaces
// it forwards in every message's metadata_context (addDynamicMetadata).
func TestDynamicMetadataReachesEveryAttemptByNamespace(t *testing.T) {
	cases := []struct {
		name                  string
		receiving, forwarding []string
		want                  *corev3.Metadata
	}{
		{"received and forwarded", []string{linkNS}, []string{linkNS},
			linkMetadata(map[string]*structpb.Value{"link": structpb.NewStringValue("k1")})},
		{"not received: nothing to forward", nil, []string{linkNS}, &corev3.Metadata{}},
		{"received, not forwarded", []string{linkNS, "other"}, nil, &corev3.Metadata{}},
		{"a namespace that is no struct arrives empty", []string{"scalar"}, []string{"scalar", "absent"},
			&corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"scalar": {}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{
				script:         withMetadata,
				upstreamScript: continueAll,
				upstream:       perAttempt(textReply(503, ""), jsonReply(`{"ok":true}`)),
				config: func(c *Config) {
					fastRetries(c)
					c.ReceivingNamespaces = tc.receiving
					c.UpstreamFilter.ForwardingNamespaces = tc.forwarding
				},
			})
			if code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, retry5xx(1)); code != 200 {
				t.Fatalf("client got %d", code)
			}
			for n := 1; n <= 2; n++ {
				msgs := h.upstreamStream(t).messages()
				if diff := cmp.Diff(tc.want, msgs[0].GetMetadataContext(), protocmp.Transform()); diff != "" {
					t.Errorf("attempt %d metadata_context (-want +got):\n%s", n, diff)
				}
			}
			// The router-level filter forwards nothing: it lists no
			// forwarding namespace.
			for _, m := range h.stream(t).messages() {
				if len(m.GetMetadataContext().GetFilterMetadata()) != 0 {
					t.Errorf("router-level message carries %v", m.GetMetadataContext())
				}
			}
		})
	}
}

// A later reply merges into the namespace: a field set again replaces the
// old value, the others stay (StreamInfo::setDynamicMetadata, MergeFrom).
func TestDynamicMetadataMerges(t *testing.T) {
	var d dynamicMetadata
	set := func(fields map[string]*structpb.Value) {
		d.receive(&extprocv3.ProcessingResponse{
			Response:        &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}},
			DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{linkNS: structpb.NewStructValue(&structpb.Struct{Fields: fields})}},
		}, []string{linkNS})
	}
	set(map[string]*structpb.Value{"a": structpb.NewStringValue("1"), "b": structpb.NewStringValue("1")})
	set(map[string]*structpb.Value{"b": structpb.NewStringValue("2")})
	want := linkMetadata(map[string]*structpb.Value{"a": structpb.NewStringValue("1"), "b": structpb.NewStringValue("2")})
	if diff := cmp.Diff(want, d.forward([]string{linkNS}), protocmp.Transform()); diff != "" {
		t.Errorf("merged metadata (-want +got):\n%s", diff)
	}
}
