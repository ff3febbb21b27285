package prompt

import (
	"sync"
	"time"
)

// versionCache keeps resolved versions and "latest" pointers in memory, each
// map capped at max entries. When a map is full an arbitrary entry goes
// (Go's map order is random): simpler than an LRU and, with far fewer live
// prompts than the cap, as good.
type versionCache struct {
	max int

	mu       sync.RWMutex
	versions map[versionKey]Version
	latests  map[string]latestEntry
}

type versionKey struct {
	id      string
	version int
}

// latestEntry is what the store said the latest version was, and when
// it was asked.
type latestEntry struct {
	v       Version
	missing bool // the store knew no such prompt
	fetched time.Time
}

func newVersionCache(max int) *versionCache {
	return &versionCache{max: max, versions: make(map[versionKey]Version), latests: make(map[string]latestEntry)}
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
}
