package redisstore

import (
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/gate"
	gatestoretest "github.com/tollgate-dev/tollgate/policies/gate/storetest"
	"github.com/tollgate-dev/tollgate/policies/prompt"
	promptstoretest "github.com/tollgate-dev/tollgate/policies/prompt/storetest"
)

// The conformance suites of the policy packages whose stores this package
// implements, against the shared Redis of the test environment and a Redis
// Cluster of the test's own; storage/memstore runs the same ones.

func TestStoreConformance(t *testing.T) {
	gatestoretest.Run(t, gateStores(t, testenv.RedisURL(t)))
}

// TestStoreRedisCluster: every key of a call is hash-tagged by tenant, so
// a CROSSSLOT error anywhere fails this.
func TestStoreRedisCluster(t *testing.T) {
	gatestoretest.Run(t, gateStores(t, testenv.StartRedisCluster(t)))
}

func TestPromptStoreConformance(t *testing.T) {
	promptstoretest.Run(t, promptStores(t, testenv.RedisURL(t)))
}

// TestPromptStoreRedisCluster: each prompt is one hash-tagged key, so a
// CROSSSLOT error (or a MULTI spanning nodes) anywhere fails this.
func TestPromptStoreRedisCluster(t *testing.T) {
	promptstoretest.Run(t, promptStores(t, testenv.StartRedisCluster(t)))
}

// promptStores gives every store its own key prefix on one shared client,
// as one Tollgate replica would.
func promptStores(t *testing.T, url string) func(*testing.T) prompt.Store {
	t.Helper()
	c, err := NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return func(t *testing.T) prompt.Store {
		t.Helper()
		// A generous timeout: the race detector on a shared 2-core machine.
		s, err := NewPromptStore(c, PromptOptions{Prefix: promptTestPrefix(), Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// gateStores shares one client between all stores it opens, as one
// Tollgate replica would; each store has its own key prefix.
func gateStores(t *testing.T, url string) func(testing.TB) gate.Store {
	t.Helper()
	c, err := NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return func(t testing.TB) gate.Store {
		t.Helper()
		s, err := New(c, Options{Prefix: promptTestPrefix()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}
