// Package storetest is the gate.Store conformance suite: written once
// here, run by every implementation in its own tests (storage/memstore
// against itself, storage/redisstore against a single Redis and a Redis
// Cluster), so that all of them keep the promises the Gate relies on.
// Buckets here use short windows (the 60 s minimum belongs to the policy
// grammar, not the store) so that refill is observable in a fraction of a
// second.
package storetest

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

func bucket(key string, capacity float64, window time.Duration) ratelimit.BucketRef {
	return ratelimit.BucketRef{Key: "tg:{t}:rl:" + key, Capacity: capacity, Window: window}
}

func take(b ratelimit.BucketRef, cost float64) ratelimit.BucketTake {
	return ratelimit.BucketTake{BucketRef: b, Cost: cost}
}

const ck = "tg:{t}:c:abc" // a cache key

// Run runs the suite. open returns a fresh, empty store each time it is
// called (for Redis, a new key prefix on a shared client): the cases run
// in parallel and must not see each other's keys.
func Run(t *testing.T, open func(t testing.TB) gate.Store) {
	ctx := context.Background()
	day := 24 * time.Hour
	tests := []struct {
		name string
		run  func(t *testing.T, s gate.Store)
	}{
		{"empty key is a miss", func(t *testing.T, s gate.Store) {
			res := admit(t, s, gate.StoreAdmit{CacheKey: ck, Slots: 1})
			if res.Hit || res.Filled != 0 || res.Slot != -1 || res.Entry != nil {
				t.Fatalf("got %+v", res)
			}
		}},
		{"fill then hit", func(t *testing.T, s gate.Store) {
			if slot := fill(t, s, ck, 1, "one"); slot != 0 {
				t.Fatalf("slot %d", slot)
			}
			res := admit(t, s, gate.StoreAdmit{CacheKey: ck, Slots: 1})
			if !res.Hit || res.Slot != 0 || string(res.Entry) != "one" || res.Filled != 1 {
				t.Fatalf("got %+v", res)
			}
			if slot := fill(t, s, ck, 1, "two"); slot != -1 {
				t.Fatalf("fill of a full key took slot %d", slot)
			}
		}},
		{"slots fill in order, hit only when all full, returns the pick", func(t *testing.T, s gate.Store) {
			for i, v := range []string{"a", "b"} {
				if slot := fill(t, s, ck, 3, v); slot != i {
					t.Fatalf("fill %d went to slot %d", i, slot)
				}
				res := admit(t, s, gate.StoreAdmit{CacheKey: ck, Slots: 3, Pick: 1})
				if res.Hit || res.Filled != i+1 {
					t.Fatalf("after %d fills: %+v", i+1, res)
				}
			}
			fill(t, s, ck, 3, "c")
			for pick, want := range []string{"a", "b", "c"} {
				res := admit(t, s, gate.StoreAdmit{CacheKey: ck, Slots: 3, Pick: pick})
				if !res.Hit || res.Slot != pick || string(res.Entry) != want || res.Filled != 3 {
					t.Fatalf("pick %d: %+v", pick, res)
				}
			}
			// The same key read with more slots is not full.
			if res := admit(t, s, gate.StoreAdmit{CacheKey: ck, Slots: 4}); res.Hit || res.Filled != 3 {
				t.Fatalf("4 slots: %+v", res)
			}
		}},
		{"put overwrites a slot", func(t *testing.T, s gate.Store) {
			fill(t, s, ck, 1, "old")
			if err := s.Put(ctx, ck, 0, []byte("new"), day); err != nil {
				t.Fatal(err)
			}
			if res := admit(t, s, gate.StoreAdmit{CacheKey: ck, Slots: 1}); string(res.Entry) != "new" {
				t.Fatalf("got %+v", res)
			}
		}},
		{"entries expire after their ttl", func(t *testing.T, s gate.Store) {
			if _, err := s.Fill(ctx, ck, 2, []byte("short"), 300*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Fill(ctx, ck, 2, []byte("long"), day); err != nil {
				t.Fatal(err)
			}
			if res := admit(t, s, gate.StoreAdmit{CacheKey: ck, Slots: 2}); !res.Hit {
				t.Fatalf("not a hit: %+v", res)
			}
			testenv.WaitFor(t, 3*time.Second, "slot 0 expiry", func() bool {
				res := admit(t, s, gate.StoreAdmit{CacheKey: ck, Slots: 2})
				return !res.Hit && res.Filled == 1
			})
			if slot := fill(t, s, ck, 2, "again"); slot != 0 {
				t.Fatalf("refill went to slot %d", slot)
			}
		}},
		{"binary entries survive", func(t *testing.T, s gate.Store) {
			v := string([]byte{0, 1, 2, 255, '\r', '\n', 0})
			fill(t, s, ck, 1, v)
			if res := admit(t, s, gate.StoreAdmit{CacheKey: ck, Slots: 1}); string(res.Entry) != v {
				t.Fatalf("got %q", res.Entry)
			}
		}},
		{"new bucket starts full and takes one per call", func(t *testing.T, s gate.Store) {
			b := bucket("a", 3, day)
			for i, want := range []float64{2, 1, 0} {
				o := admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(b, 1)}}).Buckets[0]
				if !o.Allowed || !near(o.Remaining, want) {
					t.Fatalf("call %d: %+v", i, o)
				}
			}
			o := admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(b, 1)}}).Buckets[0]
			// One token takes day/3 to come back.
			if o.Allowed || !near(o.Remaining, 0) || o.Wait < 7*time.Hour || o.Wait > 8*time.Hour+time.Minute {
				t.Fatalf("4th call: %+v", o)
			}
		}},
		{"refill is continuous", func(t *testing.T, s gate.Store) {
			b := bucket("r", 10, time.Second) // 10 tokens a second
			t0 := time.Now()
			if o := admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(b, 10)}}).Buckets[0]; !o.Allowed || !near(o.Remaining, 0) {
				t.Fatalf("drain: %+v", o)
			}
			t1 := time.Now()
			time.Sleep(250 * time.Millisecond)
			t2 := time.Now()
			o := admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(b, 0)}}).Buckets[0]
			t3 := time.Now()
			// The refill is what the store's clock saw pass between the two
			// calls: at least t2-t1, at most t3-t0 (a loaded machine may
			// stretch either), 10 tokens a second up to the capacity, give
			// or take a clock tick.
			lo, hi := min(10, 10*t2.Sub(t1).Seconds())-0.05, min(10, 10*t3.Sub(t0).Seconds())+0.05
			if o.Remaining < lo || o.Remaining > hi {
				t.Fatalf("after %v to %v: %+v (want %.2f to %.2f tokens)", t2.Sub(t1), t3.Sub(t0), o, lo, hi)
			}
			time.Sleep(1100 * time.Millisecond)
			o = admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(b, 0)}}).Buckets[0]
			if !near(o.Remaining, 10) {
				t.Fatalf("after refill: %+v (want capacity 10)", o)
			}
		}},
		{"all buckets admit or none is taken", func(t *testing.T, s gate.Store) {
			one, five := bucket("one", 1, day), bucket("five", 5, day)
			req := gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(one, 1), take(five, 1)}}
			res := admit(t, s, req)
			if !res.Buckets[0].Allowed || !res.Buckets[1].Allowed || !near(res.Buckets[1].Remaining, 4) {
				t.Fatalf("first: %+v", res.Buckets)
			}
			res = admit(t, s, req)
			if res.Buckets[0].Allowed || !res.Buckets[1].Allowed || !near(res.Buckets[1].Remaining, 4) {
				t.Fatalf("second: %+v (five must not be taken)", res.Buckets)
			}
			o := admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(five, 1)}}).Buckets[0]
			if !near(o.Remaining, 3) {
				t.Fatalf("five alone: %+v", o)
			}
		}},
		{"a hit takes no tokens but reports the bucket", func(t *testing.T, s gate.Store) {
			b := bucket("h", 5, day)
			admit(t, s, gate.StoreAdmit{CacheKey: ck, Slots: 1, Buckets: []ratelimit.BucketTake{take(b, 1)}})
			fill(t, s, ck, 1, "x")
			for range 3 {
				res := admit(t, s, gate.StoreAdmit{CacheKey: ck, Slots: 1, Buckets: []ratelimit.BucketTake{take(b, 1)}})
				if !res.Hit || !near(res.Buckets[0].Remaining, 4) {
					t.Fatalf("hit: %+v", res)
				}
			}
		}},
		{"cents: check balance, charge after, may go negative", func(t *testing.T, s gate.Store) {
			b := bucket("c", 100, day)
			if o := admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(b, 0)}}).Buckets[0]; !o.Allowed || !near(o.Remaining, 100) || o.Wait != 0 {
				t.Fatalf("check: %+v", o)
			}
			if err := s.Charge(ctx, b, 99.5); err != nil {
				t.Fatal(err)
			}
			if o := admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(b, 0)}}).Buckets[0]; !o.Allowed || math.Abs(o.Remaining-0.5) > 0.01 {
				t.Fatalf("after 99.5: %+v", o)
			}
			if err := s.Charge(ctx, b, 40); err != nil {
				t.Fatal(err)
			}
			o := admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(b, 0)}}).Buckets[0]
			// -39.5 cents at 100 cents a day: about 9.5 hours to positive.
			if o.Allowed || math.Abs(o.Remaining+39.5) > 0.01 || o.Wait < 9*time.Hour || o.Wait > 10*time.Hour {
				t.Fatalf("after overspend: %+v", o)
			}
		}},
		{"charge on a new bucket starts from full", func(t *testing.T, s gate.Store) {
			b := bucket("n", 10, day)
			if err := s.Charge(ctx, b, 3); err != nil {
				t.Fatal(err)
			}
			if o := admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(b, 0)}}).Buckets[0]; !near(o.Remaining, 7) {
				t.Fatalf("got %+v", o)
			}
		}},
		{"a smaller capacity clamps the balance", func(t *testing.T, s gate.Store) {
			admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(bucket("k", 10, day), 1)}})
			o := admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(bucket("k", 5, day), 1)}}).Buckets[0]
			if !o.Allowed || !near(o.Remaining, 4) {
				t.Fatalf("got %+v", o)
			}
		}},
		{"buckets and cache keys are independent", func(t *testing.T, s gate.Store) {
			admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(bucket("x", 1, day), 1)}})
			if o := admit(t, s, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(bucket("y", 1, day), 1)}}).Buckets[0]; !o.Allowed {
				t.Fatalf("y: %+v", o)
			}
			fill(t, s, "tg:{t}:c:one", 1, "1")
			if res := admit(t, s, gate.StoreAdmit{CacheKey: "tg:{t}:c:two", Slots: 1}); res.Hit {
				t.Fatalf("two: %+v", res)
			}
		}},
		{"invalid requests are errors", func(t *testing.T, s gate.Store) {
			bad := []gate.StoreAdmit{
				{CacheKey: ck, Slots: 0},
				{CacheKey: ck, Slots: 21},
				{CacheKey: ck, Slots: 2, Pick: 2},
				{Buckets: []ratelimit.BucketTake{take(bucket("z", 0, day), 1)}},
				{Buckets: []ratelimit.BucketTake{take(bucket("z", 1, 0), 1)}},
			}
			for _, req := range bad {
				if _, err := s.Admit(ctx, req); err == nil {
					t.Errorf("Admit(%+v) accepted", req)
				}
			}
			if _, err := s.Fill(ctx, ck, 1, []byte("x"), 0); err == nil {
				t.Error("Fill with ttl 0 accepted")
			}
			if err := s.Charge(ctx, bucket("z", 1, day), math.NaN()); err == nil {
				t.Error("Charge NaN accepted")
			}
		}},
		{"a cancelled context fails", func(t *testing.T, s gate.Store) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := s.Admit(cctx, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{take(bucket("q", 1, day), 1)}}); err == nil {
				t.Error("Admit with a cancelled context succeeded")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, open(t))
		})
	}
}

func admit(t testing.TB, s gate.Store, req gate.StoreAdmit) gate.StoreAdmitResult {
	t.Helper()
	res, err := s.Admit(context.Background(), req)
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if len(res.Buckets) != len(req.Buckets) {
		t.Fatalf("Admit answered %d buckets for %d", len(res.Buckets), len(req.Buckets))
	}
	return res
}

func fill(t testing.TB, s gate.Store, key string, slots int, v string) int {
	t.Helper()
	slot, err := s.Fill(context.Background(), key, slots, []byte(v), 24*time.Hour)
	if err != nil {
		t.Fatalf("Fill: %v", err)
	}
	return slot
}

// near compares token balances: a few ms of refill pass between calls.
func near(got, want float64) bool { return math.Abs(got-want) < 0.01 }
