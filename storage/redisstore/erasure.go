package redisstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/policies/gate"
)

// The erasure index (policies/gate/erasureindex.go): sets of the cache
// entries of one subject, written with the entry in the same script, so
// storing an entry stays one round trip. A member is an exact cache slot
// key (prefix included) or "sem:" and a semantic entry id.

var _ gate.IndexedStore = (*Store)(nil)

// indexLua adds member KEYS... from position first and keeps each set alive
// at least ttl ms (a set outlives none of its entries; members whose entry
// expired cost a few bytes until the set goes).
const indexLua = `
local function index(first, member, ttl)
  for j = first, #KEYS do
    redis.call('SADD', KEYS[j], member)
    local t = redis.call('PTTL', KEYS[j])
    if t < ttl then redis.call('PEXPIRE', KEYS[j], ttl) end
  end
end
`

// fillIndexedScript is fillScript that also indexes the slot it filled.
//
//	KEYS slot keys (ARGV[3] of them), then index sets; ARGV entry, ttl ms, n.
//	Reply: slot (0-based) or -1.
var fillIndexedScript = redis.NewScript(indexLua + `
local n, ttl = tonumber(ARGV[3]), tonumber(ARGV[2])
for i = 1, n do
  if redis.call('SET', KEYS[i], ARGV[1], 'PX', ttl, 'NX') then
    index(n + 1, KEYS[i], ttl)
    return i - 1
  end
end
return -1
`)

// putIndexedScript: KEYS[1] the slot, then index sets; ARGV entry, ttl ms.
var putIndexedScript = redis.NewScript(indexLua + `
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
index(2, KEYS[1], ttl)
return 1
`)

// indexScript only indexes: KEYS index sets; ARGV member, ttl ms.
const indexSrc = indexLua + `
index(1, ARGV[1], tonumber(ARGV[2]))
return 1
`

// FillIndexed implements gate.IndexedStore.
func (s *Store) FillIndexed(ctx context.Context, cacheKey string, slots int, entry []byte, ttl time.Duration, index []string) (int, error) {
	if err := checkSlots(slots); err != nil {
		return -1, err
	}
	if ttl < time.Millisecond {
		return -1, errors.New("redisstore: ttl must be at least 1 ms")
	}
	keys := make([]string, 0, slots+len(index))
	for i := range slots {
		keys = append(keys, s.prefix+gate.CacheSlotKey(cacheKey, i))
	}
	for _, k := range index {
		keys = append(keys, s.prefix+k)
	}
	return fillIndexedScript.Run(ctx, s.c, keys, entry, ttl.Milliseconds(), slots).Int()
}

// PutIndexed implements gate.IndexedStore.
func (s *Store) PutIndexed(ctx context.Context, cacheKey string, slot int, entry []byte, ttl time.Duration, index []string) error {
	if slot < 0 || slot >= gate.MaxCacheSlots {
		return errors.New("redisstore: slot outside the key's slots")
	}
	if ttl < time.Millisecond {
		return errors.New("redisstore: ttl must be at least 1 ms")
	}
	keys := []string{s.prefix + gate.CacheSlotKey(cacheKey, slot)}
	for _, k := range index {
		keys = append(keys, s.prefix+k)
	}
	return putIndexedScript.Run(ctx, s.c, keys, entry, ttl.Milliseconds()).Err()
}

// semanticMember is a semantic entry's member in an index set.
const semanticMember = "sem:"

// EraseIndexed deletes every entry the index sets name — exact cache
// slots, and semantic entries (SemanticStore.eraseSemantic: their answers,
// their additions to the log, and a removal every replica's index
// follows) — then the sets. Off the request path (the erasure job).
// Deleting an entry twice is harmless: a failure half way is retried
// whole.
func (s *Store) EraseIndexed(ctx context.Context, indexKeys []string) (int, error) {
	sem := s.Semantic(0)
	deleted := 0
	for _, k := range indexKeys {
		members, err := s.c.SMembers(ctx, s.prefix+k).Result()
		if err != nil {
			return deleted, err
		}
		var exact, ids []string
		for _, m := range members {
			if id, ok := strings.CutPrefix(m, semanticMember); ok {
				ids = append(ids, id)
			} else if strings.HasPrefix(m, s.prefix) {
				exact = append(exact, m)
			}
		}
		if len(exact) > 0 {
			cmds, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, m := range exact {
					p.Del(ctx, m)
				}
				return nil
			})
			if err != nil {
				return deleted, err
			}
			for _, c := range cmds {
				deleted += int(c.(*redis.IntCmd).Val())
			}
		}
		n, err := sem.eraseSemantic(ctx, ids)
		deleted += n
		if err != nil {
			return deleted, err
		}
		if err := s.c.Del(ctx, s.prefix+k).Err(); err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// TryLease takes the lease name for owner, or renews it when owner holds
// it, for ttl; false when another owner holds it. For work that one
// process at a time should do (the erasure and retention jobs).
func (s *Store) TryLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	n, err := leaseScript.Run(ctx, s.c, []string{s.prefix + "tollgate:lease:" + name}, owner, ttl.Milliseconds()).Int()
	return n == 1, err
}

var leaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
return 0
`)
