package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
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
		if len(e.Index) > 0 { // the erasure index (erasure.go), same slot as the entry
			keys := make([]string, len(e.Index))
			for i, k := range e.Index {
				keys[i] = s.prefix + k
			}
			p.Eval(ctx, indexSrc, keys, semanticMember+e.ID, ttl.Milliseconds())
		}
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
		if d, _ := m.Values["d"].(string); d == "1" {
			if scope != "" && id != "" { // an erased entry (eraseSemantic)
				out = append(out, semcache.Entry{Scope: scope, ID: id, Deleted: true})
			}
			continue
		}
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

// eraseSemantic erases semantic entries by id: their answers, their
// additions to the log (the vector is derived from the prompt), and it
// appends a removal for each to the log, which every replica's index
// follows (semcache.Entry.Deleted): the entry leaves every index, and
// a replica that starts later never sees it.
func (s *SemanticStore) eraseSemantic(ctx context.Context, ids []string) (int, error) {
	deleted := 0
	for _, id := range ids {
		i := strings.LastIndexByte(id, ':')
		if i <= 0 {
			continue
		}
		n, err := s.c.Del(ctx, s.entryKey(id)).Result()
		if err != nil {
			return deleted, err
		}
		deleted += int(n)
		if err := s.c.XAdd(ctx, &redis.XAddArgs{Stream: s.logKey(), Values: []any{"s", id[:i], "i", id, "d", "1"}}).Err(); err != nil {
			return deleted, err
		}
		if err := s.dropAddition(ctx, id); err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// additionWindow: an entry's addition is looked for in the log this long
// around the time in its id (a UUIDv7 made just before the addition; the
// log's ids are Redis's clock, the entry's the replica's).
const additionWindow = 5 * time.Minute

// dropAddition deletes the log record that added entry id (XDEL), found
// among the records of additionWindow around the id's time. Not found
// (trimmed already, or clocks further apart): it leaves with the trim of
// records older than the longest TTL.
func (s *SemanticStore) dropAddition(ctx context.Context, id string) error {
	u, err := uuid.Parse(id[strings.LastIndexByte(id, ':')+1:])
	if err != nil || u.Version() != 7 {
		return nil
	}
	ms := int64(u[0])<<40 | int64(u[1])<<32 | int64(u[2])<<24 | int64(u[3])<<16 | int64(u[4])<<8 | int64(u[5])
	w := additionWindow.Milliseconds()
	start, end := strconv.FormatInt(max(ms-w, 0), 10), strconv.FormatInt(ms+w, 10)
	for page := 0; page < 100; page++ {
		msgs, err := s.c.XRangeN(ctx, s.logKey(), start, end, 500).Result()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if i, _ := m.Values["i"].(string); i == id && m.Values["d"] == nil {
				return s.c.XDel(ctx, s.logKey(), m.ID).Err()
			}
		}
		if len(msgs) < 500 {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	return nil
}
