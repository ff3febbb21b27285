package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/policies/semcache"
)

// The semantic scenario: what the semantic cache adds to an exact miss of
// an opted-in call (the prompt rendered, embedded, its scope scanned), with
// the embedding made in process and over loopback HTTP to the mock's
// /v1/embeddings; and the in-process index's lookup time and heap at 100k
// entries of one scope (docs/semantic-cache.md).
const scenarioSemantic = "semantic"

func init() { allScenarios = append(allScenarios, scenarioSemantic) }

const (
	semIndexEntries = 100_000
	semIndexDims    = 256
	semScopeEntries = 1000 // the scope the miss path scans
)

type semanticResult struct {
	LookupNs, HeapPerEntry       float64 // index of semIndexEntries
	MissInProcNs, MissMockHTTPNs float64 // miss path, scope of semScopeEntries
}

// discardStore keeps nothing: the index alone is measured.
type discardStore struct{}

func (discardStore) AddSemantic(context.Context, semcache.Entry, []byte, time.Duration) error {
	return nil
}
func (discardStore) SemanticEntry(context.Context, string) ([]byte, error) { return nil, nil }
func (discardStore) SemanticSince(_ context.Context, c string, _ int) ([]semcache.Entry, string, error) {
	return nil, c, nil
}

// queue hands out the vectors it is given, then repeats the last.
type queue struct{ next, last []float32 }

func (q *queue) Embed(context.Context, string) ([]float32, error) {
	if q.next != nil {
		v := q.next
		q.next = nil
		return v, nil
	}
	return q.last, nil
}

func runSemantic(ctx context.Context, pr *progress) (*semanticResult, error) {
	res := &semanticResult{}
	r := rand.New(rand.NewPCG(7, 8))
	randomUnit := func(dims int) []float32 {
		v := make([]float32, dims)
		var n float64
		for i := range v {
			v[i] = float32(r.NormFloat64())
			n += float64(v[i] * v[i])
		}
		for i := range v {
			v[i] /= float32(math.Sqrt(n))
		}
		return v
	}

	// The index at 100k entries of one scope: every lookup scans them all.
	q := &queue{last: randomUnit(semIndexDims)}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := semcache.New(semcache.Options{Store: discardStore{}, Embedder: q, EmbedTimeout: time.Second,
		MaxEntriesPerScope: semIndexEntries, MaxEntries: semIndexEntries})
	if err != nil {
		return nil, err
	}
	for i := range semIndexEntries {
		c.Add(ctx, "scope", strconv.Itoa(i), randomUnit(semIndexDims), nil, time.Hour)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	res.HeapPerEntry = float64(after.HeapAlloc-before.HeapAlloc) / semIndexEntries
	b := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			_, _, _ = c.Lookup(ctx, "scope", "q", 2)
		}
	})
	res.LookupNs = float64(b.NsPerOp())
	runtime.KeepAlive(c)
	pr.printf("semantic index, %d entries of %d dims: lookup %.2f ms, %.0f B per entry",
		semIndexEntries, semIndexDims, res.LookupNs/1e6, res.HeapPerEntry)

	// The miss path: PromptText, the embedding, a scan of a 1000-entry scope.
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},` +
		`{"role":"user","content":"Which river runs through the middle of Vienna?"}]}`)
	mock := httptest.NewServer(mockprovider.New(mockprovider.Options{}))
	defer mock.Close()
	http := &semcache.HTTPEmbedder{BaseURL: mock.URL, Model: "text-embedding-3-small"}
	probe, err := http.Embed(ctx, "x")
	if err != nil {
		return nil, fmt.Errorf("semantic: the mock's embeddings: %w", err)
	}
	for _, tc := range []struct {
		e   semcache.Embedder
		out *float64
	}{
		{&queue{last: randomUnit(len(probe))}, &res.MissInProcNs},
		{http, &res.MissMockHTTPNs},
	} {
		c, err := semcache.New(semcache.Options{Store: discardStore{}, Embedder: tc.e, EmbedTimeout: time.Second})
		if err != nil {
			return nil, err
		}
		for i := range semScopeEntries {
			c.Add(ctx, "scope", strconv.Itoa(i), randomUnit(len(probe)), nil, time.Hour)
		}
		b := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				if _, _, err := c.Lookup(ctx, "scope", semcache.PromptText(body), 2); err != nil {
					b.Fatal(err)
				}
			}
		})
		*tc.out = float64(b.NsPerOp())
	}
	pr.printf("semantic miss path, scope of %d: %.0f µs embedding in process, %.0f µs over loopback HTTP",
		semScopeEntries, res.MissInProcNs/1e3, res.MissMockHTTPNs/1e3)
	return res, nil
}

// writeSemantic is the report's section.
func writeSemantic(w io.Writer, r *semanticResult) {
	if r == nil {
		return
	}
	fmt.Fprintf(w, "## Semantic cache\n\n")
	fmt.Fprintf(w, "What an opted-in exact miss adds (the prompt rendered, embedded, a scope of %d answers of the "+
		"mock's %s-dimension vectors scanned), and the in-process index at %d entries of one scope (%d dimensions; "+
		"a lookup scans the whole scope). The embedding over HTTP goes to the mock over loopback: a real endpoint "+
		"adds its network and model time, bounded by --semantic-cache-timeout.\n\n",
		semScopeEntries, "256", semIndexEntries, semIndexDims)
	fmt.Fprintf(w, "| Measure | Value |\n|---|--:|\n")
	fmt.Fprintf(w, "| Miss path, embedding excluded (µs) | %.0f |\n", r.MissInProcNs/1e3)
	fmt.Fprintf(w, "| Miss path, embedding over loopback HTTP (µs) | %.0f |\n", r.MissMockHTTPNs/1e3)
	fmt.Fprintf(w, "| Index lookup, %d entries (ms) | %.2f |\n", semIndexEntries, r.LookupNs/1e6)
	fmt.Fprintf(w, "| Index heap per entry (B) | %.0f |\n\n", r.HeapPerEntry)
}
