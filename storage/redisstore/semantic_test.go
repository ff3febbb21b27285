package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/semcache"
)

// The semantic store on a real Redis: what one replica adds, a replica
// started later reads from the stream and finds by similarity; entries
// expire with their TTL. The TTL and the cache's Redis timeout leave room
// for a loaded machine between the steps.
func TestSemanticStoreSharedByReplicas(t *testing.T) {
	prefix := promptTestPrefix()
	open := func() *SemanticStore {
		s, err := Open(testenv.RedisURL(t), Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s.Semantic(100)
	}
	ctx := context.Background()
	first := open()
	vec := []float32{0.6, 0.8, 0}
	e := semcache.Entry{Scope: "{t:a}sc:1", ID: "{t:a}sc:1:r1", Vector: vec, ExpiresUnixMs: time.Now().Add(time.Hour).UnixMilli()}
	if err := first.AddSemantic(ctx, e, []byte("answer"), 3*time.Second); err != nil {
		t.Fatal(err)
	}

	later := open()
	got, cursor, err := later.SemanticSince(ctx, "", 10)
	if err != nil || len(got) != 1 || cursor == "" {
		t.Fatalf("SemanticSince = %v, %q, %v", got, cursor, err)
	}
	if g := got[0]; g.Scope != e.Scope || g.ID != e.ID || g.ExpiresUnixMs != e.ExpiresUnixMs || len(g.Vector) != 3 || g.Vector[1] != 0.8 {
		t.Errorf("entry = %+v, want %+v", g, e)
	}
	if more, _, err := later.SemanticSince(ctx, cursor, 10); err != nil || len(more) != 0 {
		t.Errorf("after the cursor: %v, %v", more, err)
	}
	if b, err := later.SemanticEntry(ctx, e.ID); err != nil || string(b) != "answer" {
		t.Errorf("SemanticEntry = %q, %v", b, err)
	}

	// Through the Cache: what one replica's cache adds, a later one's
	// index finds.
	c1, err := semcache.New(semcache.Options{Store: first, Embedder: fixedEmbedder(vec), StoreTimeout: testStoreTimeout})
	if err != nil {
		t.Fatal(err)
	}
	c1.Add(ctx, "{t:a}sc:2", "r2", vec, []byte("answer 2"), time.Hour)
	c, err := semcache.New(semcache.Options{Store: later, Embedder: fixedEmbedder(vec), StoreTimeout: testStoreTimeout})
	if err != nil {
		t.Fatal(err)
	}
	c.Follow(ctx)
	if _, m, err := c.Lookup(ctx, "{t:a}sc:2", "q", 0.99); err != nil || m == nil || string(c.Entry(ctx, "{t:a}sc:2", m.ID)) != "answer 2" {
		t.Errorf("Lookup = %v, %v", m, err)
	}
	if _, m, _ := c.Lookup(ctx, "{t:b}sc:2", "q", 0.5); m != nil {
		t.Errorf("another scope hit %v", m)
	}

	// The answer expires with its TTL (Redis's clock): gone, a miss.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := later.SemanticEntry(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if b == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry outlived its TTL")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testStoreTimeout replaces the semantic cache's 50 ms Redis limit, a
// production figure a loaded test machine can exceed.
const testStoreTimeout = 5 * time.Second

type fixedEmbedder []float32

func (f fixedEmbedder) Embed(context.Context, string) ([]float32, error) {
	return append([]float32(nil), f...), nil
}

// An entry id is written once (SET NX), and a stream record cannot name
// an exact cache entry: semantic answers live in a key space of their own.
func TestSemanticEntryWrittenOnceInItsOwnKeys(t *testing.T) {
	prefix := promptTestPrefix()
	rs, err := Open(testenv.RedisURL(t), Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	s := rs.Semantic(100)
	ctx := context.Background()
	e := semcache.Entry{Scope: "{t:a}sc:1", ID: "{t:a}sc:1:x", Vector: []float32{1}, ExpiresUnixMs: time.Now().Add(time.Hour).UnixMilli()}
	_ = s.AddSemantic(ctx, e, []byte("first"), time.Hour)
	_ = s.AddSemantic(ctx, e, []byte("poison"), time.Hour)
	if b, err := s.SemanticEntry(ctx, e.ID); err != nil || string(b) != "first" {
		t.Errorf("after a second write of the id: %q, %v", b, err)
	}
	exact := "{t:a}c:0123"
	if err := rs.c.Set(ctx, prefix+exact, "exact answer", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if b, err := s.SemanticEntry(ctx, exact); err != nil || b != nil {
		t.Errorf("an exact cache key read as a semantic entry: %q, %v", b, err)
	}
}

// Trimming by age drops the stream's records added before the cut, so
// vectors and scope names do not outlive their answers.
func TestSemanticTrimByAge(t *testing.T) {
	rs, err := Open(testenv.RedisURL(t), Options{Prefix: promptTestPrefix()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	s := rs.Semantic(100)
	var _ semcache.Trimmer = s
	ctx := context.Background()
	e := semcache.Entry{Scope: "{t:a}sc:1", ID: "{t:a}sc:1:x", Vector: []float32{1}, ExpiresUnixMs: time.Now().Add(time.Hour).UnixMilli()}
	if err := s.AddSemantic(ctx, e, []byte("a"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.TrimSemantic(ctx, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.SemanticSince(ctx, "", 10); len(got) != 1 {
		t.Fatalf("a record younger than the cut was trimmed: %v", got)
	}
	if err := s.TrimSemantic(ctx, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.SemanticSince(ctx, "", 10); len(got) != 0 {
		t.Errorf("a record older than the cut was kept: %v", got)
	}
}
