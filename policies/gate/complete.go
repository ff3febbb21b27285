package gate

import (
	"context"
	"math"

	"github.com/tollgate-dev/tollgate/provider"
)

// ResponseInfo is what Complete needs of the provider's answer.
type ResponseInfo struct {
	RequestID   string
	Status      int
	ContentType string
	// Headers are the provider's response headers (any case); the ones
	// ReplayHeader keeps are stored with the entry.
	Headers [][2]string
	// Body is the whole response body (for streams, the full SSE text).
	Body []byte
	// BodyTruncated: the processor kept only part of the body (see
	// Decision.CacheBodyLimit); such a response is not cached.
	BodyTruncated bool
	Model         string
	provider.Usage
	CostUSD   float64
	LatencyMs int64
}

// Complete runs after the response ended, off the client's path: it stores
// a 2xx response in the cache (unless Helicone-Cache-Save: false or too
// large) and charges cents buckets with the call's real cost. Store errors
// are counted and logged, never returned: the client has its answer.
func (g *Gate) Complete(ctx context.Context, d *Decision, resp ResponseInfo) {
	if d == nil || d.Answer != nil {
		return
	}
	ctx = context.WithoutCancel(ctx) // the stream may already be gone
	if d.cacheKey != "" && d.save && d.ttl > 0 && resp.Status >= 200 && resp.Status <= 299 {
		g.fill(ctx, d, resp)
	}
	if cents := resp.CostUSD * 100; cents > 0 && !math.IsInf(cents, 0) {
		for _, b := range d.cents {
			cctx, cancel := context.WithTimeout(ctx, g.completeTimeout)
			if err := g.store.Charge(cctx, b, cents); err != nil {
				g.m.errCharge.Inc()
				g.storeFailed("charge", err)
			}
			cancel()
		}
	}
}

func (g *Gate) fill(ctx context.Context, d *Decision, resp ResponseInfo) {
	entry, ok := g.entry(d, resp)
	if !ok {
		g.m.fillTooLarge.Inc()
		return
	}
	ctx, cancel := context.WithTimeout(ctx, g.completeTimeout)
	defer cancel()
	var index []string // the erasure index, for a store that keeps one
	if _, ok := g.store.(IndexedStore); ok {
		index = d.ErasureIndex(resp.RequestID)
	}
	slot, err := g.storeFill(ctx, d, entry, index)
	switch {
	case err != nil:
	case slot >= 0:
		g.m.fillStored.Inc()
		return
	case !d.refresh && d.badSlot == 0:
		// Another replica filled the last slot since Check.
		g.m.fillFull.Inc()
		return
	default:
		victim := d.badSlot - 1
		if d.badSlot == 0 {
			victim = g.intn(d.slots)
		}
		if err = g.storePut(ctx, d, victim, entry, index); err == nil {
			g.m.fillReplaced.Inc()
			return
		}
	}
	g.m.fillError.Inc()
	g.m.errFill.Inc()
	g.storeFailed("fill", err)
}

// entry encodes a finished call's answer as a cache entry (the exact
// cache's and the semantic cache's); ok is false when the body was
// truncated or the entry would be larger than the store takes.
func (g *Gate) entry(d *Decision, resp ResponseInfo) ([]byte, bool) {
	if resp.BodyTruncated || len(resp.Body) > g.maxEntry {
		return nil, false
	}
	e := cacheEntry{
		RequestID: resp.RequestID, Status: resp.Status, ContentType: resp.ContentType,
		Model: resp.Model, Usage: resp.Usage, LatencyMs: resp.LatencyMs,
		CreatedUnixMs: g.now().UnixMilli(), Headers: replayHeaders(append(d.replay, resp.Headers...)), Body: resp.Body,
	}
	entry := e.encode()
	if len(entry) > g.maxEntry {
		return nil, false
	}
	return entry, true
}
