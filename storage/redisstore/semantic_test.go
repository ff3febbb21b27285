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
// expire with their TTL.
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
	if err := first.AddSemantic(ctx, e, []byte("answer"), time.Second); err != nil {
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

	// Through the Cache: the later replica's index finds it.
	c, err := semcache.New(semcache.Options{Store: later, Embedder: fixedEmbedder(vec)})
	if err != nil {
		t.Fatal(err)
	}
	c.Follow(ctx)
	if _, m, err := c.Lookup(ctx, e.Scope, "q", 0.99); err != nil || m == nil || m.ID != e.ID {
		t.Errorf("Lookup = %v, %v", m, err)
	}
	if _, m, _ := c.Lookup(ctx, "{t:b}sc:1", "q", 0.5); m != nil {
		t.Errorf("another scope hit %v", m)
	}

	// The answer expires with its TTL (Redis's clock): gone, a miss.
	deadline := time.Now().Add(5 * time.Second)
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

type fixedEmbedder []float32

func (f fixedEmbedder) Embed(context.Context, string) ([]float32, error) {
	return append([]float32(nil), f...), nil
}
