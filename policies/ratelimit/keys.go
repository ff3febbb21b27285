package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
)

// TenantKeyPrefix starts every store key of a tenant: "tg:{<tenant>}:".
// In a Redis Cluster all of a tenant's keys then hash to one slot, and one
// Lua script may touch a request's cache slots and its rate-limit buckets
// together (the one-round-trip rule of DESIGN §7). The price: a Cluster
// spreads tenants over nodes, not one tenant's keys — a single very large
// tenant lives on one node. Splitting it would need the cache read and the
// bucket take in two round trips.
//
//	tg:{<tenant>}:c:<sha256 hex>:<slot>     cache entry, one key per slot (own TTL; policies/gate)
//	tg:{<tenant>}:rl:<unit>:<segment>       token bucket (hash: t tokens, ts µs)
//	tg:{<tenant>}:eg:<rule>:<workload>:…    token bucket of an egress policy limit (policies/egress)
func TenantKeyPrefix(tenant string) string {
	return "tg:{" + KeyPart(tenant) + "}:"
}

// KeyPart makes a user-controlled string safe inside a key: short plain
// strings are kept (readable keys in redis-cli), anything else is replaced
// by "~" and a hash. '~' is not in the plain set, so a plain value can never
// equal a hashed one, and '{', '}' and ':' never appear raw, so a value
// cannot move the hash tag or fake a key boundary.
func KeyPart(s string) string {
	if len(s) <= 64 {
		plain := true
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
				c == '-' || c == '_' || c == '.' || c == '@') {
				plain = false
				break
			}
		}
		if plain {
			return s
		}
	}
	sum := sha256.Sum256([]byte(s))
	return "~" + hex.EncodeToString(sum[:16])
}
