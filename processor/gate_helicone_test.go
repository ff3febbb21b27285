package processor

import (
	"context"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/storage/memstore"
)

// A cache hit through the processor with the real gate, as Helicone
// answers it: the provider's request id and rate-limit headers of the
// stored answer, Helicone-Cache: HIT, and Helicone-Id the hit's own id
// (the hit is a call of its own, logged with a reference to the original).
// Helicone: worker/src/lib/util/cache/cacheFunctions.ts (the stored
// response headers are replayed) and
// worker/src/lib/HeliconeProxyRequest/ProxyRequestHandler.ts
// (handleProxyRequest sets Helicone-Id to the new request's id over the
// cached headers).
func TestCacheHitReplaysProviderHeaders(t *testing.T) {
	const hitID = "0192f0c4-5a1e-7cc0-8f00-0000000000ff"
	s, sink := newTestServer(t, func(o *Options) {
		o.Gate = gate.New(gate.Options{Store: memstore.New(memstore.Options{})})
	})
	call := func(id string, script ...*extprocv3.ProcessingRequest) []*extprocv3.ProcessingResponse {
		t.Helper()
		f := &fakeStream{ctx: context.Background(), script: append([]*extprocv3.ProcessingRequest{
			reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json",
				"authorization", "Bearer sk-provider", "helicone-cache-enabled", "true", "helicone-request-id", id),
			reqBody(chatBody),
		}, script...)}
		if err := s.Process(f); err != nil {
			t.Fatal(err)
		}
		return f.replies
	}
	call(requestID,
		respHeaders(false, ":status", "200", "content-type", "application/json", "x-request-id", "req_provider_1",
			"openai-processing-ms", "812", "x-ratelimit-remaining-requests", "9999", "set-cookie", "__cf_bm=abc"),
		respBody(chatResponse, true))

	replies := call(hitID)
	if len(replies) != 2 {
		t.Fatalf("%d replies, want the headers reply and the immediate response", len(replies))
	}
	im := replies[1].GetImmediateResponse()
	if im == nil || im.GetStatus().GetCode() != 200 || string(im.GetBody()) != chatResponse {
		t.Fatalf("second call: %v, want the cached answer", replies[1])
	}
	got := map[string]string{}
	for _, h := range im.GetHeaders().GetSetHeaders() {
		got[h.GetHeader().GetKey()] = string(h.GetHeader().GetRawValue())
	}
	for name, want := range map[string]string{
		"x-request-id": "req_provider_1", "openai-processing-ms": "812", "x-ratelimit-remaining-requests": "9999",
		"helicone-cache": "HIT", "helicone-id": hitID, "set-cookie": "",
	} {
		if got[name] != want {
			t.Errorf("hit header %s = %q, want %q (all %v)", name, got[name], want, got)
		}
	}
	recs := sink.Records()
	if len(recs) != 2 || recs[1].RequestID != hitID || !recs[1].CacheHit || recs[1].CacheReferenceID != requestID {
		t.Fatalf("records %+v, want the hit logged under its own id, referring to the original", recs)
	}
}
