package semcache

import (
	"sync"
)

// index is one replica's in-process view of the semantic entries: per
// scope, the unit vectors of earlier answers, searched by brute force.
// Redis 7.0 has no vector search, and a scope (one tenant, provider,
// model and parameter set) rarely holds more than a few thousand entries:
// a dot product over float32 slices in a tight loop scans them in well
// under a millisecond and needs no graph to keep consistent across
// replicas. Memory is bounded twice, the oldest entry going first: per
// scope by maxPerScope, and over all scopes by maxTotal (many small scopes
// must not add up without limit).
type index struct {
	maxPerScope int
	maxTotal    int

	mu     sync.RWMutex
	scopes map[string]*scopeIndex
	slots  int   // entries held, live or dropped, over all scopes
	live   int   // entries a lookup may find (not dropped; expired ones count until a sweep)
	order  []ref // live entries and dropped ones, oldest first from orderHead
	head   int
}

// ref names one entry in order.
type ref struct{ scope, id string }

// scopeIndex holds one scope's entries in insertion order as a ring, so
// evicting its oldest is O(1) and the vectors sit in one flat slice. An
// entry dropped for the global bound keeps its slot, marked (expires 0),
// until the next sweep.
type scopeIndex struct {
	dims    int // of every vector of the scope
	ids     []string
	expires []int64   // unix ms; 0: dropped
	vecs    []float32 // n*dims, entry i at [i*dims, (i+1)*dims)
	head    int       // oldest entry when full
	n       int
	pos     map[string]int // id → slot, live entries only
}

// Match is the nearest earlier answer of a lookup.
type Match struct {
	ID         string  // the entry's store id
	Similarity float32 // cosine similarity, in [-1, 1]
}

func newIndex(maxPerScope, maxTotal int) *index {
	return &index{maxPerScope: maxPerScope, maxTotal: maxTotal, scopes: make(map[string]*scopeIndex)}
}

// add indexes one entry; an id already present is ignored (a replica sees
// its own additions again in the shared log), and so is a vector of
// another length than the scope's (the embeddings model is part of the
// scope, so only a damaged record has one).
func (x *index) add(scope, id string, vec []float32, expiresMs int64) bool {
	if len(vec) == 0 {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.scopes[scope]
	if s != nil && s.dims != len(vec) {
		return false
	}
	if s == nil {
		s = &scopeIndex{dims: len(vec), pos: make(map[string]int)}
		x.scopes[scope] = s
	}
	if _, dup := s.pos[id]; dup {
		return false
	}
	d := s.dims
	var i int
	if s.n < x.maxPerScope {
		i = s.n
		s.ids = append(s.ids, id)
		s.expires = append(s.expires, expiresMs)
		s.vecs = append(s.vecs, vec...)
		s.n++
		x.slots++
	} else { // full: overwrite the scope's oldest
		i = s.head
		if at, ok := s.pos[s.ids[i]]; ok && at == i {
			delete(s.pos, s.ids[i])
			x.live--
		}
		s.ids[i], s.expires[i] = id, expiresMs
		copy(s.vecs[i*d:(i+1)*d], vec)
		s.head = (s.head + 1) % s.n
	}
	s.pos[id] = i
	x.live++
	x.order = append(x.order, ref{scope, id})
	for x.live > x.maxTotal && x.head < len(x.order) {
		x.dropOldest()
	}
	if x.slots > 2*x.maxTotal || x.head > len(x.order)/2 && x.head > 1024 {
		x.compact(0) // reclaim dropped slots and the order's consumed front
	}
	return true
}

// dropOldest drops the oldest entry over all scopes that is still live.
func (x *index) dropOldest() {
	r := x.order[x.head]
	x.order[x.head] = ref{}
	x.head++
	s := x.scopes[r.scope]
	if s == nil {
		return
	}
	i, ok := s.pos[r.id]
	if !ok {
		return // already gone: its scope's ring overwrote it
	}
	delete(s.pos, r.id)
	s.expires[i] = 0
	x.live--
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
	x.compact(nowMs)
}

// compact rebuilds every scope with its live entries that expire after
// nowMs, oldest first (so each ring's eviction order holds), and the
// global order without what is gone. x.mu is held.
func (x *index) compact(nowMs int64) {
	x.slots, x.live = 0, 0
	for name, s := range x.scopes {
		live := &scopeIndex{dims: s.dims, pos: make(map[string]int, len(s.pos))}
		d := s.dims
		for k := 0; k < s.n; k++ {
			i := (s.head + k) % s.n
			if at, ok := s.pos[s.ids[i]]; !ok || at != i || s.expires[i] <= nowMs {
				continue // dropped, or expired
			}
			live.pos[s.ids[i]] = live.n
			live.ids = append(live.ids, s.ids[i])
			live.expires = append(live.expires, s.expires[i])
			live.vecs = append(live.vecs, s.vecs[i*d:(i+1)*d]...)
			live.n++
		}
		if live.n == 0 {
			delete(x.scopes, name)
			continue
		}
		x.scopes[name] = live
		x.slots += live.n
		x.live += live.n
	}
	kept := make([]ref, 0, x.live)
	for _, r := range x.order[x.head:] {
		if s := x.scopes[r.scope]; s != nil {
			if _, ok := s.pos[r.id]; ok {
				kept = append(kept, r)
			}
		}
	}
	x.order, x.head = kept, 0
}

// size is the number of entries indexed, over all scopes.
func (x *index) size() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.live
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
