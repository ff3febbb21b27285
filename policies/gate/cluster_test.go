package gate_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// TestRedisCluster runs the Gate semantics, the exact-admission test and
// TTL expiry against a real 3-node Redis Cluster that the test starts and
// stops itself (storage/redisstore runs the store conformance suite on one
// too). Every key of a call is hash-tagged by tenant, so a CROSSSLOT error
// anywhere fails these tests.
func TestRedisCluster(t *testing.T) {
	url := testenv.StartRedisCluster(t)
	be := redisBackend(t, "cluster", url)
	t.Run("gate", func(t *testing.T) { runGateSemantics(t, be) })
	t.Run("exact", func(t *testing.T) { runExactAdmission(t, url) })
	t.Run("ttl", func(t *testing.T) { runTTLExpiry(t, be) })
	t.Run("tenants spread over nodes", func(t *testing.T) {
		c, err := redis.ParseClusterURL(strings.Replace(strings.Split(url, ",")[0], "redis+cluster", "redis", 1))
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClusterClient(c)
		defer rdb.Close()
		g := newRig(t, newRedisStore(t, rdb))
		ctx := context.Background()
		for i := range 30 {
			g.check(t, call{tenant: "tenant-" + strconv.Itoa(i), headers: limit("5;w=60").headers})
		}
		var masters atomic.Int32 // ForEachMaster runs in parallel
		err = rdb.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			if n.DBSize(ctx).Val() > 0 {
				masters.Add(1)
			}
			return nil
		})
		if err != nil || masters.Load() < 2 {
			t.Fatalf("30 tenants landed on %d nodes (err %v); want them spread", masters.Load(), err)
		}
	})
}
