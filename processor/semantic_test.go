package processor

import (
	"context"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/semcache"
	"github.com/tollgate-dev/tollgate/record"
)

// wordsEmbedder embeds like the mock provider: content words hashed into
// 64 dimensions, so a paraphrase with the same words is close.
type wordsEmbedder struct{}

func (wordsEmbedder) Embed(_ context.Context, text string) ([]float32, error) {
	return mockprovider.EmbedText(text, 64), nil
}

// lossyStore loses every answer while lose is set, as Redis does when it
// evicts them before the index knows.
type lossyStore struct {
	semcache.Store
	lose *bool
}

func (s lossyStore) SemanticEntry(ctx context.Context, id string) ([]byte, error) {
	if *s.lose {
		return nil, nil
	}
	return s.Store.SemanticEntry(ctx, id)
}

type semanticFixture struct {
	t    *testing.T
	s    *Server
	sink *record.Memory
	lose bool
}

func newSemanticFixture(t *testing.T) *semanticFixture {
	f := &semanticFixture{t: t}
	c, err := semcache.New(semcache.Options{Store: lossyStore{semcache.NewMemStore(0, nil), &f.lose}, Embedder: wordsEmbedder{}})
	if err != nil {
		t.Fatal(err)
	}
	f.s, f.sink = newTestServer(t, func(o *Options) {
		o.Gate = gate.New(gate.Options{})
		o.Semantic = c
	})
	return f
}

// call sends one opted-in call to path with a prompt and returns the
// semantic hit's similarity header ("" when the call went upstream).
func (f *semanticFixture) call(path, body string, headers ...string) string {
	f.t.Helper()
	h := append([]string{":method", "POST", ":path", path, ":authority", "localhost",
		"content-type", "application/json", "authorization", "Bearer sk-provider",
		"helicone-cache-enabled", "true", "helicone-cache-semantic-enabled", "true"}, headers...)
	replies, err := run(f.s, nil, reqHeaders(false, h...), reqBody(body),
		respHeaders(false, ":status", "200", "content-type", "application/json"),
		respBody(chatResponse, true))
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range replies {
		if ir, ok := r.Response.(*extprocv3.ProcessingResponse_ImmediateResponse); ok {
			for _, hv := range ir.ImmediateResponse.GetHeaders().GetSetHeaders() {
				if hv.GetHeader().GetKey() == semcache.HeaderSimilarity {
					return string(hv.GetHeader().GetRawValue())
				}
			}
			f.t.Fatalf("an immediate answer without a similarity: %v", ir)
		}
	}
	return ""
}

func chat(q string) string {
	return `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + q + `"}]}`
}

func TestSemanticLookupHitAndMiss(t *testing.T) {
	f := newSemanticFixture(t)
	if sim := f.call("/v1/chat/completions", chat("What is the capital of France?")); sim != "" {
		t.Fatalf("the first call hit (%s)", sim)
	}
	if sim := f.call("/v1/chat/completions", chat("capital of France, please")); sim == "" {
		t.Fatal("a paraphrase missed")
	}
	recs := f.sink.Records()
	if r := recs[len(recs)-1]; !r.CacheHit || r.CacheSimilarity <= 0 || r.CacheSimilarity > 1 {
		t.Errorf("the hit's record: hit %v, similarity %v", r.CacheHit, r.CacheSimilarity)
	}
	if sim := f.call("/v1/chat/completions", chat("How tall is Mount Everest?")); sim != "" {
		t.Errorf("another question hit (%s)", sim)
	}
}

// An answer gone from the store is a miss: the call goes upstream.
func TestSemanticLookupGoneEntryIsAMiss(t *testing.T) {
	f := newSemanticFixture(t)
	f.call("/v1/chat/completions", chat("What is the capital of France?"))
	f.lose = true
	if sim := f.call("/v1/chat/completions", chat("capital of France, please")); sim != "" {
		t.Errorf("a gone answer hit (%s)", sim)
	}
}

// Only chats use the semantic cache: a completion's prompt does not.
func TestSemanticLookupChatEndpointsOnly(t *testing.T) {
	f := newSemanticFixture(t)
	completion := func(q string) string { return `{"model":"gpt-3.5-turbo-instruct","prompt":"` + q + `"}` }
	f.call("/v1/completions", completion("What is the capital of France?"))
	if sim := f.call("/v1/completions", completion("capital of France, please")); sim != "" {
		t.Errorf("a completion hit the semantic cache (%s)", sim)
	}
}

// A call that asks to be screened is never answered by the semantic
// cache: the answer would skip the screening.
func TestSemanticLookupNotWithScreening(t *testing.T) {
	f := newSemanticFixture(t)
	f.call("/v1/chat/completions", chat("What is the capital of France?"))
	for _, h := range []string{"helicone-moderations-enabled", "helicone-llm-security-enabled"} {
		if sim := f.call("/v1/chat/completions", chat("capital of France, please"), h, "true"); sim != "" {
			t.Errorf("with %s: a semantic hit (%s)", h, sim)
		}
	}
}
