package gate_test

import (
	"context"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/storage/redisstore"
)

// TestErasureIndexOnRedis: a call's cache entry is added to the index
// sets of its user, session, request id and properties, and storing it
// is still one round trip to Redis; Check makes exactly one as before.
// EraseIndexed by the user's set then removes the entry: the next call
// misses.
func TestErasureIndexOnRedis(t *testing.T) {
	s, err := redisstore.Open(testenv.RedisURL(t), redisstore.Options{Prefix: "test-" + randomID() + ":", MaxInFlight: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	g := newRig(t, s)
	c := cacheOn.with("Helicone-Session-Id", "s-9", "Helicone-Property-App", "web")
	c.tenant, c.user = "acme", "alice"
	g.respond(g.check(t, c), 200, "warm", 0) // dials, loads the scripts

	c.body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"index me"}]}`
	before := s.RoundTrips()
	d := g.check(t, c)
	if n := s.RoundTrips() - before; n != 1 {
		t.Errorf("Check: %d round trips, want 1", n)
	}
	before = s.RoundTrips()
	g.respond(d, 200, "A", 0)
	if n := s.RoundTrips() - before; n != 1 {
		t.Errorf("storing the entry with its index: %d round trips, want 1", n)
	}
	for _, k := range []string{
		gate.ErasureIndexKey("acme", "user", "alice"), gate.ErasureIndexKey("acme", "session", "s-9"),
		gate.ErasureIndexKey("acme", "property", gate.PropertyIndexValue("app", "web")),
	} {
		if !contains(d.ErasureIndex("req-A"), k) {
			t.Errorf("ErasureIndex lacks %s", k)
		}
	}
	if got := cacheState(g.check(t, c)); got != "HIT:0:A" {
		t.Fatalf("before the erasure: %s", got)
	}
	if n, err := s.EraseIndexed(context.Background(), []string{gate.ErasureIndexKey("acme", "user", "alice")}); err != nil || n != 2 {
		t.Fatalf("EraseIndexed = %d, %v; want the two entries (warm-up and A)", n, err)
	}
	if got := cacheState(g.check(t, c)); got != "MISS" {
		t.Errorf("after the erasure: %s", got)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
