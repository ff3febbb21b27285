// Package redisstore is the Redis implementation of gate.Store: cache
// entries and token buckets shared by every Tollgate replica. Each method is
// one round trip — a Lua script, or a plain GET/SET where no script is
// needed — and keys arrive hash-tagged by tenant, so the same code runs on
// a single node, behind Sentinel, or on a Cluster (see ParseURL).
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// Options configure a Store.
type Options struct {
	// Prefix is prepended to every key, to share a Redis between
	// deployments (or tests). It must not contain '{' or '}', which would
	// move the Cluster hash tag.
	Prefix string
	// MaxInFlight is how many request-path round trips (Admit) one Store
	// keeps in flight before further calls wait for one to end and go out
	// together in one pipeline (see coalescer). 0: the URL's
	// max_in_flight, else 4; -1: never coalesce.
	MaxInFlight int
}

// Store implements gate.Store on a go-redis UniversalClient.
type Store struct {
	c      redis.UniversalClient
	prefix string
	own    bool          // Close closes c
	trips  atomic.Uint64 // commands and pipelines written (tripCounter)
	shared atomic.Uint64 // calls beyond the first in the coalescer's pipelines
	q      *coalescer    // nil: every call sends its own
}

var _ gate.Store = (*Store)(nil)

// Open connects to the Redis named by rawURL (see ParseURL for the forms).
// It does not wait for the server: the first call dials. The URL's
// max_in_flight applies unless o sets MaxInFlight.
func Open(rawURL string, o Options) (*Store, error) {
	cfg, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = cfg.MaxInFlight
	}
	c := cfg.client()
	s, err := New(c, o)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// New wraps an existing client. Per-call timeouts come from the caller's
// context, so the client should have ContextTimeoutEnabled (NewClient sets
// it).
func New(c redis.UniversalClient, o Options) (*Store, error) {
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("redisstore: prefix %q must not contain '{' or '}'", o.Prefix)
	}
	s := &Store{c: c, prefix: o.Prefix}
	switch {
	case o.MaxInFlight == 0:
		s.q = newCoalescer(c, 4, 64, &s.shared)
	case o.MaxInFlight > 0:
		s.q = newCoalescer(c, o.MaxInFlight, 64, &s.shared)
	}
	c.AddHook(tripCounter{&s.trips})
	return s, nil
}

// Client is the underlying client.
func (s *Store) Client() redis.UniversalClient { return s.c }

// Ping checks that Redis answers (for readiness).
func (s *Store) Ping(ctx context.Context) error { return s.c.Ping(ctx).Err() }

// Close closes the client if Open made it.
func (s *Store) Close() error {
	if s.own {
		return s.c.Close()
	}
	return nil
}

// RoundTrips counts the commands (a script call is one) sent to Redis since
// the Store was made: tests and `make bench` check that a request costs
// one. A pipeline counts once, except the coalescer's, which count once per
// call in them (each call's own round trip, shared on the wire). A Cluster
// redirect (MOVED/ASK) is an extra trip not counted here.
func (s *Store) RoundTrips() uint64 { return s.trips.Load() + s.shared.Load() }

// Writes counts the commands and pipelines written to Redis since the
// Store was made: RoundTrips less what the coalescer saved.
func (s *Store) Writes() uint64 { return s.trips.Load() }

// Admit implements gate.Store.
func (s *Store) Admit(ctx context.Context, req gate.StoreAdmit) (gate.StoreAdmitResult, error) {
	res := gate.StoreAdmitResult{Slot: -1}
	n := 0
	if req.CacheKey != "" {
		if err := checkSlots(req.Slots); err != nil {
			return res, err
		}
		if req.Pick < 0 || req.Pick >= req.Slots {
			return res, fmt.Errorf("redisstore: pick %d outside 0..%d", req.Pick, req.Slots-1)
		}
		n = req.Slots
	}
	if n == 1 && len(req.Buckets) == 0 {
		// The common plain cache read: a GET is cheaper for Redis than a
		// script.
		cmd := redis.NewStringCmd(ctx, "get", s.slotKey(req.CacheKey, 0))
		// Only a nil error says cmd is complete: a call that gave up may
		// leave it to a pipeline still on its way.
		err, _ := s.send(ctx, cmd)
		var b []byte
		if err == nil {
			b, err = cmd.Bytes()
		}
		switch {
		case errors.Is(err, redis.Nil):
			return res, nil
		case err != nil:
			return res, err
		}
		res.Hit, res.Slot, res.Entry, res.Filled = true, 0, b, 1
		return res, nil
	}
	for _, b := range req.Buckets {
		if err := checkBucket(b.BucketRef); err != nil {
			return res, err
		}
	}
	// EVALSHA sha numkeys keys… args…, built as the one argument slice
	// the command keeps (go-redis's Script.Run would copy it), taken from a
	// pool and given back once the command is settled.
	nk := n + len(req.Buckets)
	pooled := argsPool.Get().(*[]any)
	cmdArgs := slices.Grow((*pooled)[:0], 3+nk+2+3*len(req.Buckets))[:3+nk+2+3*len(req.Buckets)]
	cmdArgs[0], cmdArgs[1], cmdArgs[2] = "evalsha", admitSHA, nk
	for i := range n {
		cmdArgs[3+i] = s.slotKey(req.CacheKey, i)
	}
	a := 3 + nk
	cmdArgs[a], cmdArgs[a+1] = n, req.Pick
	for i, b := range req.Buckets {
		cmdArgs[3+n+i] = s.prefix + b.Key
		j := a + 2 + 3*i
		cmdArgs[j], cmdArgs[j+1], cmdArgs[j+2] = num(b.Capacity), b.Window.Microseconds(), num(b.Cost)
	}
	cmd := redis.NewCmd(ctx, cmdArgs...)
	err, settled := s.send(ctx, cmd)
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		// Redis restarted or its scripts were flushed: EVAL loads the
		// script again (one more round trip, once).
		eval := append([]any{"eval", admitSrc}, cmdArgs[2:]...)
		cmd = redis.NewCmd(ctx, eval...)
		err = s.c.Process(ctx, cmd)
	}
	if settled {
		clear(cmdArgs) // no keys kept alive by the pool
		*pooled = cmdArgs[:0]
		argsPool.Put(pooled)
	}
	if err != nil {
		return res, err
	}
	reply, err := cmd.Slice()
	if err != nil {
		return res, err
	}
	if len(reply) != 4+3*len(req.Buckets) {
		return res, fmt.Errorf("redisstore: admit script answered %d values", len(reply))
	}
	res.Hit = asInt(reply[0]) == 1
	res.Filled = int(asInt(reply[3]))
	if res.Hit {
		res.Slot = int(asInt(reply[1]))
		str, _ := reply[2].(string)
		res.Entry = []byte(str)
	}
	res.Buckets = make([]ratelimit.BucketOutcome, len(req.Buckets))
	for i := range req.Buckets {
		r := reply[4+3*i:]
		res.Buckets[i] = ratelimit.BucketOutcome{
			Allowed:   asInt(r[0]) == 1,
			Remaining: asFloat(r[1]),
			Wait:      time.Duration(asFloat(r[2])) * time.Microsecond,
		}
	}
	return res, nil
}

// argsPool holds Admit's argument slices; admitSHA is the script's SHA
// boxed once (boxing a string per call allocates).
var (
	argsPool     = sync.Pool{New: func() any { return new([]any) }}
	admitSHA any = admitScript.Hash()
)

// slotKey is s.prefix + gate.CacheSlotKey(cacheKey, slot) in one
// allocation (an Admit's keys are most of its garbage).
func (s *Store) slotKey(cacheKey string, slot int) string {
	var buf [20]byte
	digits := strconv.AppendInt(buf[:0], int64(slot), 10)
	return s.prefix + cacheKey + ":" + string(digits)
}

// send sends a request-path command, through the coalescer when there
// is one. settled: cmd is no longer in use (see coalescer.do).
func (s *Store) send(ctx context.Context, cmd redis.Cmder) (err error, settled bool) {
	if s.q != nil {
		return s.q.do(ctx, cmd)
	}
	return s.c.Process(ctx, cmd), true
}

// Fill implements gate.Store.
func (s *Store) Fill(ctx context.Context, cacheKey string, slots int, entry []byte, ttl time.Duration) (int, error) {
	if err := checkSlots(slots); err != nil {
		return -1, err
	}
	if ttl < time.Millisecond {
		return -1, errors.New("redisstore: ttl must be at least 1 ms")
	}
	keys := make([]string, slots)
	for i := range keys {
		keys[i] = s.prefix + gate.CacheSlotKey(cacheKey, i)
	}
	slot, err := fillScript.Run(ctx, s.c, keys, entry, ttl.Milliseconds()).Int()
	if err != nil {
		return -1, err
	}
	return slot, nil
}

// Put implements gate.Store.
func (s *Store) Put(ctx context.Context, cacheKey string, slot int, entry []byte, ttl time.Duration) error {
	if slot < 0 || slot >= gate.MaxCacheSlots {
		return fmt.Errorf("redisstore: slot %d outside 0..%d", slot, gate.MaxCacheSlots-1)
	}
	if ttl < time.Millisecond {
		return errors.New("redisstore: ttl must be at least 1 ms")
	}
	return s.c.Set(ctx, s.prefix+gate.CacheSlotKey(cacheKey, slot), entry, ttl).Err()
}

// Charge implements gate.Store.
func (s *Store) Charge(ctx context.Context, b ratelimit.BucketRef, amount float64) error {
	if err := checkBucket(b); err != nil {
		return err
	}
	if math.IsNaN(amount) || math.IsInf(amount, 0) {
		return errors.New("redisstore: charge must be a finite number")
	}
	return chargeScript.Run(ctx, s.c, []string{s.prefix + b.Key},
		num(b.Capacity), b.Window.Microseconds(), num(amount)).Err()
}

func checkSlots(n int) error {
	if n < gate.MinCacheSlots || n > gate.MaxCacheSlots {
		return fmt.Errorf("redisstore: slots %d outside %d..%d", n, gate.MinCacheSlots, gate.MaxCacheSlots)
	}
	return nil
}

func checkBucket(b ratelimit.BucketRef) error {
	if b.Key == "" || !(b.Capacity > 0) || math.IsInf(b.Capacity, 0) || b.Window < time.Microsecond {
		return fmt.Errorf("redisstore: bad bucket %q (capacity %v, window %v)", b.Key, b.Capacity, b.Window)
	}
	return nil
}

// num formats a float exactly as the scripts read it.
func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

func asFloat(v any) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case string:
		f, _ := strconv.ParseFloat(x, 64)
		return f
	}
	return 0
}

// tripCounter counts commands and pipelines sent.
type tripCounter struct{ n *atomic.Uint64 }

func (h tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}
