package semcache

import (
	"sync"
	"sync/atomic"
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
//
// Locking: a lookup takes only its scope's read lock, so it never waits
// for another scope's lookups, additions or compaction. Every change
// (add, drop, remove, sweep) holds mu, the writers' lock, and takes the
// write lock of the one scope it changes only for the change itself; a
// compaction builds a scope's new arrays aside (under mu only: no other
// writer can run) and swaps them in under the scope's lock.
type index struct {
	maxPerScope int
	maxTotal    int

	scopes sync.Map // scope name → *scopeIndex; written under mu

	mu    sync.Mutex // writers: add, drops, remove, sweep
	slots int        // entries held, live or dropped, over all scopes
	live  atomic.Int64
	order []ref // live entries and dropped ones, oldest first from head
	head  int
}

// ref names one entry in order.
type ref struct{ scope, id string }

// scopeIndex is one scope: its lock and its entries.
type scopeIndex struct {
	mu sync.RWMutex
	scopeData
}

// scopeData holds one scope's entries in insertion order as a ring, so
// evicting its oldest is O(1) and the vectors sit in one flat slice. An
// entry dropped for the global bound, or removed, keeps its slot, marked
// (expires 0), until the next compaction.
type scopeData struct {
	dims    int // of every vector of the scope
	ids     []string
	expires []int64   // unix ms; 0: dropped
	vecs    []float32 // n*dims, entry i at [i*dims, (i+1)*dims)
	head    int       // oldest entry when full
	n       int
	pos     map[string]int // id → slot, live entries only
}

// Match is an earlier answer found by a lookup.
type Match struct {
	ID         string  // the entry's store id
	Similarity float32 // cosine similarity
	next       []Match // Lookup's: the next best above the threshold
}

func newIndex(maxPerScope, maxTotal int) *index {
	return &index{maxPerScope: maxPerScope, maxTotal: maxTotal}
}

func (x *index) scope(name string) *scopeIndex {
	if s, ok := x.scopes.Load(name); ok {
		return s.(*scopeIndex)
	}
	return nil
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
	s := x.scope(scope)
	if s == nil {
		s = &scopeIndex{scopeData: scopeData{dims: len(vec), pos: make(map[string]int)}}
		x.scopes.Store(scope, s)
	}
	if s.dims != len(vec) {
		return false
	}
	if _, dup := s.pos[id]; dup { // pos is only written under x.mu
		return false
	}
	d := s.dims
	s.mu.Lock()
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
			x.live.Add(-1)
		}
		s.ids[i], s.expires[i] = id, expiresMs
		copy(s.vecs[i*d:(i+1)*d], vec)
		s.head = (s.head + 1) % s.n
	}
	s.pos[id] = i
	s.mu.Unlock()
	x.live.Add(1)
	x.order = append(x.order, ref{scope, id})
	for x.live.Load() > int64(x.maxTotal) && x.head < len(x.order) {
		x.dropOldest()
	}
	if x.slots > 2*x.maxTotal || x.head > len(x.order)/2 && x.head > 1024 {
		x.compact(0) // reclaim dropped slots and the order's consumed front
	}
	return true
}

// dropOldest drops the oldest entry over all scopes that is still live.
// x.mu is held.
func (x *index) dropOldest() {
	r := x.order[x.head]
	x.order[x.head] = ref{}
	x.head++
	x.drop(r.scope, r.id)
}

// drop marks one live entry gone. x.mu is held.
func (x *index) drop(scope, id string) {
	s := x.scope(scope)
	if s == nil {
		return
	}
	i, ok := s.pos[id]
	if !ok {
		return // already gone: its scope's ring overwrote it
	}
	s.mu.Lock()
	delete(s.pos, id)
	s.expires[i] = 0
	s.mu.Unlock()
	x.live.Add(-1)
}

// remove drops an entry whose answer is gone from the store, so that it
// stops winning lookups.
func (x *index) remove(scope, id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.drop(scope, id)
}

// nearest returns up to k live entries of scope, most similar first.
// vec must be a unit vector of the scope's length.
func (x *index) nearest(scope string, vec []float32, nowMs int64, k int) []Match {
	s := x.scope(scope)
	if s == nil || k <= 0 {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(vec) != s.dims {
		return nil
	}
	var top [maxCandidates]struct {
		sim float32
		i   int
	}
	k = min(k, maxCandidates)
	found := 0
	d := s.dims
	for i := 0; i < s.n; i++ {
		if s.expires[i] <= nowMs {
			continue
		}
		sim := dot(vec, s.vecs[i*d:(i+1)*d])
		if found == k && sim <= top[k-1].sim {
			continue
		}
		j := min(found, k-1) // insert sorted, the worst falling off
		for j > 0 && top[j-1].sim < sim {
			top[j] = top[j-1]
			j--
		}
		top[j].sim, top[j].i = sim, i
		found = min(found+1, k)
	}
	out := make([]Match, found)
	for j := range out {
		out[j] = Match{ID: s.ids[top[j].i], Similarity: top[j].sim}
	}
	return out
}

// maxCandidates bounds how many entries one lookup returns.
const maxCandidates = 4

// sweep drops expired entries; scopes left empty are forgotten.
func (x *index) sweep(nowMs int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.compact(nowMs)
}

// compact rebuilds every scope with its live entries that expire after
// nowMs, oldest first (so each ring's eviction order holds), and the
// global order without what is gone. x.mu is held, so no writer changes
// a scope while its copy is built; lookups go on, and each scope's lock
// is taken only to swap its new arrays in.
func (x *index) compact(nowMs int64) {
	x.slots = 0
	var live int64
	x.scopes.Range(func(key, v any) bool {
		s := v.(*scopeIndex)
		d, held := s.dims, len(s.pos) // sized once: no growth garbage at the peak
		next := scopeData{dims: d, pos: make(map[string]int, held),
			ids: make([]string, 0, held), expires: make([]int64, 0, held), vecs: make([]float32, 0, held*d)}
		for k := 0; k < s.n; k++ {
			i := (s.head + k) % s.n
			if at, ok := s.pos[s.ids[i]]; !ok || at != i || s.expires[i] <= nowMs {
				continue // dropped, or expired
			}
			next.pos[s.ids[i]] = next.n
			next.ids = append(next.ids, s.ids[i])
			next.expires = append(next.expires, s.expires[i])
			next.vecs = append(next.vecs, s.vecs[i*d:(i+1)*d]...)
			next.n++
		}
		s.mu.Lock()
		s.scopeData = next
		s.mu.Unlock()
		if next.n == 0 {
			x.scopes.Delete(key)
		}
		x.slots += next.n
		live += int64(next.n)
		return true
	})
	x.live.Store(live)
	kept := make([]ref, 0, live)
	for _, r := range x.order[x.head:] {
		if s := x.scope(r.scope); s != nil {
			if _, ok := s.pos[r.id]; ok {
				kept = append(kept, r)
			}
		}
	}
	x.order, x.head = kept, 0
}

// size is the number of entries indexed, over all scopes.
func (x *index) size() int { return int(x.live.Load()) }

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
