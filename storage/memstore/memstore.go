// Package memstore is the in-process cache and rate-limit store: the
// embedded default for `tollgate dev` / `make run` without Redis. It has
// the same semantics as storage/redisstore (both pass the conformance suite
// in policies), but lives and dies with one process, so limits are per
// replica and the cache is lost on restart.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// Options configure a Store. Zero values get the defaults noted.
type Options struct {
	Now func() time.Time // default time.Now; the buckets' clock
	// SweepEvery: expired entries and idle buckets are dropped at most this
	// often, on the next call. Default one minute.
	SweepEvery time.Duration
}

// Store implements gate.Store with a mutex and two maps.
type Store struct {
	now        func() time.Time
	sweepEvery time.Duration

	mu        sync.Mutex
	entries   map[string]entry
	buckets   map[string]bucket
	nextSweep time.Time
}

type entry struct {
	val     []byte
	expires time.Time
}

type bucket struct {
	tokens  float64
	at      time.Time // when tokens was computed
	expires time.Time // full again by then: forgetting it changes nothing
}

var _ gate.Store = (*Store)(nil)

// New returns an empty Store.
func New(o Options) *Store {
	s := &Store{now: o.Now, sweepEvery: o.SweepEvery,
		entries: make(map[string]entry), buckets: make(map[string]bucket)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.sweepEvery <= 0 {
		s.sweepEvery = time.Minute
	}
	return s
}

// Admit reads the cache slots and, unless every slot is full (a hit),
// checks all buckets and takes their cost when all admit.
func (s *Store) Admit(ctx context.Context, req gate.StoreAdmit) (gate.StoreAdmitResult, error) {
	res := gate.StoreAdmitResult{Slot: -1}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if req.CacheKey != "" {
		if err := checkSlots(req.Slots); err != nil {
			return res, err
		}
		if req.Pick < 0 || req.Pick >= req.Slots {
			return res, fmt.Errorf("memstore: pick %d outside 0..%d", req.Pick, req.Slots-1)
		}
	}
	for _, b := range req.Buckets {
		if err := checkBucket(b.BucketRef); err != nil {
			return res, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.maybeSweep(now)
	if req.CacheKey != "" {
		for i := range req.Slots {
			if _, ok := s.entry(gate.CacheSlotKey(req.CacheKey, i), now); ok {
				res.Filled++
			}
		}
		if res.Filled == req.Slots {
			e, _ := s.entry(gate.CacheSlotKey(req.CacheKey, req.Pick), now)
			res.Hit, res.Slot, res.Entry = true, req.Pick, append([]byte(nil), e.val...)
		}
	}
	res.Buckets = make([]ratelimit.BucketOutcome, len(req.Buckets))
	tokens := make([]float64, len(req.Buckets))
	all := true
	for i, b := range req.Buckets {
		tokens[i] = s.refill(b.BucketRef, now)
		res.Buckets[i].Allowed = tokens[i] > 0 && tokens[i] >= b.Cost
		all = all && res.Buckets[i].Allowed
	}
	for i, b := range req.Buckets {
		if all && !res.Hit {
			tokens[i] -= b.Cost
			s.store(b.BucketRef, tokens[i], now)
		}
		res.Buckets[i].Remaining = tokens[i]
		res.Buckets[i].Wait = wait(b, tokens[i])
	}
	return res, nil
}

// Fill stores entry in the first empty slot.
func (s *Store) Fill(ctx context.Context, cacheKey string, slots int, val []byte, ttl time.Duration) (int, error) {
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	if err := checkSlots(slots); err != nil {
		return -1, err
	}
	if ttl <= 0 {
		return -1, errors.New("memstore: ttl must be positive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.maybeSweep(now)
	for i := range slots {
		k := gate.CacheSlotKey(cacheKey, i)
		if _, ok := s.entry(k, now); !ok {
			s.entries[k] = entry{val: append([]byte(nil), val...), expires: now.Add(ttl)}
			return i, nil
		}
	}
	return -1, nil
}

// Put overwrites one slot.
func (s *Store) Put(ctx context.Context, cacheKey string, slot int, val []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if slot < 0 || slot >= gate.MaxCacheSlots {
		return fmt.Errorf("memstore: slot %d outside 0..%d", slot, gate.MaxCacheSlots-1)
	}
	if ttl <= 0 {
		return errors.New("memstore: ttl must be positive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.entries[gate.CacheSlotKey(cacheKey, slot)] = entry{val: append([]byte(nil), val...), expires: now.Add(ttl)}
	return nil
}

// Charge refills the bucket and takes amount, which may leave it negative.
func (s *Store) Charge(ctx context.Context, b ratelimit.BucketRef, amount float64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkBucket(b); err != nil {
		return err
	}
	if math.IsNaN(amount) || math.IsInf(amount, 0) {
		return errors.New("memstore: charge must be a finite number")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.store(b, s.refill(b, now)-amount, now)
	return nil
}

// Len reports the live cache entries and buckets (for tests and metrics).
func (s *Store) Len() (entries, buckets int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.now())
	return len(s.entries), len(s.buckets)
}

func (s *Store) entry(k string, now time.Time) (entry, bool) {
	e, ok := s.entries[k]
	if ok && !now.Before(e.expires) {
		delete(s.entries, k)
		return entry{}, false
	}
	return e, ok
}

// refill returns the bucket's balance now: a new bucket is full; otherwise
// Capacity/Window per unit of time since it was last written, up to
// Capacity. A clock that stepped back adds nothing.
func (s *Store) refill(b ratelimit.BucketRef, now time.Time) float64 {
	st, ok := s.buckets[b.Key]
	if !ok || !now.Before(st.expires) {
		return b.Capacity
	}
	t := st.tokens
	if dt := now.Sub(st.at); dt > 0 {
		t += dt.Seconds() * b.Capacity / b.Window.Seconds()
	}
	return math.Min(t, b.Capacity)
}

func (s *Store) store(b ratelimit.BucketRef, tokens float64, now time.Time) {
	at := now
	if st, ok := s.buckets[b.Key]; ok && st.at.After(now) {
		at = st.at
	}
	full := time.Duration((b.Capacity - tokens) / b.Capacity * float64(b.Window))
	s.buckets[b.Key] = bucket{tokens: tokens, at: at, expires: now.Add(full + time.Second)}
}

// wait is how long until a call of the same cost would be admitted.
func wait(b ratelimit.BucketTake, tokens float64) time.Duration {
	if tokens > 0 && tokens >= b.Cost {
		return 0
	}
	deficit := b.Cost - tokens
	if b.Cost <= 0 {
		deficit = -tokens
	}
	us := math.Ceil(deficit * b.Window.Seconds() * 1e6 / b.Capacity)
	return time.Duration(max(us, 1)) * time.Microsecond
}

func (s *Store) maybeSweep(now time.Time) {
	if now.Before(s.nextSweep) {
		return
	}
	s.sweep(now)
}

func (s *Store) sweep(now time.Time) {
	s.nextSweep = now.Add(s.sweepEvery)
	for k, e := range s.entries {
		if !now.Before(e.expires) {
			delete(s.entries, k)
		}
	}
	for k, b := range s.buckets {
		if !now.Before(b.expires) {
			delete(s.buckets, k)
		}
	}
}

func checkSlots(n int) error {
	if n < gate.MinCacheSlots || n > gate.MaxCacheSlots {
		return fmt.Errorf("memstore: slots %d outside %d..%d", n, gate.MinCacheSlots, gate.MaxCacheSlots)
	}
	return nil
}

func checkBucket(b ratelimit.BucketRef) error {
	if b.Key == "" || !(b.Capacity > 0) || math.IsInf(b.Capacity, 0) || b.Window <= 0 {
		return fmt.Errorf("memstore: bad bucket %q (capacity %v, window %v)", b.Key, b.Capacity, b.Window)
	}
	return nil
}
