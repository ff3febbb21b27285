package redisstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/policies/prompt"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

// PromptOptions configure a PromptStore. Zero values get the defaults
// noted.
type PromptOptions struct {
	// Prefix is prepended to every key, as Options.Prefix.
	Prefix string
	// Timeout bounds every call (one round trip each). Default 100 ms: a
	// cache miss of PromptLibrary waits for it on the request path.
	Timeout time.Duration
	Now     func() time.Time // default time.Now; stamps CreatedAt
	// Rand picks each seen key's TTL jitter, in [0, n). Default
	// math/rand/v2's Int64N.
	Rand func(n int64) int64
}

// PromptStore implements prompt.Store and prompt.SeenStore. Each
// published prompt is one Redis list, "tg:{prompt:<id>}:versions", whose
// element i is version i+1 as JSON: RPUSH is atomic and answers the new length, which is the new
// version number, so concurrent publishers on any number of replicas get
// distinct, gapless versions without a script. The hash tag keeps each
// prompt on one Cluster slot.
type PromptStore struct {
	c       redis.UniversalClient
	prefix  string
	timeout time.Duration
	now     func() time.Time
	rand    func(n int64) int64
}

var (
	_ prompt.Store     = (*PromptStore)(nil)
	_ prompt.SeenStore = (*PromptStore)(nil)
)

// NewPromptStore keeps prompts in the Redis of c. As with New, the client
// should have ContextTimeoutEnabled (NewClient sets it) so that Timeout
// holds.
func NewPromptStore(c redis.UniversalClient, o PromptOptions) (*PromptStore, error) {
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("redisstore: prefix %q must not contain '{' or '}'", o.Prefix)
	}
	s := &PromptStore{c: c, prefix: o.Prefix, timeout: o.Timeout, now: o.Now, rand: o.Rand}
	if s.rand == nil {
		s.rand = rand.Int64N
	}
	if s.timeout <= 0 {
		s.timeout = 100 * time.Millisecond
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Prompts returns a PromptStore on the Store's client and key prefix.
func (s *Store) Prompts(timeout time.Duration) *PromptStore {
	p, _ := NewPromptStore(s.c, PromptOptions{Prefix: s.prefix, Timeout: timeout}) // prefix checked by New
	return p
}

// promptRecord is one version as stored; the number is its position.
type promptRecord struct {
	Model     string          `json:"model,omitempty"`
	Messages  json.RawMessage `json:"messages"`
	System    json.RawMessage `json:"system,omitempty"`
	Seen      bool            `json:"seen,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
}

func (s *PromptStore) key(id string) string {
	return s.prefix + "tg:{prompt:" + id + "}:versions"
}

// encode checks id and makes the record of tpl as published now.
func (s *PromptStore) encode(id string, tpl prompt.Template) (promptRecord, []byte, error) {
	if err := prompt.ValidateID(id); err != nil {
		return promptRecord{}, nil, err
	}
	rec := promptRecord{Model: tpl.Model, Messages: tpl.Messages, System: tpl.System, Seen: tpl.Seen, CreatedAt: s.now().UTC()}
	b, err := json.Marshal(rec)
	if err != nil {
		return promptRecord{}, nil, fmt.Errorf("redisstore: prompt %q: %w", id, err)
	}
	return rec, b, nil
}

// PublishPrompt appends a version with RPUSH.
func (s *PromptStore) PublishPrompt(ctx context.Context, id string, tpl prompt.Template) (prompt.Version, error) {
	rec, b, err := s.encode(id, tpl)
	if err != nil {
		return prompt.Version{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := s.c.RPush(ctx, s.key(id), b).Result()
	if err != nil {
		return prompt.Version{}, fmt.Errorf("redisstore: publishing prompt %q: %w", id, err)
	}
	return promptVersion(id, int(n), rec), nil
}

// Seen prompts (prompt.SeenStore) are one tenant's, in that tenant's
// hash slot:
//
//	tg:{<tenant>}:psv   hash of the tenant's seen ids → "<version>:<sum hex>:<created, ms>"
//	tg:{<tenant>}:psi   sorted set of the same ids, scored by last use (ms)
//
// A seen version only numbers calls, so nothing of its template but the
// sum is kept: a tenant holds at most MaxPrompts fields of under 100 bytes
// each, whatever its templates and however many versions. Both keys expire
// TTL (and up to 1% more, so that keys written together do not all expire
// together) after the tenant's last write or LatestSeen; an id unused for
// the TTL is dropped from both before the set is counted, so that the cap
// counts live prompts only. The lists of an earlier layout,
// tg:{<tenant>}:ps:<id>, are no longer read and expire on their own.
func (s *PromptStore) seenKeys(tenant string) []string {
	p := s.prefix + ratelimit.TenantKeyPrefix(tenant)
	return []string{p + "psv", p + "psi"}
}

// seenSweep, the start of both seen scripts: ARGV[2] is now (ms), ARGV[3]
// the TTL (ms) and ARGV[4] the keys' TTL with its jitter. Drops the ids
// unused for the TTL.
const seenSweep = `
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
for _, id in ipairs(gone) do redis.call('HDEL', KEYS[1], id) end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl) end
`

// recordSeenScript: ARGV id, now, TTL, keys' TTL, after, the new value,
// cap. Answers the new version number, -1 when the latest is not after,
// -2 when id is new and the tenant is at its cap.
var recordSeenScript = redis.NewScript(seenSweep + `
local live = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not live and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[7]) then return -2 end
local n = 0
if live then
  local v = redis.call('HGET', KEYS[1], ARGV[1])
  if v then n = tonumber(string.match(v, '^(%d+):')) end
end
if n ~= tonumber(ARGV[5]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[6])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return n + 1
`)

// latestSeenScript: ARGV id, now, TTL, keys' TTL. Answers id's value, or
// nil; a live id's use is refreshed, and a read never takes a place of the
// cap.
var latestSeenScript = redis.NewScript(seenSweep + `
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return false end
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return false end
redis.call('ZADD', KEYS[2], 'XX', now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return v
`)

// seenTTL is the keys' TTL: l.TTL and up to 1% more.
func (s *PromptStore) seenTTL(l prompt.SeenLimits) int64 {
	ms := l.TTL.Milliseconds()
	if jitter := ms / 100; jitter > 0 {
		ms += s.rand(jitter + 1)
	}
	return ms
}

// RecordSeen writes the new latest version when the latest is after,
// within the tenant's cap, in one script call.
func (s *PromptStore) RecordSeen(ctx context.Context, tenant, id string, after int, sum prompt.TemplateSum, l prompt.SeenLimits) (prompt.Seen, error) {
	if err := prompt.ValidateID(id); err != nil {
		return prompt.Seen{}, err
	}
	seen := prompt.Seen{ID: id, Version: after + 1, Sum: sum, CreatedAt: s.now().UTC().Truncate(time.Millisecond)}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := recordSeenScript.Run(ctx, s.c, s.seenKeys(tenant), id, seen.CreatedAt.UnixMilli(), l.TTL.Milliseconds(),
		s.seenTTL(l), after, encodeSeen(seen), l.MaxPrompts).Int64()
	switch {
	case err != nil:
		return prompt.Seen{}, fmt.Errorf("redisstore: versioning seen prompt %q: %w", id, err)
	case n == -2:
		return prompt.Seen{}, prompt.ErrSeenLimit
	case n < 0:
		return prompt.Seen{}, prompt.ErrConflict
	}
	return seen, nil
}

// LatestSeen reads the latest seen version and extends the life of the
// prompt, in one script call.
func (s *PromptStore) LatestSeen(ctx context.Context, tenant, id string, l prompt.SeenLimits) (prompt.Seen, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	raw, err := latestSeenScript.Run(ctx, s.c, s.seenKeys(tenant), id, s.now().UnixMilli(), l.TTL.Milliseconds(), s.seenTTL(l)).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return prompt.Seen{}, &prompt.NotFoundError{ID: id}
	case err != nil:
		return prompt.Seen{}, fmt.Errorf("redisstore: reading seen prompt %q: %w", id, err)
	}
	seen, ok := decodeSeen(id, raw)
	if !ok {
		return prompt.Seen{}, fmt.Errorf("redisstore: seen prompt %q is unreadable", id)
	}
	return seen, nil
}

// encodeSeen is the hash value of seen: "<version>:<sum hex>:<created, ms>".
func encodeSeen(seen prompt.Seen) string {
	return strconv.Itoa(seen.Version) + ":" + hex.EncodeToString(seen.Sum[:]) + ":" + strconv.FormatInt(seen.CreatedAt.UnixMilli(), 10)
}

func decodeSeen(id, raw string) (prompt.Seen, bool) {
	n, rest, ok1 := strings.Cut(raw, ":")
	sum, ms, ok2 := strings.Cut(rest, ":")
	v, err1 := strconv.Atoi(n)
	at, err2 := strconv.ParseInt(ms, 10, 64)
	seen := prompt.Seen{ID: id, Version: v, CreatedAt: time.UnixMilli(at).UTC()}
	got, err3 := hex.Decode(seen.Sum[:], []byte(sum))
	return seen, ok1 && ok2 && err1 == nil && err2 == nil && err3 == nil && got == len(seen.Sum) && v > 0
}

// PromptVersion reads one version with LINDEX; the latest with LLEN and
// LINDEX -1 in one MULTI, so number and content agree under concurrent
// publishes.
func (s *PromptStore) PromptVersion(ctx context.Context, id string, v int) (prompt.Version, error) {
	if v < 0 {
		return prompt.Version{}, &prompt.NotFoundError{ID: id, Version: v}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	k := s.key(id)
	var raw string
	var err error
	if v > 0 {
		raw, err = s.c.LIndex(ctx, k, int64(v-1)).Result()
	} else {
		var n *redis.IntCmd
		var last *redis.StringCmd
		_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			n = p.LLen(ctx, k)
			last = p.LIndex(ctx, k, -1)
			return nil
		})
		if err == nil {
			v, raw = int(n.Val()), last.Val()
		}
	}
	switch {
	case errors.Is(err, redis.Nil):
		return prompt.Version{}, &prompt.NotFoundError{ID: id, Version: v}
	case err != nil:
		return prompt.Version{}, fmt.Errorf("redisstore: reading prompt %q: %w", id, err)
	}
	return decodeVersion(id, v, raw)
}

// PromptVersions reads the whole list with LRANGE.
func (s *PromptStore) PromptVersions(ctx context.Context, id string) ([]prompt.Version, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	raws, err := s.c.LRange(ctx, s.key(id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: reading prompt %q: %w", id, err)
	}
	if len(raws) == 0 {
		return nil, &prompt.NotFoundError{ID: id}
	}
	out := make([]prompt.Version, len(raws))
	for i, raw := range raws {
		if out[i], err = decodeVersion(id, i+1, raw); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decodeVersion(id string, v int, raw string) (prompt.Version, error) {
	var rec promptRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return prompt.Version{}, fmt.Errorf("redisstore: prompt %q version %d is unreadable: %w", id, v, err)
	}
	return promptVersion(id, v, rec), nil
}

func promptVersion(id string, v int, rec promptRecord) prompt.Version {
	return prompt.Version{
		ID: id, Version: v, CreatedAt: rec.CreatedAt,
		Template: prompt.Template{Model: rec.Model, Messages: rec.Messages, System: rec.System, Seen: rec.Seen},
	}
}
