package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	s := &PromptStore{c: c, prefix: o.Prefix, timeout: o.Timeout, now: o.Now}
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
//	tg:{<tenant>}:ps:<id>   list of the seen versions of id, as a published prompt's
//	tg:{<tenant>}:psi       sorted set of the tenant's seen ids, scored by last use (ms)
//
// Both expire TTL after the last write or LatestSeen; the set's
// members older than the TTL are dropped before it is counted, so that the
// cap counts live prompts only.
func (s *PromptStore) seenKeys(tenant, id string) []string {
	p := s.prefix + ratelimit.TenantKeyPrefix(tenant)
	return []string{p + "ps:" + id, p + "psi"}
}

// recordSeenScript: ARGV id, after, version JSON, now (ms), TTL (ms),
// cap. Answers the new version number, -1 when the latest is not after,
// -2 when id is new and the tenant is at its cap.
var recordSeenScript = redis.NewScript(`
local now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[6]) then return -2 end
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[2]) then return -1 end
local n = redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], ttl)
return n
`)

// RecordSeen appends a seen version when the latest is after, within
// the tenant's cap, in one script call.
func (s *PromptStore) RecordSeen(ctx context.Context, tenant, id string, after int, tpl prompt.Template, l prompt.SeenLimits) (prompt.Version, error) {
	tpl.Seen = true
	rec, b, err := s.encode(id, tpl)
	if err != nil {
		return prompt.Version{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := recordSeenScript.Run(ctx, s.c, s.seenKeys(tenant, id), id, after, b,
		rec.CreatedAt.UnixMilli(), l.TTL.Milliseconds(), l.MaxPrompts).Int64()
	switch {
	case err != nil:
		return prompt.Version{}, fmt.Errorf("redisstore: versioning seen prompt %q: %w", id, err)
	case n == -2:
		return prompt.Version{}, prompt.ErrSeenLimit
	case n < 0:
		return prompt.Version{}, prompt.ErrConflict
	}
	return promptVersion(id, int(n), rec), nil
}

// LatestSeen reads the latest seen version and extends the life of the
// prompt, in one MULTI: PEXPIRE of a missing list does nothing, and ZADD
// XX only refreshes an id already counted, so a read never takes a slot
// of the cap.
func (s *PromptStore) LatestSeen(ctx context.Context, tenant, id string, l prompt.SeenLimits) (prompt.Version, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	keys := s.seenKeys(tenant, id)
	var n *redis.IntCmd
	var last *redis.StringCmd
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		n = p.LLen(ctx, keys[0])
		last = p.LIndex(ctx, keys[0], -1)
		p.PExpire(ctx, keys[0], l.TTL)
		p.ZAddXX(ctx, keys[1], redis.Z{Score: float64(s.now().UnixMilli()), Member: id})
		p.PExpire(ctx, keys[1], l.TTL)
		return nil
	})
	switch {
	case errors.Is(err, redis.Nil):
		return prompt.Version{}, &prompt.NotFoundError{ID: id}
	case err != nil:
		return prompt.Version{}, fmt.Errorf("redisstore: reading seen prompt %q: %w", id, err)
	}
	return decodeVersion(id, int(n.Val()), last.Val())
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
