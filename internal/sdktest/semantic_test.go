package sdktest

import (
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/internal/devtest"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/mockprovider"
)

// counter is the value of a metric series (name and labels) on d's
// /metrics, 0 when absent.
// The semantic cache seen by the SDKs: two `tollgate dev` instances share
// the test Redis and an embeddings endpoint (the mock's hashed bag of
// words). Answers the first stores (one whole, one streamed) serve
// paraphrases sent to the second, started later, as HITs with their
// similarity, the stream replayed as a stream the SDK decodes; a different
// question misses.
func TestSDKSemanticCacheAcrossReplicas(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	emb := httptest.NewServer(mockprovider.New(mockprovider.Options{}))
	t.Cleanup(emb.Close)
	// Generous store limits: an addition or a hit's read is only cut short
	// by a Redis that is down, never by a test machine under load.
	args := []string{"--redis", redisURL, "--semantic-cache-url", emb.URL, "--semantic-cache-timeout", "1s",
		"--message-timeout", "10s", "--redis-timeout", "5s", "--redis-write-timeout", "5s"}
	a := startDev(t, args...)

	seed := uuid.NewString() // a scope of its own per run
	ask := func(d *dev, question string, stream bool) (string, result) {
		id := uuid.NewString()
		r := scenario{script: "chat.mjs", baseURL: d.base("/v1"), model: "gpt-4o-mini", prompt: question, stream: stream,
			headers: map[string]string{
				"Helicone-Request-Id": id, "Helicone-Cache-Enabled": "true", "Helicone-Cache-Seed": seed,
				"Helicone-Cache-Semantic-Enabled": "true", "Helicone-Cache-Semantic-Threshold": "0.8",
			}}.run(t)
		return id, r
	}
	first, r1 := ask(a, "What is the capital city of France?", false)
	streamed, r2 := ask(a, "Name the largest planet in the solar system", true)
	for _, r := range []result{r1, r2} {
		if r.Cache != "MISS" || r.Content != mockprovider.CompletionText {
			t.Fatalf("first calls: cache %q content %q, want a MISS answered by the provider", r.Cache, r.Content)
		}
	}
	devtest.WaitForCounter(t, a.addrs["http"], "tollgate_semantic_cache_added_total", 2)

	b := startDev(t, args...) // started later: reads a's entries from Redis
	hitID, hit := ask(b, "Tell me France's capital city, please", false)
	streamHitID, streamHit := ask(b, "Which is the largest planet in the solar system?", true)
	missID, miss := ask(b, "How do I bake sourdough bread?", false)
	for name, r := range map[string]result{"paraphrase": hit, "streamed paraphrase": streamHit} {
		sim, err := strconv.ParseFloat(r.Similarity, 64)
		if r.Cache != "HIT" || err != nil || sim < 0.8 || sim > 1 || r.Content != mockprovider.CompletionText {
			t.Errorf("%s on the second replica: cache %q similarity %q content %q, want a HIT with the stored answer",
				name, r.Cache, r.Similarity, r.Content)
		}
	}
	if streamHit.Chunks < 3 || streamHit.Usage.Output != mockprovider.CompletionTokens {
		t.Errorf("streamed hit: %d chunks, usage %+v; want the stream replayed", streamHit.Chunks, streamHit.Usage)
	}
	if miss.Cache != "MISS" || miss.Similarity != "" {
		t.Errorf("different question: cache %q similarity %q, want a MISS", miss.Cache, miss.Similarity)
	}
	if n := len(b.mock.Received()); n != 1 {
		t.Errorf("the second replica's provider got %d calls, want 1 (the miss)", n)
	}

	recs := b.records(t)
	for _, c := range []struct{ id, ref string }{{hitID, first}, {streamHitID, streamed}} {
		r := recs[c.id]
		if r == nil || !r.CacheHit || r.CacheReferenceID != c.ref || r.CacheSimilarity < 0.8 ||
			r.Provider != "openai" || r.Model != "gpt-4o-mini" {
			t.Errorf("hit record %+v, want openai gpt-4o-mini, cache_hit, cache_reference_id %s and the similarity", r, c.ref)
		}
	}
	if r := recs[missID]; r == nil || r.CacheHit || r.CacheSimilarity != 0 || r.Provider != "openai" || r.CompletionTokens != mockprovider.CompletionTokens {
		t.Errorf("miss record %+v, want an uncached openai call", r)
	}
}
