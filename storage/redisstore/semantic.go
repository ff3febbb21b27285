package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/policies/semcache"
)

// SemanticStore is semcache.Store on Redis: each answer's bytes under its
// own key with the entry's TTL (keys hash-tagged by tenant, like the exact
// cache's), and one stream, the log of additions, that every replica reads
// to keep its in-process vector index current (Redis 7.0 has no vector
// search). The stream is capped at MaxLog entries (approximately, MAXLEN
// ~): a replica starting later rebuilds its index from what is left.
type SemanticStore struct {
	c      redis.UniversalClient
	prefix string
	maxLog int64
}

var _ semcache.Store = (*SemanticStore)(nil)

// Semantic returns the semantic cache's store on s's client; maxLog bounds
// the stream (0: 100000).
func (s *Store) Semantic(maxLog int) *SemanticStore {
	if maxLog <= 0 {
		maxLog = 100000
	}
	return &SemanticStore{c: s.c, prefix: s.prefix, maxLog: int64(maxLog)}
}

func (s *SemanticStore) logKey() string { return s.prefix + "tollgate:semantic:log" }

// entryKey is where an entry's answer lives: a key space of its own, so
// no id read from the stream can name an exact cache entry or any other
// key. The id starts with its scope, which starts with the tenant's hash
// tag: entries stay in their tenant's slot.
func (s *SemanticStore) entryKey(id string) string { return s.prefix + "tollgate:sem:" + id }

// AddSemantic writes the answer (SET NX: an id is never written twice)
// and appends its vector to the stream in one pipeline.
func (s *SemanticStore) AddSemantic(ctx context.Context, e semcache.Entry, body []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("redisstore: a semantic entry needs a TTL")
	}
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, s.entryKey(e.ID), body, ttl)
		p.XAdd(ctx, &redis.XAddArgs{
			Stream: s.logKey(), MaxLen: s.maxLog, Approx: true,
			Values: []any{"s", e.Scope, "i", e.ID, "r", e.RefID, "v", encodeVector(e.Vector),
				"x", strconv.FormatInt(e.ExpiresUnixMs, 10)},
		})
		return nil
	})
	return err
}

// TrimSemantic drops the stream's records added before t (XTRIM MINID,
// exact: the record ids are their addition times in ms).
func (s *SemanticStore) TrimSemantic(ctx context.Context, t time.Time) error {
	return s.c.XTrimMinID(ctx, s.logKey(), strconv.FormatInt(t.UnixMilli(), 10)).Err()
}

func (s *SemanticStore) SemanticEntry(ctx context.Context, id string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.entryKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// SemanticSince reads the stream after cursor, a stream id.
func (s *SemanticStore) SemanticSince(ctx context.Context, cursor string, n int) ([]semcache.Entry, string, error) {
	start := "-"
	if cursor != "" {
		start = "(" + cursor
	}
	msgs, err := s.c.XRangeN(ctx, s.logKey(), start, "+", int64(n)).Result()
	if err != nil {
		return nil, cursor, err
	}
	out := make([]semcache.Entry, 0, len(msgs))
	for _, m := range msgs {
		cursor = m.ID
		scope, _ := m.Values["s"].(string)
		id, _ := m.Values["i"].(string)
		ref, _ := m.Values["r"].(string)
		vec, _ := m.Values["v"].(string)
		exp, _ := m.Values["x"].(string)
		ms, err := strconv.ParseInt(exp, 10, 64)
		v := decodeVector(vec)
		if scope == "" || id == "" || err != nil || v == nil {
			continue // not ours, or damaged: skip it, keep following
		}
		out = append(out, semcache.Entry{Scope: scope, ID: id, RefID: ref, Vector: v, ExpiresUnixMs: ms})
	}
	return out, cursor, nil
}

// encodeVector stores float32s little-endian: 1 KiB for 256 dimensions.
func encodeVector(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return string(b)
}

func decodeVector(s string) []float32 {
	if len(s) == 0 || len(s)%4 != 0 || len(s) > 4*semcache.MaxDimensions {
		return nil
	}
	v := make([]float32, len(s)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32([]byte(s[4*i : 4*i+4])))
	}
	return v
}
