package app

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/internal/devtest"
	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/policies/semcache"
)

// embeddingsServer is the mock provider's /v1/embeddings (a hashed bag of
// words) as the semantic cache's endpoint.
func embeddingsServer(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(mockprovider.New(mockprovider.Options{}))
	t.Cleanup(s.Close)
	return s.URL
}

func chatBody(question string, stream bool) string {
	return fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%t,"messages":[{"role":"user","content":%q}]}`, stream, question)
}

func semanticHeaders(seed, id string) map[string]string {
	return map[string]string{"Helicone-Cache-Enabled": "true", "Helicone-Cache-Semantic-Enabled": "true",
		"Helicone-Cache-Semantic-Threshold": "0.8", "Helicone-Cache-Seed": seed, "Helicone-Request-Id": id,
		"Authorization": "Bearer sk-test"}
}

// Two `tollgate dev` instances on one Redis: the second, started after the
// first stored an answer, serves a paraphrase of its question from it (a
// stream replayed as a stream), misses a different question, and never
// answers another tenant from it.
func TestSemanticCacheAcrossReplicas(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	emb := embeddingsServer(t)
	args := append([]string{"--redis", redisURL, "--semantic-cache-url", emb, "--semantic-cache-timeout", "1s"}, generousStoreTimeouts...)
	a := startDev(t, args...)

	seed := uuid.NewString() // a fresh scope per run
	first := uuid.NewString()
	r1, _ := call{path: "/v1/chat/completions", body: chatBody("What is the capital city of France?", false),
		headers: semanticHeaders(seed, first)}.do(t, a)
	if r1.StatusCode != 200 || r1.Header.Get("Helicone-Cache") != "MISS" {
		t.Fatalf("first call: %d %q", r1.StatusCode, r1.Header.Get("Helicone-Cache"))
	}
	streamed := uuid.NewString()
	r1s, _ := call{path: "/v1/chat/completions", body: chatBody("Name the largest planet in the solar system", true),
		headers: semanticHeaders(seed, streamed)}.do(t, a)
	if r1s.StatusCode != 200 {
		t.Fatalf("streamed call: %d", r1s.StatusCode)
	}
	devtest.WaitForCounter(t, a.addrs["http"], "tollgate_semantic_cache_added_total", 2)

	b := startDev(t, args...) // started later: reads a's entries from Redis
	hitID := uuid.NewString()
	r2, _ := call{path: "/v1/chat/completions", body: chatBody("Tell me France's capital city, please", false),
		headers: semanticHeaders(seed, hitID)}.do(t, b)
	sim, _ := strconv.ParseFloat(r2.Header.Get("Helicone-Cache-Similarity"), 64)
	if r2.StatusCode != 200 || r2.Header.Get("Helicone-Cache") != "HIT" || sim < 0.8 || sim > 1 {
		t.Fatalf("paraphrase on the later replica: %d %q similarity %q", r2.StatusCode,
			r2.Header.Get("Helicone-Cache"), r2.Header.Get("Helicone-Cache-Similarity"))
	}

	streamHit := uuid.NewString()
	r2s, sbody := call{path: "/v1/chat/completions", body: chatBody("Which is the largest planet in the solar system?", true),
		headers: semanticHeaders(seed, streamHit)}.do(t, b)
	if r2s.Header.Get("Helicone-Cache") != "HIT" || !strings.HasPrefix(r2s.Header.Get("content-type"), "text/event-stream") ||
		!strings.Contains(sbody, "data: [DONE]") {
		t.Fatalf("streamed paraphrase: %q %q\n%s", r2s.Header.Get("Helicone-Cache"), r2s.Header.Get("content-type"), sbody)
	}

	missID := uuid.NewString()
	r3, _ := call{path: "/v1/chat/completions", body: chatBody("How do I bake sourdough bread?", false),
		headers: semanticHeaders(seed, missID)}.do(t, b)
	if r3.Header.Get("Helicone-Cache") != "MISS" {
		t.Errorf("different question: %q", r3.Header.Get("Helicone-Cache"))
	}

	other := semanticHeaders(seed, uuid.NewString())
	other["Helicone-Auth"] = "Bearer another-tenant"
	r4, _ := call{path: "/v1/chat/completions", body: chatBody("What is the capital city of France?", false), headers: other}.do(t, b)
	if r4.Header.Get("Helicone-Cache") != "MISS" {
		t.Errorf("another tenant, the very same question: %q", r4.Header.Get("Helicone-Cache"))
	}

	recs := b.records(t)
	hit := recs[hitID]
	if hit == nil || !hit.CacheHit || hit.CacheReferenceID != first || hit.CacheSimilarity < 0.8 {
		t.Errorf("hit record = %+v, want cache_hit, cache_reference_id %s and the similarity", hit, first)
	}
	if sh := recs[streamHit]; sh == nil || !sh.CacheHit || sh.CacheReferenceID != streamed {
		t.Errorf("streamed hit record = %+v", sh)
	}
	if m := recs[missID]; m == nil || m.CacheHit || m.CacheSimilarity != 0 {
		t.Errorf("miss record = %+v", m)
	}
}

// An embeddings endpoint that is down or slower than the timeout costs the
// call nothing but the timeout: it is answered by the provider, uncached,
// and the failure is counted.
func TestSemanticCacheEmbeddingsDownOrSlow(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client leave
		select {                           // never answers in time
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // nothing listens there any more

	for _, tc := range []struct{ name, url, result string }{
		{"slow", slow.URL, "timeout"},
		{"down", downURL, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDev(t, "--semantic-cache-url", tc.url, "--semantic-cache-timeout", "50ms")
			resp, body := call{path: "/v1/chat/completions", body: chatBody("What is the capital city of France?", false),
				headers: semanticHeaders(uuid.NewString(), uuid.NewString())}.do(t, d)
			if resp.StatusCode != 200 || resp.Header.Get("Helicone-Cache") != "MISS" || !strings.Contains(body, "chat.completion") {
				t.Fatalf("call: %d %q\n%s", resp.StatusCode, resp.Header.Get("Helicone-Cache"), body)
			}
			if got := devtest.Counter(t, d.addrs["http"], "tollgate_semantic_cache_embeddings_total", `result="`+tc.result+`"`); got != 1 {
				t.Errorf("tollgate_semantic_cache_embeddings_total{result=%q} = %v, want 1", tc.result, got)
			}
		})
	}
}

// A threshold that is not a similarity is a 400 naming the header, before
// any call; in process (no Redis) the cache hits within one instance.
func TestSemanticCacheInProcessAndBadThreshold(t *testing.T) {
	d := startDev(t, "--semantic-cache-url", embeddingsServer(t), "--semantic-cache-timeout", "1s")
	h := semanticHeaders(uuid.NewString(), uuid.NewString())
	h["Helicone-Cache-Semantic-Threshold"] = "1.5"
	resp, body := call{path: "/v1/chat/completions", body: chatBody("hello", false), headers: h}.do(t, d)
	if resp.StatusCode != 400 || !strings.Contains(body, "Helicone-Cache-Semantic-Threshold") {
		t.Fatalf("bad threshold: %d %s", resp.StatusCode, body)
	}

	seed := uuid.NewString()
	r1, _ := call{path: "/v1/chat/completions", body: chatBody("What is the capital city of France?", false),
		headers: semanticHeaders(seed, uuid.NewString())}.do(t, d)
	devtest.WaitForCounter(t, d.addrs["http"], "tollgate_semantic_cache_added_total", 1)
	limited := semanticHeaders(seed, uuid.NewString())
	limited["Helicone-RateLimit-Policy"] = "100;w=60"
	r2, _ := call{path: "/v1/chat/completions", body: chatBody("France capital city?", false), headers: limited}.do(t, d)
	if r1.Header.Get("Helicone-Cache") != "MISS" || r2.Header.Get("Helicone-Cache") != "HIT" {
		t.Errorf("in process: %q then %q", r1.Header.Get("Helicone-Cache"), r2.Header.Get("Helicone-Cache"))
	}
	if r2.Header.Get("Helicone-RateLimit-Limit") != "100" {
		t.Errorf("a semantic hit under a rate-limit policy: Helicone-RateLimit-Limit %q", r2.Header.Get("Helicone-RateLimit-Limit"))
	}
	// Without the opt-in the same paraphrase is an exact miss.
	plain := semanticHeaders(seed, uuid.NewString())
	delete(plain, "Helicone-Cache-Semantic-Enabled")
	r3, _ := call{path: "/v1/chat/completions", body: chatBody("France capital city!", false), headers: plain}.do(t, d)
	if r3.Header.Get("Helicone-Cache") != "MISS" || r3.Header.Get(semcache.HeaderSimilarity) != "" {
		t.Errorf("without the opt-in: %q", r3.Header.Get("Helicone-Cache"))
	}
}

// The semantic switch without the cache read says so in Helicone-Warning.
func TestSemanticCacheNeedsTheCache(t *testing.T) {
	d := startDev(t, "--semantic-cache-url", embeddingsServer(t))
	h := semanticHeaders(uuid.NewString(), uuid.NewString())
	delete(h, "Helicone-Cache-Enabled")
	resp, _ := call{path: "/v1/chat/completions", body: chatBody("hello there", false), headers: h}.do(t, d)
	if resp.StatusCode != 200 || resp.Header.Get("Helicone-Cache") != "" ||
		!strings.Contains(resp.Header.Get("Helicone-Warning"), "semantic cache is off") {
		t.Errorf("%d %q warning %q", resp.StatusCode, resp.Header.Get("Helicone-Cache"), resp.Header.Get("Helicone-Warning"))
	}
}

// The egress policy turns the semantic cache on (and sets its threshold)
// for calls that send no header of their own.
func TestSemanticCacheByEgressPolicy(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, policy, "defaults:\n  cache: {enabled: true, semantic: true, semanticThreshold: 0.8}\n")
	d := startDev(t, "--egress-policy", policy, "--semantic-cache-url", embeddingsServer(t), "--semantic-cache-timeout", "1s")
	r1, _ := call{path: "/v1/chat/completions", body: chatBody("Which river runs through Vienna?", false),
		headers: map[string]string{}}.do(t, d)
	devtest.WaitForCounter(t, d.addrs["http"], "tollgate_semantic_cache_added_total", 1)
	r2, _ := call{path: "/v1/chat/completions", body: chatBody("Vienna: which river runs through it", false),
		headers: map[string]string{}}.do(t, d)
	if r1.Header.Get("Helicone-Cache") != "MISS" || r2.Header.Get("Helicone-Cache") != "HIT" || r2.Header.Get("Helicone-Cache-Similarity") == "" {
		t.Errorf("by policy: %q then %q (similarity %q)", r1.Header.Get("Helicone-Cache"), r2.Header.Get("Helicone-Cache"),
			r2.Header.Get("Helicone-Cache-Similarity"))
	}
	// The request's own switch wins over the policy's.
	off := map[string]string{"Helicone-Cache-Semantic-Enabled": "false"}
	r3, _ := call{path: "/v1/chat/completions", body: chatBody("Through Vienna, which river runs", false), headers: off}.do(t, d)
	if r3.Header.Get("Helicone-Cache") != "MISS" {
		t.Errorf("switched off by the request: %q", r3.Header.Get("Helicone-Cache"))
	}
}
