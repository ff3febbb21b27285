package memstore

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// The semantics are covered by the conformance suites (conformance_test.go,
// run against Redis too); these tests cover what only an injected
// clock can show quickly: refill arithmetic, expiry and the sweep.

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRefillWithClock(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	s := New(Options{Now: clk.now})
	ctx := context.Background()
	b := ratelimit.BucketRef{Key: "b", Capacity: 60, Window: time.Minute} // a token a second
	take := func(cost float64) ratelimit.BucketOutcome {
		res, err := s.Admit(ctx, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{{BucketRef: b, Cost: cost}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Buckets[0]
	}
	// Wait describes another call of the same cost: 60 tokens, a minute.
	if o := take(60); !o.Allowed || o.Remaining != 0 || o.Wait != time.Minute {
		t.Fatalf("drain: %+v", o)
	}
	clk.add(10 * time.Second)
	if o := take(0); math.Abs(o.Remaining-10) > 1e-9 {
		t.Fatalf("after 10 s: %+v", o)
	}
	if o := take(11); o.Allowed || o.Wait != time.Second {
		t.Fatalf("11 of 10: %+v", o)
	}
	clk.add(-5 * time.Second) // a clock step back adds nothing and takes nothing
	if o := take(0); math.Abs(o.Remaining-10) > 1e-9 {
		t.Fatalf("after a step back: %+v", o)
	}
	clk.add(time.Hour)
	if o := take(0); o.Remaining != 60 {
		t.Fatalf("after an hour: %+v", o)
	}
}

func TestExpiryAndSweep(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	s := New(Options{Now: clk.now, SweepEvery: time.Minute})
	ctx := context.Background()
	if _, err := s.Fill(ctx, "k", 2, []byte("a"), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fill(ctx, "k", 2, []byte("b"), time.Hour); err != nil {
		t.Fatal(err)
	}
	b := ratelimit.BucketRef{Key: "b", Capacity: 10, Window: 10 * time.Second}
	if _, err := s.Admit(ctx, gate.StoreAdmit{Buckets: []ratelimit.BucketTake{{BucketRef: b, Cost: 5}}}); err != nil {
		t.Fatal(err)
	}
	if e, n := s.Len(); e != 2 || n != 1 {
		t.Fatalf("Len = %d, %d", e, n)
	}
	clk.add(31 * time.Second) // slot 0 expired; the bucket is full again (5 s) and dropped
	if e, n := s.Len(); e != 1 || n != 0 {
		t.Fatalf("after 31 s: Len = %d, %d", e, n)
	}
	res, err := s.Admit(ctx, gate.StoreAdmit{CacheKey: "k", Slots: 2})
	if err != nil || res.Hit || res.Filled != 1 {
		t.Fatalf("admit: %+v, %v", res, err)
	}
	if slot, _ := s.Fill(ctx, "k", 2, []byte("c"), time.Hour); slot != 0 {
		t.Fatalf("refill went to slot %d", slot)
	}
}

func TestEntriesAreCopied(t *testing.T) {
	s := New(Options{})
	ctx := context.Background()
	v := []byte("abc")
	if _, err := s.Fill(ctx, "k", 1, v, time.Hour); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X'
	res, _ := s.Admit(ctx, gate.StoreAdmit{CacheKey: "k", Slots: 1})
	res.Entry[1] = 'Y'
	again, _ := s.Admit(ctx, gate.StoreAdmit{CacheKey: "k", Slots: 1})
	if string(again.Entry) != "abc" {
		t.Fatalf("stored entry changed to %q", again.Entry)
	}
}
