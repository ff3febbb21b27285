package gate

import (
	"context"
	"time"

	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// Store is what the Gate needs from Redis (or the in-process stand-in).
// Every method is one round trip. Keys come from the Gate already built and
// hash-tagged by tenant (see ratelimit.TenantKeyPrefix): all keys of one
// call share a Cluster slot. Implementations: storage/redisstore,
// storage/memstore; both pass the conformance suite in gate/storetest.
type Store interface {
	// Admit does, atomically and in one round trip: read the cache slots of
	// CacheKey (when set) and — only when that is not a hit — check every
	// bucket and, if all admit, take each one's Cost. On a hit the buckets
	// are only read (Remaining, Wait), never taken.
	Admit(ctx context.Context, req StoreAdmit) (StoreAdmitResult, error)
	// Fill stores entry in the first empty slot of cacheKey with ttl and
	// returns that slot, or -1 when every slot is full (nothing stored).
	Fill(ctx context.Context, cacheKey string, slots int, entry []byte, ttl time.Duration) (slot int, err error)
	// Put overwrites one slot (Helicone-Cache-Read: false refreshes a full
	// key).
	Put(ctx context.Context, cacheKey string, slot int, entry []byte, ttl time.Duration) error
	// Charge refills the bucket, then takes amount from it, going negative
	// if need be (the real cost of a call, known only after it).
	Charge(ctx context.Context, bucket ratelimit.BucketRef, amount float64) error
}

// StoreAdmit is one request's Admit.
type StoreAdmit struct {
	CacheKey string // "" = do not read the cache
	Slots    int    // slots of CacheKey, 1–20
	// Pick is the slot returned when every slot is full (a hit), 0 ≤ Pick <
	// Slots, chosen at random by the Gate: any slot of a full key is a
	// valid answer, and only that one crosses the network.
	Pick    int
	Buckets []ratelimit.BucketTake
}

// StoreAdmitResult is Admit's answer.
type StoreAdmitResult struct {
	Hit     bool
	Slot    int    // the slot returned (Pick) when Hit, else -1
	Entry   []byte // its bytes when Hit
	Filled  int    // slots of CacheKey holding an entry
	Buckets []ratelimit.BucketOutcome
}
