package semcache

import (
	"sync"
)

// index is one replica's in-process view of the semantic entries: per
// scope, the unit vectors of earlier answers, searched by brute force.
// Redis 7.0 has no vector search, and a scope (one tenant, provider,
// model and parameter set) rarely holds more than a few thousand entries:
// a dot product over float32 slices in a tight loop scans 100k 256-dim
// vectors in milliseconds and needs no graph to keep consistent across
// replicas. Memory is bounded per scope by maxPerScope: the oldest entry
// goes first.
type index struct {
	maxPerScope int

	mu     sync.RWMutex
	scopes map[string]*scopeIndex
	total  int
}

// scopeIndex holds one scope's entries in insertion order as a ring, so
// evicting the oldest is O(1) and the vectors sit in one flat slice.
type scopeIndex struct {
	dims    int // of every vector of the scope
	ids     []string
	expires []int64   // unix ms
	vecs    []float32 // len(ids)*dims, entry i at [i*dims, (i+1)*dims)
	head    int       // oldest entry when full
	n       int
	seen    map[string]struct{}
}

// Match is the nearest earlier answer of a lookup.
type Match struct {
	ID         string  // the entry's store id
	Similarity float32 // cosine similarity, in [-1, 1]
}

func newIndex(maxPerScope int) *index {
	return &index{maxPerScope: maxPerScope, scopes: make(map[string]*scopeIndex)}
}

// add indexes one entry; an id already present is ignored (a replica sees
// its own additions again in the shared log). A vector of another length
// than the scope's means the embeddings model changed: entries arrive in
// time order, so the scope starts over with the new model's.
func (x *index) add(scope, id string, vec []float32, expiresMs int64) bool {
	if len(vec) == 0 {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.scopes[scope]
	if s != nil && s.dims != len(vec) {
		x.total -= s.n
		s = nil
	}
	if s == nil {
		s = &scopeIndex{dims: len(vec), seen: make(map[string]struct{})}
		x.scopes[scope] = s
	}
	if _, dup := s.seen[id]; dup {
		return false
	}
	d := s.dims
	if s.n < x.maxPerScope {
		s.ids = append(s.ids, id)
		s.expires = append(s.expires, expiresMs)
		s.vecs = append(s.vecs, vec...)
		s.n++
		x.total++
	} else { // full: overwrite the oldest
		i := s.head
		delete(s.seen, s.ids[i])
		s.ids[i], s.expires[i] = id, expiresMs
		copy(s.vecs[i*d:(i+1)*d], vec)
		s.head = (s.head + 1) % s.n
	}
	s.seen[id] = struct{}{}
	return true
}

// nearest returns the most similar live entry of scope, ok false when the
// scope holds none. vec must be a unit vector of the index's length.
func (x *index) nearest(scope string, vec []float32, nowMs int64) (Match, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	s := x.scopes[scope]
	if s == nil || len(vec) != s.dims {
		return Match{}, false
	}
	best, bestI := float32(-2), -1
	d := s.dims
	for i := 0; i < s.n; i++ {
		if s.expires[i] <= nowMs {
			continue
		}
		if sim := dot(vec, s.vecs[i*d:(i+1)*d]); sim > best {
			best, bestI = sim, i
		}
	}
	if bestI < 0 {
		return Match{}, false
	}
	return Match{ID: s.ids[bestI], Similarity: best}, true
}

// sweep drops expired entries; scopes left empty are forgotten.
func (x *index) sweep(nowMs int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for name, s := range x.scopes {
		live := &scopeIndex{dims: s.dims, seen: make(map[string]struct{})}
		d := s.dims
		// Oldest first, so the ring order (and what is evicted next) holds.
		for k := 0; k < s.n; k++ {
			i := (s.head + k) % s.n
			if s.expires[i] <= nowMs {
				continue
			}
			live.ids = append(live.ids, s.ids[i])
			live.expires = append(live.expires, s.expires[i])
			live.vecs = append(live.vecs, s.vecs[i*d:(i+1)*d]...)
			live.seen[s.ids[i]] = struct{}{}
			live.n++
		}
		x.total += live.n - s.n
		if live.n == 0 {
			delete(x.scopes, name)
		} else if live.n != s.n {
			x.scopes[name] = live
		}
	}
}

// size is the number of entries indexed, over all scopes.
func (x *index) size() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.total
}

// dot is the inner product of two unit vectors: their cosine similarity.
// Eight accumulators over re-sliced windows of eight let the compiler drop
// the bounds checks and the CPU overlap the multiplies.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	for len(a) >= 8 {
		x, y := a[:8:8], b[:8:8]
		s0 += x[0] * y[0]
		s1 += x[1] * y[1]
		s2 += x[2] * y[2]
		s3 += x[3] * y[3]
		s4 += x[4] * y[4]
		s5 += x[5] * y[5]
		s6 += x[6] * y[6]
		s7 += x[7] * y[7]
		a, b = a[8:], b[8:]
	}
	for i := range a {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7)
}
