package policies

import (
	"sync"
	"time"
)

// promptCache keeps resolved versions and "latest" pointers in memory, each
// map capped at max entries. When a map is full an arbitrary entry goes
// (Go's map order is random): simpler than an LRU and, with far fewer live
// prompts than the cap, as good.
type promptCache struct {
	max int

	mu       sync.RWMutex
	versions map[promptKey]PromptVersion
	latests  map[string]promptLatestEntry
}

type promptKey struct {
	id      string
	version int
}

// promptLatestEntry is what the store said the latest version was, and when
// it was asked.
type promptLatestEntry struct {
	v       PromptVersion
	missing bool // the store knew no such prompt
	fetched time.Time
}

func newPromptCache(max int) *promptCache {
	return &promptCache{max: max, versions: make(map[promptKey]PromptVersion), latests: make(map[string]promptLatestEntry)}
}

func (c *promptCache) version(id string, version int) (PromptVersion, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.versions[promptKey{id, version}]
	return v, ok
}

func (c *promptCache) putVersion(v PromptVersion) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := promptKey{v.ID, v.Version}
	if _, ok := c.versions[k]; !ok && len(c.versions) >= c.max {
		for old := range c.versions {
			delete(c.versions, old)
			break
		}
	}
	c.versions[k] = v
}

func (c *promptCache) latest(id string) (promptLatestEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.latests[id]
	return e, ok
}

// putLatest records what the store said at e.fetched, unless the entry
// holds a later observation (a publish that finished while this read was
// on its way).
func (c *promptCache) putLatest(id string, e promptLatestEntry) {
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
