package gate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
	"github.com/tollgate-dev/tollgate/record"
)

// The erasure index: cache keys are hashes, so nothing in a key says whose
// prompt an entry answers. Each entry stored is also added to one set per
// subject of its request — its user, session, request id and each
// property — so that an erasure (package storage/erasure) finds the
// entries holding that subject's prompts. The sets are written in the same
// round trip as the entry (the store's FillIndexed, the semantic store's
// addition), after the response, never on the request's path; they live
// as long as their longest-lived entry.

// ErasureIndexKey is the set of tenant's cache entries of a subject: kind
// is user, session, request or property (value from PropertyIndexValue).
// The subject is hashed: key names in Redis show no user ids. The tenant's
// hash tag keeps the set in the slot of the tenant's entries (Cluster).
func ErasureIndexKey(tenant, kind, value string) string {
	if tenant == "" {
		tenant = policies.DefaultTenant
	}
	sum := sha256.Sum256([]byte(kind + "\x00" + value))
	return ratelimit.TenantKeyPrefix(tenant) + "e:" + hex.EncodeToString(sum[:16])
}

// PropertyIndexValue is the value ErasureIndexKey takes for a property
// (its name lowercase, as headers give it).
func PropertyIndexValue(name, value string) string { return name + "\x00" + value }

// erasureSubjects is what a request's cache entry is indexed under; kept
// by Check (references only: no work on the request's path) and turned
// into keys by ErasureIndex after the response.
type erasureSubjects struct {
	tenant, user, session string
	props                 []record.Property
}

// ErasureIndex is the sets a cache entry of this decision's request goes
// into (none when the decision stores nothing).
func (d *Decision) ErasureIndex(requestID string) []string {
	if d == nil {
		return nil
	}
	s := &d.subjects
	var out []string
	add := func(kind, v string) {
		if v != "" {
			out = append(out, ErasureIndexKey(s.tenant, kind, v))
		}
	}
	add("user", s.user)
	add("session", s.session)
	if id, err := uuid.Parse(requestID); err == nil {
		requestID = id.String() // as the log stores it, and the API takes it
	}
	add("request", requestID)
	for _, p := range s.props {
		add("property", PropertyIndexValue(p.Key, p.Value))
	}
	return out
}

// IndexedStore is a Store that also adds the entry it stores to erasure
// index sets, in the same round trip (storage/redisstore). A Store
// without it (the in-process one) keeps no index: its entries live in one
// process and expire with their TTL.
type IndexedStore interface {
	// FillIndexed is Fill that adds the slot it fills to each set of
	// index, each set living at least as long as the entry.
	FillIndexed(ctx context.Context, cacheKey string, slots int, entry []byte, ttl time.Duration, index []string) (slot int, err error)
	// PutIndexed is Put with the same index.
	PutIndexed(ctx context.Context, cacheKey string, slot int, entry []byte, ttl time.Duration, index []string) error
}

func (g *Gate) storeFill(ctx context.Context, d *Decision, entry []byte, index []string) (int, error) {
	if s, ok := g.store.(IndexedStore); ok && len(index) > 0 {
		return s.FillIndexed(ctx, d.cacheKey, d.slots, entry, d.ttl, index)
	}
	return g.store.Fill(ctx, d.cacheKey, d.slots, entry, d.ttl)
}

func (g *Gate) storePut(ctx context.Context, d *Decision, slot int, entry []byte, index []string) error {
	if s, ok := g.store.(IndexedStore); ok && len(index) > 0 {
		return s.PutIndexed(ctx, d.cacheKey, slot, entry, d.ttl, index)
	}
	return g.store.Put(ctx, d.cacheKey, slot, entry, d.ttl)
}
