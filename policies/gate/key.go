package gate

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"sync"

	"github.com/tollgate-dev/tollgate/policies/ratelimit"
	"github.com/tollgate-dev/tollgate/provider"
)

// CacheSlotKey is the store key of one slot of a cache key; both stores use
// it so that their key spaces match.
func CacheSlotKey(cacheKey string, slot int) string {
	return cacheKey + ":" + slotsString(slot)
}

// cacheKey is the store key of a request's cache entry: a hash of every
// input that may change the answer (DESIGN §4) — the tenant, the upstream
// origin, method, path and query, the seed, the cache-shaping headers
// (normalized), a hash of the provider credential, and the body without the
// ignored top-level fields. The on/off switches (-Enabled, -Save, -Read) and
// Cache-Control are not part of it: they say what to do with the entry, not
// which entry it is.
func cacheKey(tenant string, req *RequestInfo, o *cacheOptions) string {
	body := RemoveIgnoredKeys(req.Body, o.ignoreKeys)
	// One preimage buffer and one hash: cheaper than streaming the fields
	// into a hash.Hash (no interface calls). The buffer, the size of the
	// body, is pooled: it was most of what a cache lookup allocated.
	bp := preimages.Get().(*[]byte)
	b := (*bp)[:0]
	cred := make([]byte, 0, 128)
	// The provider credential is hashed into the key so that two provider
	// keys (two accounts, two projects) never share an answer even inside
	// one tenant.
	for _, name := range provider.CredentialHeaders {
		cred = appendField(cred, name, req.header(name))
	}
	credSum := sha256.Sum256(cred)
	b = appendField(b, "v", "tollgate-cache-1")
	b = appendField(b, "tenant", tenant)
	b = appendField(b, "origin", strings.ToLower(strings.TrimRight(req.TargetOrigin, "/")))
	b = appendField(b, "method", strings.ToUpper(req.Method))
	b = appendField(b, "url", req.URL)
	b = appendField(b, "seed", o.seed)
	b = appendField(b, "slots", slotsString(o.slots))
	for _, k := range o.ignoreKeys {
		b = appendField(b, "ignore", k)
	}
	if req.KeyExtra != "" { // absent for most calls: their keys stay as before
		b = appendField(b, "extra", req.KeyExtra)
	}
	b = appendFieldBytes(b, "credential", credSum[:])
	b = appendFieldBytes(b, "body", body)
	sum := sha256.Sum256(b)
	if cap(b) <= maxPooledPreimage {
		*bp = b
		preimages.Put(bp)
	}
	return ratelimit.TenantKeyPrefix(tenant) + "c:" + hex.EncodeToString(sum[:])
}

// preimages holds cacheKey's buffers; one over maxPooledPreimage (a rare
// large body) is left to the collector rather than pinned.
var preimages = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledPreimage = 256 << 10

// appendField appends name and value length-prefixed, so that no two
// different field lists produce the same bytes.
func appendField(b []byte, name, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendFieldBytes(b []byte, name string, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}
