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
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/internal/throttle"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/cachecontrol"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
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
	errLog          throttle.PerSecond // store errors logged at most once a second
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
		d.seed, d.ignoreKeys = co.seed, co.ignoreKeys // the semantic scope's key (semantic.go)
		d.miss = co.read || co.refresh
		d.subjects = erasureSubjects{tenant: tenant, user: req.UserID, session: hh.SessionID, props: hh.Properties}
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
