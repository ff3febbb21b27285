// Package semcache is the semantic cache: on a miss of the exact cache, a
// request that opted in (Helicone-Cache-Semantic-Enabled, or its egress
// policy) has its prompt embedded and compared with the earlier answers of
// the same cache scope — the exact cache key without the prompt — and the
// nearest one above the threshold answers it.
//
// Entries and their vectors live in the Store (Redis, shared by every
// replica; or in process). Each replica keeps an in-process index of the
// vectors, built from the store's log of additions at start and kept
// current by following it, so a lookup costs no store round trip; only a
// hit reads its entry. See docs/semantic-cache.md.
package semcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/tollgate-dev/tollgate/internal/throttle"
)

// Store keeps the semantic entries where every replica sees them.
type Store interface {
	// AddSemantic stores body under e.ID with ttl, only if nothing is
	// stored there (SET NX), and appends e (without the body) to the log
	// of additions, in one round trip.
	AddSemantic(ctx context.Context, e Entry, body []byte, ttl time.Duration) error
	// SemanticEntry returns the body stored under id; nil, nil when it is
	// gone (expired, evicted).
	SemanticEntry(ctx context.Context, id string) ([]byte, error)
	// SemanticSince returns up to n additions after cursor ("" = the
	// oldest kept) and the cursor to pass next.
	SemanticSince(ctx context.Context, cursor string, n int) ([]Entry, string, error)
}

// Trimmer is a Store whose log of additions can be cut by age, so that
// vectors and scope names do not outlive their answers (Redis: XTRIM
// MINID).
type Trimmer interface {
	// TrimSemantic drops the additions made before t.
	TrimSemantic(ctx context.Context, t time.Time) error
}

// Entry is one semantic entry as the log of additions holds it.
type Entry struct {
	Scope         string
	ID            string    // Scope + ":" + a server-made id: the store key of the answer's bytes
	RefID         string    // the request id of the call that filled it (clients choose it: never a key)
	Vector        []float32 // unit length
	ExpiresUnixMs int64
	// Index are the erasure index sets the store adds the entry to, with
	// the entry (gate.Decision.ErasureIndex); not in the log.
	Index []string
	// Deleted: the log's record of an erased entry (no vector), which
	// removes it from every replica's index.
	Deleted bool
}

// Options configure a Cache. Zero values get the defaults noted.
type Options struct {
	Store    Store    // required
	Embedder Embedder // required
	// Threshold is the cosine similarity a hit needs when the request does
	// not say (Helicone-Cache-Semantic-Threshold). Default 0.95.
	Threshold float32
	// MaxEntriesPerScope bounds one scope's entries in the index (the
	// oldest go first). Default 10000.
	MaxEntriesPerScope int
	// MaxEntries bounds the index over all scopes (the oldest go first).
	// Default 100000.
	MaxEntries int
	// EmbedTimeout bounds the embeddings call, which the request waits
	// for; past it the call goes on uncached. Default 150 ms.
	EmbedTimeout time.Duration
	// StoreTimeout bounds a hit's entry read, which the request waits for.
	// Default 50 ms.
	StoreTimeout time.Duration
	// AddTimeout bounds an addition, made after the reply (off the
	// client's path). Default: StoreTimeout.
	AddTimeout time.Duration
	// MaxTTL caps an entry's TTL; additions older than it are trimmed
	// from the store's log. Default 7 days.
	MaxTTL time.Duration
	// FollowEvery is how often the index reads what other replicas added.
	// Default 500 ms.
	FollowEvery time.Duration
	// Model and Dimensions name the embeddings: they are part of every
	// scope, so two models (a rolling deploy) never compare vectors or
	// wipe each other's entries. Dimensions 0: the model's own.
	Model      string
	Dimensions int
	Now        func() time.Time
	Metrics    *Metrics
	Logger     *slog.Logger
}

// DefaultThreshold is the similarity a hit needs by default.
const DefaultThreshold = 0.95

// followBatch is how many additions one follow round trip reads.
const followBatch = 1000

// MaxDimensions bounds a vector read from the store: a damaged or forged
// record cannot make the index allocate without limit.
const MaxDimensions = 8192

// Cache is the semantic cache of one replica.
type Cache struct {
	o       Options
	tag     string // the embeddings' part of every scope: "/e" + a hash of model and dimensions
	idx     *index
	cursor  string
	followM sync.Mutex // one follower at a time
	ready   atomic.Bool
	errLog  throttle.PerSecond
}

// New builds a Cache; Start begins following the store.
func New(o Options) (*Cache, error) {
	if o.Store == nil || o.Embedder == nil {
		return nil, errors.New("semcache: a store and an embedder are required")
	}
	if !(o.Threshold > 0 && o.Threshold <= 1) { // NaN too
		o.Threshold = DefaultThreshold
	}
	if o.MaxEntriesPerScope <= 0 {
		o.MaxEntriesPerScope = 10000
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 100000
	}
	if o.EmbedTimeout <= 0 {
		o.EmbedTimeout = 150 * time.Millisecond
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 50 * time.Millisecond
	}
	if o.AddTimeout <= 0 {
		o.AddTimeout = o.StoreTimeout
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = 7 * 24 * time.Hour
	}
	if o.FollowEvery <= 0 {
		o.FollowEvery = 500 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	sum := sha256.Sum256([]byte(o.Model + "\x00" + strconv.Itoa(o.Dimensions)))
	return &Cache{o: o, tag: "/e" + hex.EncodeToString(sum[:6]), idx: newIndex(o.MaxEntriesPerScope, o.MaxEntries)}, nil
}

// Threshold is the default similarity a hit needs.
func (c *Cache) Threshold() float32 { return c.o.Threshold }

// Start reads the store's log into the index and keeps following it until
// ctx ends. The first read happens before Start returns (bounded by a few
// seconds), so a replica started later answers from what others wrote.
func (c *Cache) Start(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	c.Follow(sctx)
	cancel()
	go func() {
		t := time.NewTicker(c.o.FollowEvery)
		defer t.Stop()
		sweep := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			c.Follow(ctx)
			if sweep++; sweep%60 == 0 {
				c.idx.sweep(c.o.Now().UnixMilli())
				c.Trim(ctx)
			}
		}
	}()
}

// Follow reads the additions since the last call into the index.
func (c *Cache) Follow(ctx context.Context) {
	c.followM.Lock()
	defer c.followM.Unlock()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		entries, next, err := c.o.Store.SemanticSince(rctx, c.cursor, followBatch)
		cancel()
		if err != nil {
			c.o.Metrics.followErrors.Inc()
			c.logError("follow", err)
			return
		}
		now := c.o.Now().UnixMilli()
		for _, e := range entries {
			if e.Deleted {
				c.idx.remove(e.Scope, e.ID)
				continue
			}
			if e.ExpiresUnixMs > now && c.valid(&e) {
				c.idx.add(e.Scope, e.ID, e.Vector, e.ExpiresUnixMs)
			}
		}
		c.cursor = next
		c.o.Metrics.entries.Set(float64(c.idx.size()))
		if len(entries) < followBatch {
			return
		}
	}
}

// Trim cuts the store's log of additions older than MaxTTL: no answer
// they name is still stored. Every replica does it (it is idempotent).
func (c *Cache) Trim(ctx context.Context) {
	t, ok := c.o.Store.(Trimmer)
	if !ok {
		return
	}
	tctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := t.TrimSemantic(tctx, c.o.Now().Add(-c.o.MaxTTL)); err != nil {
		c.o.Metrics.storeErrors.Inc()
		c.logError("trim", err)
	}
}

// scopeOf is the index's scope of a request scope: with the embeddings'
// model and dimensions.
func (c *Cache) scopeOf(scope string) string { return scope + c.tag }

// valid checks a record read from the store's log, which any client of
// the store could have written: an entry of this replica's embeddings
// (another model's are skipped), its id inside its scope, a vector of a
// bounded length, every component finite; the vector is made unit length
// again. A record that fails is skipped.
func (c *Cache) valid(e *Entry) bool {
	if !strings.HasSuffix(e.Scope, c.tag) || !strings.HasPrefix(e.ID, e.Scope+":") ||
		len(e.Vector) == 0 || len(e.Vector) > MaxDimensions ||
		c.o.Dimensions > 0 && len(e.Vector) != c.o.Dimensions {
		return false
	}
	for _, f := range e.Vector {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return false
		}
	}
	return normalize(e.Vector)
}

// Lookup embeds text and returns the vector (for Add after the call) and
// the nearest live entry of scope when its similarity reaches threshold.
// An embeddings call that fails or outlasts EmbedTimeout returns an error:
// the call goes on uncached.
func (c *Cache) Lookup(ctx context.Context, scope, text string, threshold float32) ([]float32, *Match, error) {
	ectx, cancel := context.WithTimeout(ctx, c.o.EmbedTimeout)
	vec, err := c.o.Embedder.Embed(ectx, text)
	timedOut := ectx.Err() == context.DeadlineExceeded
	cancel()
	if err != nil {
		if timedOut {
			c.o.Metrics.embed.WithLabelValues("timeout").Inc()
		} else {
			c.o.Metrics.embed.WithLabelValues("error").Inc()
		}
		c.logError("embed", err)
		return nil, nil, err
	}
	c.o.Metrics.embed.WithLabelValues("ok").Inc()
	cands := c.idx.nearest(c.scopeOf(scope), vec, c.o.Now().UnixMilli(), 1+maxFallbacks)
	for i := range cands {
		// A dot product of unit vectors can round past 1; a record shows [0, 1].
		cands[i].Similarity = min(max(cands[i].Similarity, 0), 1)
	}
	if len(cands) == 0 || cands[0].Similarity < threshold {
		c.o.Metrics.lookups.WithLabelValues("miss").Inc()
		return vec, nil, nil
	}
	c.o.Metrics.lookups.WithLabelValues("hit").Inc()
	m := cands[0]
	for _, o := range cands[1:] {
		if o.Similarity >= threshold {
			m.next = append(m.next, o)
		}
	}
	return vec, &m, nil
}

// maxFallbacks is how many more candidates a hit whose answer is gone
// from the store may try.
const maxFallbacks = 2

// Answer reads the stored answer of a hit of scope from Lookup. An entry
// whose answer is gone (expired or evicted in Redis before the index
// knew) is removed from the index, so it stops winning, and the next
// best above the threshold is tried (at most two more). It returns the
// answer and the match that gave it; ok false when none is left.
func (c *Cache) Answer(ctx context.Context, scope string, m *Match) (body []byte, hit Match, ok bool) {
	if m == nil {
		return nil, Match{}, false
	}
	for _, cand := range append([]Match{{ID: m.ID, Similarity: m.Similarity}}, m.next...) {
		b, err := c.entry(ctx, scope, cand.ID)
		if err != nil {
			return nil, Match{}, false // the store is failing: not worth more tries
		}
		if b != nil {
			return b, cand, true
		}
		c.idx.remove(c.scopeOf(scope), cand.ID)
		c.o.Metrics.gone.Inc()
	}
	return nil, Match{}, false
}

// Entry reads the stored answer of a hit of scope; nil when it is gone,
// or when id is not one of scope's (checked again before the read).
func (c *Cache) Entry(ctx context.Context, scope, id string) []byte {
	b, _ := c.entry(ctx, scope, id)
	return b
}

// entry is Entry with the store's error: nil, nil when the entry is gone.
func (c *Cache) entry(ctx context.Context, scope, id string) ([]byte, error) {
	if !strings.HasPrefix(id, c.scopeOf(scope)+":") {
		return nil, errors.New("semcache: an entry id outside its scope")
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.StoreTimeout)
	defer cancel()
	b, err := c.o.Store.SemanticEntry(ctx, id)
	if err != nil {
		c.o.Metrics.storeErrors.Inc()
		c.logError("entry", err)
		return nil, err
	}
	return b, nil
}

// Add stores an answer under scope with its prompt's vector (from
// Lookup), for ttl. It runs after the response, off the client's path.
// The entry's id is made here (a UUIDv7), never the client's request id:
// a client reusing a Helicone-Request-Id must not overwrite an answer.
//
// index are the erasure index sets the entry is added to (the
// gate's Decision.ErasureIndex), so that an erasure of the request's user,
// session or property finds it.
func (c *Cache) Add(ctx context.Context, scope, requestID string, vec []float32, body []byte, ttl time.Duration, index ...string) {
	if len(vec) == 0 || ttl <= 0 {
		return
	}
	ttl = min(ttl, c.o.MaxTTL)
	u, err := uuid.NewV7()
	if err != nil {
		return
	}
	scope = c.scopeOf(scope)
	e := Entry{Scope: scope, ID: scope + ":" + u.String(), RefID: requestID, Vector: vec,
		ExpiresUnixMs: c.o.Now().Add(ttl).UnixMilli(), Index: index}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.AddTimeout)
	defer cancel()
	if err := c.o.Store.AddSemantic(ctx, e, body, ttl); err != nil {
		c.o.Metrics.storeErrors.Inc()
		c.logError("add", err)
		return
	}
	// Indexed now: this replica need not wait for its own follow.
	c.idx.add(e.Scope, e.ID, e.Vector, e.ExpiresUnixMs)
	c.o.Metrics.added.Inc()
	c.o.Metrics.entries.Set(float64(c.idx.size()))
}

// logError logs at most one error a second: an embeddings or Redis outage
// must not log at the request rate. The error never holds a credential.
func (c *Cache) logError(op string, err error) {
	if !c.errLog.Allow() {
		return
	}
	c.o.Logger.Warn("semantic cache call failed; the call goes on uncached", "op", op, "err", err)
}
