// RequestInfo, what the Gate reads of a request, and Decision, its verdict.

package gate

import (
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
	"github.com/tollgate-dev/tollgate/provider"
)

// RequestInfo is what the Gate reads of a request.
type RequestInfo struct {
	Tenant string // "" = policies.DefaultTenant
	Method string
	// URL is the path with query as the client sent it
	// ("/v1/chat/completions?x=1").
	URL string
	// TargetOrigin is the upstream origin from Helicone-Target-URL, "" for
	// the default provider; part of the cache key.
	TargetOrigin string
	// Helicone is the request's parsed Helicone-* headers: the cache
	// switches and the rate-limit policy come from there. nil: none sent.
	Helicone *helicone.Headers
	// Header returns the first value of a request header by lowercase name,
	// "" when absent: for the headers that are not Helicone's (Cache-Control,
	// the provider credential of the cache key) and the properties a
	// rate-limit segment names (ratelimit.Caller).
	Header func(name string) string
	Body   []byte // the request body as it will be sent
	// KeyExtra is more of the request that can change the answer and is
	// not in the headers the cache reads, e.g. a fallback list (which
	// may put another model's answer, or another key's, behind this body).
	KeyExtra string
	// CacheDefaults are the egress policy's cache settings for this
	// workload: what applies when the request's own headers say nothing.
	CacheDefaults egress.Cache
	// Limits are the egress policy's rate limits and budgets for this
	// workload (egress.Decision.Limits): taken in the same round trip as
	// the header's policy, all or nothing.
	Limits []egress.Limit
	UserID string // Helicone-User-Id, else the body's user
}

func (r *RequestInfo) header(name string) string {
	if r.Header == nil {
		return ""
	}
	return r.Header(name)
}

// noHeaders stands in for a request that sent no Helicone headers.
var noHeaders helicone.Headers

// CachedCall is what a hit tells the log record.
type CachedCall struct {
	ReferenceID    string // request id of the call that filled the slot
	Slot           int
	Model          string
	provider.Usage       // the original call's tokens
	LatencyMs      int64 // of the original call
}

// Decision is the Gate's verdict on a request.
type Decision struct {
	Answer       *ratelimit.Answer // non-nil: reply with it, the provider is never called
	Hit          *CachedCall       // non-nil on a cache hit (Answer is then set too)
	RateLimited  bool              // Answer is a 429 from a rate-limit policy
	FailedClosed bool              // Answer is a 503: the store was unreachable and the Gate fails closed
	// ResponseHeaders go on the provider's response: Helicone-Cache: MISS,
	// Helicone-RateLimit-*.
	ResponseHeaders [][2]string

	// For Complete.
	cacheKey string
	slots    int
	// The key's seed and ignored fields, for SemanticScope's key.
	seed       string
	ignoreKeys []string
	ttl        time.Duration
	save       bool
	refresh    bool // Helicone-Cache-Read: false
	miss       bool // Helicone-Cache: MISS goes on the response (the cache was read, or refreshed)
	badSlot    int  // slot+1 of an unreadable entry to overwrite; 0 = none
	maxEntry   int
	cents      []ratelimit.BucketRef
	replay     [][2]string // provider response headers a hit would replay (NoteResponseHeader)
	subjects   erasureSubjects
}

// CacheBodyLimit is 0 when Complete will not store the response, else the
// largest body worth keeping for it: the processor may stop accumulating
// the response past it and pass BodyTruncated.
func (d *Decision) CacheBodyLimit() int {
	if d == nil || d.Answer != nil || d.cacheKey == "" || !d.save || d.ttl <= 0 {
		return 0
	}
	return d.maxEntry
}

// NoteResponseHeader offers one of the provider's response headers (as
// they arrive, before the body) to the cache entry Complete may store; it
// keeps the ones ReplayHeader names, and only when the response may be
// stored at all.
func (d *Decision) NoteResponseHeader(name, value string) {
	if d.CacheBodyLimit() == 0 || !ReplayHeader(strings.ToLower(name)) {
		return
	}
	d.replay = append(d.replay, [2]string{name, value})
}
