package housekeeping_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/storage/housekeeping"
	"github.com/tollgate-dev/tollgate/storage/redisstore"
)

// TestLeaseHeldThroughLongPasses: two processes run the same job under a
// Redis lease whose time to live is shorter than a pass; the lease is
// renewed while a pass runs, so the two never run a pass at once. The
// lease is long enough that a stalled renewal (a loaded machine) does not
// let it lapse: a renewal comes every third of it.
func TestLeaseHeldThroughLongPasses(t *testing.T) {
	rs, err := redisstore.Open(testenv.RedisURL(t), redisstore.Options{Prefix: fmt.Sprintf("hk-test-%x:", rand.Uint64())})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	const ttl = 2 * time.Second
	var running, overlaps, passes atomic.Int32
	pass := func(ctx context.Context) error {
		if running.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer running.Add(-1)
		select { // a pass twice the lease's time to live
		case <-time.After(2 * ttl):
		case <-ctx.Done():
		}
		passes.Add(1)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, owner := range []string{"one", "two"} {
		job := housekeeping.Job{Name: "test", Interval: 20 * time.Millisecond, LeaseTTL: ttl, Pass: pass,
			Lease: func(ctx context.Context) (bool, error) { return rs.TryLease(ctx, "hk-test", owner, ttl) }}
		wg.Add(1)
		go func() { defer wg.Done(); housekeeping.Run(ctx, job, nil) }()
	}
	testenv.WaitFor(t, 60*time.Second, "four passes", func() bool { return passes.Load() >= 4 })
	cancel()
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d passes started while another ran", n)
	}
}
