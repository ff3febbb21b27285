// Package gate applies the Helicone cache and rate-limit headers (DESIGN
// §4) and the egress policy's limits with one store round trip per request:
// Check reads the cache slots and takes every bucket at once (Store.Admit),
// before the provider is called; Complete stores the response and charges
// cents buckets after it. The Store is Redis (storage/redisstore) or the
// in-process stand-in (storage/memstore); both pass gate/storetest.
package gate

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/cachecontrol"
	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
	"github.com/tollgate-dev/tollgate/provider"
)

// Options configure a Gate. Zero values get the defaults noted.
type Options struct {
	// Store holds cache entries and token buckets. Required: a nil Store
	// behaves like one that is always unreachable (FailClosed applies).
	Store Store
	// FailClosed refuses calls under a rate-limit policy with a 503 when the
	// store cannot be reached. Default (false): fail open — the call goes
	// through without a limit, counted in tollgate_ratelimit_checks_total
	// {result="fail_open"}. The cache never rejects: an unreachable store is
	// a miss.
	FailClosed bool
	// MaxEntryBytes: a response whose encoded entry is larger is not cached
	// (counted as too_large). Default 2 MiB.
	MaxEntryBytes int
	// DefaultTTL applies when Cache-Control has no s-maxage / max-age.
	// Default 7 days, less up to 1% random jitter so that entries written
	// together do not expire together. Capped at 365 days.
	DefaultTTL time.Duration
	// Timeout bounds the store round trip of Check, which Envoy waits for:
	// keep it well under the ext_proc message timeout. Default 50 ms.
	Timeout time.Duration
	// CompleteTimeout bounds each store call of Complete (off the client's
	// path). Default 250 ms.
	CompleteTimeout time.Duration
	Now             func() time.Time // default time.Now
	Rand            func(n int) int  // uniform in [0, n); default math/rand/v2.IntN
	Metrics         *Metrics         // default: unregistered
	Logger          *slog.Logger     // default: discard
}

// Gate applies the Helicone cache and rate-limit headers (DESIGN §4) with
// one store round trip per request.
type Gate struct {
	store           Store
	failClosed      bool
	maxEntry        int
	defaultTTL      time.Duration
	timeout         time.Duration
	completeTimeout time.Duration
	now             func() time.Time
	rand            func(int) int
	m               *Metrics
	log             *slog.Logger
	lastErrLog      atomic.Int64 // unix ns of the last store error logged
}

// New builds a Gate.
func New(o Options) *Gate {
	g := &Gate{
		store:           o.Store,
		failClosed:      o.FailClosed,
		maxEntry:        o.MaxEntryBytes,
		defaultTTL:      o.DefaultTTL,
		timeout:         o.Timeout,
		completeTimeout: o.CompleteTimeout,
		now:             o.Now,
		rand:            o.Rand,
		m:               o.Metrics,
		log:             o.Logger,
	}
	if g.store == nil {
		g.store = noStore{}
	}
	if g.maxEntry <= 0 {
		g.maxEntry = 2 << 20
	}
	if g.defaultTTL <= 0 {
		g.defaultTTL = DefaultCacheTTL
	}
	g.defaultTTL = min(g.defaultTTL, cachecontrol.MaxTTL)
	if g.timeout <= 0 {
		g.timeout = 50 * time.Millisecond
	}
	if g.completeTimeout <= 0 {
		g.completeTimeout = 250 * time.Millisecond
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.rand == nil {
		g.rand = rand.IntN
	}
	if g.m == nil {
		g.m = NewMetrics(nil)
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	return g
}

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
	ttl      time.Duration
	save     bool
	refresh  bool // Helicone-Cache-Read: false
	miss     bool // Helicone-Cache: MISS goes on the response (the cache was read, or refreshed)
	badSlot  int  // slot+1 of an unreadable entry to overwrite; 0 = none
	maxEntry int
	cents    []ratelimit.BucketRef
	replay   [][2]string // provider response headers a hit would replay (NoteResponseHeader)
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

// Check runs once the request body is known. It returns a
// *helicone.BadHeaderError for a cache header that says nothing usable and
// never any other error: values Helicone tolerates are tolerated and
// recorded in req.Helicone.Warnings, a store failure becomes a miss, and
// for a rate-limited call the configured fail mode applies (open: no
// limit, counted; closed: a 503 Answer).
func (g *Gate) Check(ctx context.Context, req RequestInfo) (*Decision, error) {
	hh, warn := req.Helicone, (*helicone.Warnings)(nil)
	if hh == nil {
		hh = &noHeaders
	} else {
		warn = &hh.Warnings
	}
	co, err := parseCacheOptions(&hh.Cache, req.header, g.defaultTTL, req.CacheDefaults, warn)
	if err != nil {
		return nil, err
	}
	tenant := req.Tenant
	if tenant == "" {
		tenant = policies.DefaultTenant
	}
	d := &Decision{}
	policy := g.headerPolicy(hh.RateLimitPolicy, &ratelimit.Caller{Tenant: tenant, UserID: req.UserID, Header: req.Header}, d, warn)
	if !co.enabled && policy == nil && len(req.Limits) == 0 {
		return d, nil
	}

	var ad StoreAdmit
	if co.enabled {
		d.cacheKey, d.slots, d.save, d.refresh, d.maxEntry = cacheKey(tenant, &req, &co), co.slots, co.save, co.refresh, g.maxEntry
		d.miss = co.read || co.refresh
		d.ttl = co.ttl
		if co.ttlDefault && d.ttl >= time.Hour {
			d.ttl -= time.Duration(g.intn(int(d.ttl/100/time.Millisecond))) * time.Millisecond
		}
		if co.read {
			ad.CacheKey, ad.Slots, ad.Pick = d.cacheKey, co.slots, g.intn(co.slots)
		}
	}
	if policy != nil {
		b := policy.Bucket(&ratelimit.Caller{Tenant: tenant, UserID: req.UserID, Header: req.Header})
		if policy.Unit == ratelimit.UnitCents {
			d.cents = []ratelimit.BucketRef{b} // charged the real cost in Complete
		}
		ad.Buckets = []ratelimit.BucketTake{policy.Take(b)}
	}
	limited := policy != nil || len(req.Limits) > 0
	for _, l := range req.Limits {
		ad.Buckets = append(ad.Buckets, l.Take())
		if l.Policy.Unit == ratelimit.UnitCents {
			d.cents = append(d.cents, l.Bucket)
		}
	}
	if ad.CacheKey == "" && len(ad.Buckets) == 0 {
		// Save only, or a refresh, without a policy: nothing to read.
		if d.miss {
			d.ResponseHeaders = append(d.ResponseHeaders, [2]string{helicone.CacheStatus, "MISS"})
		}
		return d, nil
	}

	cacheRead := ad.CacheKey != ""
	res, err := g.admit(ctx, ad)
	if err == nil && res.Hit {
		if e, derr := decodeEntry(res.Entry); derr == nil {
			g.m.cacheHit.Inc()
			return g.hit(d, e, res, policy), nil
		}
		// Unreadable (a foreign or older format): serve as a miss. The
		// script skipped the buckets for the "hit", so take them now — a
		// second round trip, only on this rare path.
		g.m.errCorrupt.Inc()
		d.badSlot = res.Slot + 1 // Complete overwrites it
		if len(ad.Buckets) > 0 {
			ad.CacheKey = ""
			res, err = g.admit(ctx, ad)
		} else {
			res = StoreAdmitResult{Slot: -1}
		}
	}
	if err != nil {
		g.storeFailed("admit", err)
		return g.degraded(d, storeUse{cacheRead: cacheRead, limited: limited}), nil
	}
	if cacheRead {
		g.m.cacheMiss.Inc()
	}
	if policy != nil {
		o := res.Buckets[0]
		if !o.Allowed {
			g.m.limitLimited.Inc()
			d.Answer, d.RateLimited = policy.LimitedAnswer(o), true
			return d, nil
		}
		g.m.limitAllowed.Inc()
		d.ResponseHeaders = append(d.ResponseHeaders, policy.Headers(o)...)
	}
	// The policy's buckets follow the header's in ad.Buckets.
	for i, l := range req.Limits {
		if o := res.Buckets[len(res.Buckets)-len(req.Limits)+i]; !o.Allowed {
			g.m.limitLimited.Inc()
			d.Answer, d.RateLimited = l.LimitedAnswer(o), true
			return d, nil
		}
	}
	if d.miss {
		d.ResponseHeaders = append(d.ResponseHeaders, [2]string{helicone.CacheStatus, "MISS"})
	}
	return d, nil
}

// headerPolicy is the Helicone-RateLimit-Policy to apply to this call, nil
// for none. Helicone applies no limit when the policy does not parse or the
// call lacks the user or property it segments by (bucketClient.ts fails
// open; the response then carries only Helicone-RateLimit-Policy): so does
// the gate, and it says why in warn.
func (g *Gate) headerPolicy(v string, c *ratelimit.Caller, d *Decision, warn *helicone.Warnings) *ratelimit.Policy {
	if v = strings.TrimSpace(v); v == "" {
		return nil
	}
	p, err := ratelimit.ParseHeader(v)
	if err != nil {
		g.m.limitIgnored.Inc()
		warn.Add(helicone.RateLimitPolicy, strconv.Quote(clip(v))+" is ignored: "+err.Error())
		return nil
	}
	if _, ok := p.SegmentValue(c); !ok {
		g.m.limitIgnored.Inc()
		missing := "Helicone-User-Id"
		if p.Segment != ratelimit.SegmentUser {
			missing = helicone.Canonical(helicone.PropertyPrefix + p.Segment)
		}
		warn.Add(helicone.RateLimitPolicy, strconv.Quote(p.HeaderValue())+" is not applied: the call has no "+missing)
		d.ResponseHeaders = append(d.ResponseHeaders, [2]string{helicone.RateLimitPolicy, p.HeaderValue()})
		return nil
	}
	return &p
}

// admit is the one store round trip of Check, bounded by the timeout.
func (g *Gate) admit(ctx context.Context, ad StoreAdmit) (StoreAdmitResult, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	start := time.Now()
	res, err := g.store.Admit(ctx, ad)
	g.m.admitSeconds.Observe(time.Since(start).Seconds())
	if err == nil && len(res.Buckets) != len(ad.Buckets) {
		err = errors.New("store answered for " + strconv.Itoa(len(res.Buckets)) + " buckets, asked " + strconv.Itoa(len(ad.Buckets)))
	}
	return res, err
}

// hit builds the answer for a cache hit. Hits take no tokens; under a
// policy they still report the bucket as it stands.
func (g *Gate) hit(d *Decision, e *cacheEntry, res StoreAdmitResult, policy *ratelimit.Policy) *Decision {
	ct := e.ContentType
	if ct == "" {
		ct = "application/json"
	}
	h := make([][2]string, 0, 8+len(e.Headers))
	h = append(h, [2]string{"content-type", ct})
	h = append(h, e.Headers...)
	h = append(h, [][2]string{
		{helicone.CacheStatus, "HIT"},
		{helicone.CacheBucketIdx, strconv.Itoa(res.Slot)},
		{helicone.CacheLatency, strconv.FormatInt(e.LatencyMs, 10)},
	}...)
	if policy != nil {
		o := res.Buckets[0]
		o.Allowed = true
		h = append(h, policy.Headers(o)...)
	}
	return &Decision{
		Answer: &ratelimit.Answer{Status: e.Status, Headers: h, Body: e.Body},
		Hit: &CachedCall{
			ReferenceID: e.RequestID, Slot: res.Slot, Model: e.Model,
			Usage: e.Usage, LatencyMs: e.LatencyMs,
		},
	}
}

// storeUse is what a store round trip on the request path was for.
type storeUse struct {
	cacheRead bool // a cache lookup
	limited   bool // rate-limit buckets
}

// degraded is the decision when the store failed on the request path.
func (g *Gate) degraded(d *Decision, use storeUse) *Decision {
	if use.cacheRead {
		g.m.cacheError.Inc()
	}
	if use.limited {
		if g.failClosed {
			g.m.limitFailClosed.Inc()
			return &Decision{Answer: unavailableAnswer(), FailedClosed: true}
		}
		g.m.limitFailOpen.Inc()
	}
	if d.miss {
		d.ResponseHeaders = append(d.ResponseHeaders, [2]string{helicone.CacheStatus, "MISS"})
	}
	return d
}

func unavailableAnswer() *ratelimit.Answer {
	const msg = "Rate limits cannot be checked right now (the rate-limit store is unreachable) and this gateway is configured to fail closed; retry shortly."
	return &ratelimit.Answer{Status: 503, Body: helicone.TollgateErrorBody("rate_limit_unavailable", msg), Headers: [][2]string{
		{"content-type", "application/json"},
		{helicone.XHeliconeError, "rate_limit_unavailable"},
		{"retry-after", "1"},
	}}
}

// intn is the injected random source, kept in range whatever it returns.
func (g *Gate) intn(n int) int {
	if n <= 1 {
		return 0
	}
	r := g.rand(n) % n
	if r < 0 {
		r += n
	}
	return r
}

// storeFailed counts admit errors and logs at most one store error a
// second: a Redis outage must not flood the log at the request rate.
func (g *Gate) storeFailed(op string, err error) {
	if op == "admit" {
		g.m.errAdmit.Inc()
	}
	now := time.Now().UnixNano()
	last := g.lastErrLog.Load()
	if now-last < int64(time.Second) || !g.lastErrLog.CompareAndSwap(last, now) {
		return
	}
	g.log.Warn("cache / rate-limit store call failed", "op", op, "err", err, "fail_closed", g.failClosed)
}

// noStore stands in for a missing Store: always unreachable.
type noStore struct{}

var errNoStore = errors.New("no cache / rate-limit store configured")

func (noStore) Admit(context.Context, StoreAdmit) (StoreAdmitResult, error) {
	return StoreAdmitResult{}, errNoStore
}
func (noStore) Fill(context.Context, string, int, []byte, time.Duration) (int, error) {
	return -1, errNoStore
}
func (noStore) Put(context.Context, string, int, []byte, time.Duration) error { return errNoStore }
func (noStore) Charge(context.Context, ratelimit.BucketRef, float64) error    { return errNoStore }
