package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
	"github.com/tollgate-dev/tollgate/policies/semcache"
)

// TestEraseIndexed: entries stored with an erasure index (exact slots,
// one round trip each; semantic entries) are all found and deleted by
// their subject's set, on every replica's semantic index too; another
// user's and another tenant's entries stay.
func TestEraseIndexed(t *testing.T) {
	prefix := promptTestPrefix()
	open := func() *Store {
		s, err := Open(testenv.RedisURL(t), Options{Prefix: prefix, MaxInFlight: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	ctx := context.Background()
	s := open()
	idx := func(tenant, user string) []string {
		return []string{gate.ErasureIndexKey(tenant, "user", user), gate.ErasureIndexKey(tenant, "session", "s-"+user)}
	}
	ck := func(tenant, n string) string { return ratelimit.TenantKeyPrefix(tenant) + "c:" + n }

	// The first call dials and loads the script; then a fill and its
	// index are one round trip.
	if _, err := s.FillIndexed(ctx, ck("a", "warm"), 1, []byte("x"), time.Hour, idx("a", "warm")); err != nil {
		t.Fatal(err)
	}
	before := s.RoundTrips()
	if slot, err := s.FillIndexed(ctx, ck("a", "1"), 2, []byte("u1 answer"), time.Hour, idx("a", "u1")); err != nil || slot != 0 {
		t.Fatalf("FillIndexed = %d, %v", slot, err)
	}
	if n := s.RoundTrips() - before; n != 1 {
		t.Errorf("FillIndexed took %d round trips, want 1", n)
	}
	if err := s.PutIndexed(ctx, ck("a", "2"), 0, []byte("u1 refreshed"), time.Hour, idx("a", "u1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FillIndexed(ctx, ck("a", "3"), 1, []byte("u2 answer"), time.Hour, idx("a", "u2")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FillIndexed(ctx, ck("b", "1"), 1, []byte("tenant b's u1"), time.Hour, idx("b", "u1")); err != nil {
		t.Fatal(err)
	}
	if ttl := s.Client().PTTL(ctx, prefix+idx("a", "u1")[0]).Val(); ttl <= 59*time.Minute {
		t.Errorf("index set TTL %v, want about the entry's hour", ttl)
	}

	// Semantic entries through two replicas' caches.
	vec := []float32{0.6, 0.8, 0}
	newCache := func() *semcache.Cache {
		c, err := semcache.New(semcache.Options{Store: open().Semantic(100), Embedder: fixedEmbedder(vec), StoreTimeout: testStoreTimeout})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c1, c2 := newCache(), newCache()
	scopeU1, scopeU2 := ratelimit.TenantKeyPrefix("a")+"sc:1", ratelimit.TenantKeyPrefix("a")+"sc:2"
	c1.Add(ctx, scopeU1, "r1", vec, []byte("u1 semantic"), time.Hour, idx("a", "u1")...)
	c1.Add(ctx, scopeU2, "r2", vec, []byte("u2 semantic"), time.Hour, idx("a", "u2")...)
	c2.Follow(ctx)
	for _, c := range []*semcache.Cache{c1, c2} {
		if _, m, _ := c.Lookup(ctx, scopeU1, "q", 0.99); m == nil {
			t.Fatal("u1's semantic entry not indexed")
		}
	}

	n, err := s.EraseIndexed(ctx, idx("a", "u1"))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("EraseIndexed deleted %d entries, want 3 (two exact, one semantic)", n)
	}
	for _, k := range []string{gate.CacheSlotKey(ck("a", "1"), 0), gate.CacheSlotKey(ck("a", "2"), 0), idx("a", "u1")[0], idx("a", "u1")[1]} {
		if s.Client().Exists(ctx, prefix+k).Val() != 0 {
			t.Errorf("%s still exists", k)
		}
	}
	for _, k := range []string{gate.CacheSlotKey(ck("a", "3"), 0), gate.CacheSlotKey(ck("b", "1"), 0)} {
		if s.Client().Exists(ctx, prefix+k).Val() != 1 {
			t.Errorf("%s (not erased) is gone", k)
		}
	}
	// Every replica's index drops it once it follows; one started later
	// never sees it, and the log keeps no vector of it.
	c1.Follow(ctx)
	c2.Follow(ctx)
	c3 := newCache()
	c3.Follow(ctx)
	for i, c := range []*semcache.Cache{c1, c2, c3} {
		if _, m, _ := c.Lookup(ctx, scopeU1, "q", 0.5); m != nil {
			t.Errorf("replica %d still finds u1's semantic entry", i+1)
		}
		if _, m, _ := c.Lookup(ctx, scopeU2, "q", 0.99); m == nil {
			t.Errorf("replica %d lost u2's semantic entry", i+1)
		}
	}
	entries, _, err := open().Semantic(100).SemanticSince(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Deleted && e.RefID == "r1" {
			t.Errorf("the log still holds u1's addition %s", e.ID)
		}
	}
}

// TestLease: one owner at a time; the holder renews.
func TestLease(t *testing.T) {
	s, err := Open(testenv.RedisURL(t), Options{Prefix: promptTestPrefix()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, c := range []struct {
		owner string
		want  bool
	}{{"a", true}, {"b", false}, {"a", true}} {
		if got, err := s.TryLease(ctx, "job", c.owner, time.Minute); err != nil || got != c.want {
			t.Errorf("TryLease(%s) = %v, %v; want %v", c.owner, got, err, c.want)
		}
	}
}
