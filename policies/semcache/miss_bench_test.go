package semcache_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/policies/semcache"
)

// BenchmarkSemanticMiss is what the semantic cache adds to an exact miss
// of an opted-in call, against a scope of 1000 earlier answers: the prompt
// rendered, embedded and compared. "embed=excluded" embeds in process (a
// bag of words, like the mock's, at 64 dimensions); "embed=mock-http"
// calls the mock provider's /v1/embeddings over loopback HTTP (256
// dimensions), the shape of a real embeddings call without its network
// and model time.
func BenchmarkSemanticMiss(b *testing.B) {
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},` +
		`{"role":"user","content":"Which river runs through the middle of Vienna?"}]}`)
	mock := httptest.NewServer(mockprovider.New(mockprovider.Options{}))
	b.Cleanup(mock.Close)
	for _, tc := range []struct {
		name string
		e    semcache.Embedder
	}{
		{"embed=excluded", bagOfWords{}},
		{"embed=mock-http", &semcache.HTTPEmbedder{BaseURL: mock.URL, Model: "text-embedding-3-small"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := semcache.New(semcache.Options{Store: semcache.NewMemStore(0, nil), Embedder: tc.e,
				EmbedTimeout: time.Second, MaxEntriesPerScope: 1000})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for i := range 1000 {
				vec, _, err := c.Lookup(ctx, "scope", fmt.Sprintf("question number %d about topic %d", i, i*7), 1)
				if err != nil {
					b.Fatal(err)
				}
				c.Add(ctx, "scope", fmt.Sprint("r", i), vec, []byte("answer"), time.Hour)
			}
			for b.Loop() {
				text := semcache.PromptText(body)
				if _, m, err := c.Lookup(ctx, "scope", text, 0.99); err != nil || m != nil {
					b.Fatalf("want a miss: %v %v", m, err)
				}
			}
		})
	}
}

// FuzzPromptText: request bodies are untrusted; rendering never panics.
func FuzzPromptText(f *testing.F) {
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}],"system":[{"text":"s"}]}`))
	f.Add([]byte(`{"input":[{"role":"user","content":"x"},"y",3],"prompt":["p",null]}`))
	f.Add([]byte(`{"messages":"not a list","system":{"x":1}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = semcache.PromptText(body)
	})
}
