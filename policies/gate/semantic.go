package gate

import (
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/semcache"
)

// What the semantic cache (policies/semcache) needs of the exact cache: the
// scope a request's answers are compared in, the entry to store, and a
// hit's answer built as the exact cache builds its own.

// SemanticScope is the semantic cache scope of a request whose exact
// lookup (d, from Check) missed: its exact cache key computed without the prompt fields
// (tenant, origin, path, credential, seed, bucket size and every other
// body parameter stay in it) plus a hash of the prompt's parts that are
// not text, so a semantic hit can only come from a call that differs in
// the prompt's wording. ok is false when the decision did
// not read the cache (off, save only, refresh, or answered already).
func (g *Gate) SemanticScope(req RequestInfo, d *Decision) (scope string, ok bool) {
	if d == nil || d.Answer != nil || d.cacheKey == "" || !d.miss || d.refresh {
		return "", false
	}
	tenant := req.Tenant
	if tenant == "" {
		tenant = policies.DefaultTenant
	}
	// The exact key's options, as Check parsed them, ignoring the prompt.
	co := cacheOptions{seed: d.seed, slots: d.slots,
		ignoreKeys: append(append([]string(nil), d.ignoreKeys...), semcache.PromptFields...)}
	// What the prompt text leaves out (images, tool calls and results)
	// changes the answer: it stays in the scope, hashed.
	if rest := semcache.PromptRest(req.Body); rest != "" {
		req.KeyExtra += "\x00prompt-rest\x00" + rest
	}
	k := cacheKey(tenant, &req, &co)
	// "…c:<hash>" becomes "…sc:<hash>": its own key space.
	i := strings.LastIndex(k, "c:")
	return k[:i] + "s" + k[i:], true
}

// SemanticEntry is the encoded cache entry of a finished call and its TTL,
// ok false when the exact cache would not store it either (not 2xx,
// truncated, too large, Helicone-Cache-Save: false).
func (g *Gate) SemanticEntry(d *Decision, resp ResponseInfo) (entry []byte, ttl time.Duration, ok bool) {
	if d.CacheBodyLimit() == 0 || resp.Status < 200 || resp.Status > 299 {
		return nil, 0, false
	}
	if entry, ok = g.entry(d, resp); !ok {
		return nil, 0, false
	}
	return entry, d.ttl, true
}

// SemanticHit is the decision for a semantic hit on entry: the exact
// cache's hit answer (streams replayed as streams) with the similarity in
// Helicone-Cache-Similarity. ok is false for an unreadable entry. The
// call's rate-limit buckets were taken by the exact lookup that missed.
func (g *Gate) SemanticHit(entry []byte, similarity float32) (*Decision, bool) {
	e, err := decodeEntry(entry)
	if err != nil {
		return nil, false
	}
	d := g.hit(&Decision{}, e, StoreAdmitResult{Slot: 0}, nil)
	d.Answer.Headers = append(d.Answer.Headers,
		[2]string{semcache.HeaderSimilarity, strconv.FormatFloat(float64(similarity), 'f', 4, 32)})
	return d, true
}
