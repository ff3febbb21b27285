package prompt

import (
	"sync"
	"time"
)

// versionCache keeps resolved versions, "latest" pointers and "no such
// prompt" answers in memory, each map capped at max entries. When a map is
// full an arbitrary entry goes (Go's map order is random): simpler than an
// LRU and, with far fewer live prompts than the cap, as good. Unknown ids
// have a map of their own: they come from a header anyone may set, and a
// flood of them must not push out the published prompts that renders rely
// on (and fall back to when the store is down).
type versionCache struct {
	max int

	mu       sync.RWMutex
	versions map[versionKey]Version
	latests  map[string]latestEntry
	misses   map[string]time.Time // id → when the store knew no such prompt
}

type versionKey struct {
	id      string
	version int
}

// latestEntry is what the store said the latest version was, and when
// it was asked.
type latestEntry struct {
	v       Version
	fetched time.Time
}

func newVersionCache(max int) *versionCache {
	return &versionCache{max: max, versions: make(map[versionKey]Version),
		latests: make(map[string]latestEntry), misses: make(map[string]time.Time)}
}

func (c *versionCache) version(id string, version int) (Version, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.versions[versionKey{id, version}]
	return v, ok
}

func (c *versionCache) putVersion(v Version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := versionKey{v.ID, v.Version}
	if _, ok := c.versions[k]; !ok && len(c.versions) >= c.max {
		for old := range c.versions {
			delete(c.versions, old)
			break
		}
	}
	c.versions[k] = v
}

func (c *versionCache) latest(id string) (latestEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.latests[id]
	return e, ok
}

// putLatest records what the store said at e.fetched, unless the entry
// holds a later observation (a publish that finished while this read was
// on its way).
func (c *versionCache) putLatest(id string, e latestEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.latests[id]
	if ok && old.fetched.After(e.fetched) {
		return
	}
	if !ok && len(c.latests) >= c.max {
		for k := range c.latests {
			delete(c.latests, k)
			break
		}
	}
	c.latests[id] = e
	delete(c.misses, id)
}

// missing says when the store last knew no prompt id, if remembered.
func (c *versionCache) missing(id string) (time.Time, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	at, ok := c.misses[id]
	return at, ok
}

func (c *versionCache) putMissing(id string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.misses[id]; !ok && len(c.misses) >= c.max {
		for k := range c.misses {
			delete(c.misses, k)
			break
		}
	}
	c.misses[id] = at
}

// seenTable is what Observe knows of each tenant's seen prompts: at most
// max entries, of which one tenant holds at most perTenant. Ids come from
// a header anyone may set, so a tenant naming ever new ones pushes out its
// own entries, not other tenants'; only when many tenants fill the table
// together does the one holding the most give one up. Library.seenMu
// guards it.
type seenTable struct {
	max, perTenant, n int
	tenants           map[string]map[string]seenEntry
}

func newSeenTable(size int) *seenTable {
	return &seenTable{max: size, perTenant: max(1, size/8), tenants: make(map[string]map[string]seenEntry)}
}

func (t *seenTable) get(k seenKey) (seenEntry, bool) {
	e, ok := t.tenants[k.tenant][k.id]
	return e, ok
}

func (t *seenTable) put(k seenKey, e seenEntry) {
	if _, ok := t.tenants[k.tenant][k.id]; !ok {
		switch {
		case len(t.tenants[k.tenant]) >= t.perTenant:
			t.evict(k.tenant)
		case t.n >= t.max:
			t.evict(t.largest())
		}
		t.n++
	}
	ids := t.tenants[k.tenant]
	if ids == nil {
		ids = make(map[string]seenEntry)
		t.tenants[k.tenant] = ids
	}
	ids[k.id] = e
}

// evict drops an arbitrary entry of tenant.
func (t *seenTable) evict(tenant string) {
	ids := t.tenants[tenant]
	for id := range ids {
		delete(ids, id)
		t.n--
		break
	}
	if len(ids) == 0 {
		delete(t.tenants, tenant)
	}
}

// largest is the tenant holding the most entries (a walk over the
// tenants, each holding at least one: at most max steps, and only when
// the table is full).
func (t *seenTable) largest() string {
	most, who := 0, ""
	for tenant, ids := range t.tenants {
		if len(ids) > most {
			most, who = len(ids), tenant
		}
	}
	return who
}
