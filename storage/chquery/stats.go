package chquery

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// Group is one line of a cost breakdown.
type Group struct {
	Key              string  `json:"key"`
	Requests         uint64  `json:"requests"`
	CostUSD          float64 `json:"cost_usd"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
}

// Bucket is the volume of one time bucket and its figures, computed the
// same way as the totals of Stats (percentiles exact, TTFT over requests
// with a first chunk).
type Bucket struct {
	Start            time.Time   `json:"start"`
	Requests         uint64      `json:"requests"`
	Errors           uint64      `json:"errors"`
	CostUSD          float64     `json:"cost_usd"`
	PromptTokens     int64       `json:"prompt_tokens"`
	CompletionTokens int64       `json:"completion_tokens"`
	CacheHits        uint64      `json:"cache_hits"`
	Latency          Percentiles `json:"latency_ms"`
	TTFT             Percentiles `json:"ttft_ms"`
}

// Percentiles in milliseconds. Exact (quantileExact: the value at rank
// floor(level × n) of the sorted values).
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Stats are the aggregates of GET /v1/stats.
type Stats struct {
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	BucketSeconds int64     `json:"bucket_seconds"`
	Requests      uint64    `json:"requests"`
	CostUSD       float64   `json:"cost_usd"`
	Errors        uint64    `json:"errors"` // status >= 400 or < 0 (no response)
	ErrorRate     float64   `json:"error_rate"`
	CacheHits     uint64    `json:"cache_hits"`
	CacheHitRate  float64   `json:"cache_hit_rate"`
	// CostSavedUSD is what the cache hits would have cost: their (original)
	// token counts priced with the current price table, in Go, per
	// (provider, model, response model) as the processor prices a call.
	CostSavedUSD float64 `json:"cost_saved_usd"`
	// The savings split by kind of hit: an exact hit (the same request
	// key) and a semantic hit (a paraphrase close enough, cache_similarity
	// > 0); they add up to CostSavedUSD.
	ExactCostSavedUSD    float64     `json:"exact_cost_saved_usd"`
	SemanticCostSavedUSD float64     `json:"semantic_cost_saved_usd"`
	SemanticCacheHits    uint64      `json:"semantic_cache_hits"` // of CacheHits
	Latency              Percentiles `json:"latency_ms"`
	TTFT                 Percentiles `json:"ttft_ms"` // over requests with a first chunk (ttft_ms > 0)
	ByModel              []Group     `json:"by_model"`
	ByUser               []Group     `json:"by_user"`
	GroupProperty        string      `json:"group_property,omitempty"`
	ByProperty           []Group     `json:"by_property,omitempty"`
	Volume               []Bucket    `json:"volume"`
	PromptTokens         int64       `json:"prompt_tokens"`
	CompletionTokens     int64       `json:"completion_tokens"`
}

const errorCond = "(status >= 400 OR status < 0)"

// Stats aggregates the requests matching f (From and To set) in buckets
// of bucket seconds; groupProperty (optional) adds a cost breakdown by
// that property's value.
func (q *Requests) Stats(ctx context.Context, f Filter, bucket int64, groupProperty string) (*Stats, error) {
	where, args := f.where()
	tbl := q.table(chschema.RequestsTable)
	st := &Stats{From: f.From.UTC(), To: f.To.UTC(), BucketSeconds: bucket, GroupProperty: groupProperty,
		ByModel: []Group{}, ByUser: []Group{}, Volume: []Bucket{}}

	var lat, ttft []float64
	row := q.conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(), sum(cost_usd), countIf(%s), countIf(cache_hit = 1),
 countIf(cache_hit = 1 AND cache_similarity > 0),
 quantilesExact(0.5, 0.95, 0.99)(toFloat64(latency_ms)),
 quantilesExactIf(0.5, 0.95, 0.99)(toFloat64(ttft_ms), ttft_ms > 0),
 sum(prompt_tokens), sum(completion_tokens)
 FROM %s FINAL WHERE %s`, errorCond, tbl, where), args...)
	if err := row.Scan(&st.Requests, &st.CostUSD, &st.Errors, &st.CacheHits, &st.SemanticCacheHits, &lat, &ttft,
		&st.PromptTokens, &st.CompletionTokens); err != nil {
		return nil, fmt.Errorf("stats totals: %w", err)
	}
	if st.Requests > 0 {
		st.ErrorRate = float64(st.Errors) / float64(st.Requests)
		st.CacheHitRate = float64(st.CacheHits) / float64(st.Requests)
		st.Latency = percentiles(lat)
		st.TTFT = percentiles(ttft)
	}

	var err error
	if st.ByModel, err = q.groups(ctx, "model", where, args); err != nil {
		return nil, err
	}
	if st.ByUser, err = q.groups(ctx, "user_id", where, args); err != nil {
		return nil, err
	}
	if groupProperty != "" {
		pw := where + " AND has(properties.key, ?)"
		pargs := append(append([]any{groupProperty}, args...), groupProperty)
		if st.ByProperty, err = q.groups(ctx, "properties.value[indexOf(properties.key, ?)]", pw, pargs); err != nil {
			return nil, err
		}
	}

	if st.Volume, err = q.buckets(ctx, tbl, where, args, bucket); err != nil {
		return nil, err
	}
	if st.ExactCostSavedUSD, st.SemanticCostSavedUSD, err = q.saved(ctx, tbl, where, args); err != nil {
		return nil, err
	}
	st.CostSavedUSD = st.ExactCostSavedUSD + st.SemanticCostSavedUSD
	return st, nil
}

// buckets are the figures per time bucket of bucket seconds, in time
// order; empty buckets are left out.
func (q *Requests) buckets(ctx context.Context, tbl, where string, args []any, bucket int64) ([]Bucket, error) {
	rows, err := q.conn.Query(ctx, fmt.Sprintf(`SELECT toUInt64(intDiv(toUInt32(toDateTime(created_at)), ?) * ?) AS b,
 count(), countIf(%s), sum(cost_usd), sum(prompt_tokens), sum(completion_tokens), countIf(cache_hit = 1),
 quantilesExact(0.5, 0.95, 0.99)(toFloat64(latency_ms)),
 quantilesExactIf(0.5, 0.95, 0.99)(toFloat64(ttft_ms), ttft_ms > 0)
 FROM %s FINAL WHERE %s GROUP BY b ORDER BY b`, errorCond, tbl, where),
		append([]any{bucket, bucket}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("stats volume: %w", err)
	}
	defer rows.Close()
	out := []Bucket{}
	for rows.Next() {
		var b Bucket
		var start uint64
		var lat, ttft []float64
		if err := rows.Scan(&start, &b.Requests, &b.Errors, &b.CostUSD, &b.PromptTokens, &b.CompletionTokens,
			&b.CacheHits, &lat, &ttft); err != nil {
			return nil, fmt.Errorf("stats volume: %w", err)
		}
		b.Start = time.Unix(int64(start), 0).UTC()
		b.Latency, b.TTFT = percentiles(lat), percentiles(ttft)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats volume: %w", err)
	}
	return out, nil
}

// groups is a cost breakdown by expr; args bind expr's placeholders first.
func (q *Requests) groups(ctx context.Context, expr, where string, args []any) ([]Group, error) {
	rows, err := q.conn.Query(ctx, fmt.Sprintf(`SELECT %s AS k, count(), sum(cost_usd), sum(prompt_tokens), sum(completion_tokens)
 FROM %s FINAL WHERE %s GROUP BY k ORDER BY sum(cost_usd) DESC, k LIMIT 1000`, expr, q.table(chschema.RequestsTable), where), args...)
	if err != nil {
		return nil, fmt.Errorf("stats by %s: %w", expr, err)
	}
	defer rows.Close()
	out := []Group{}
	for rows.Next() {
		var g Group
		if err := rows.Scan(&g.Key, &g.Requests, &g.CostUSD, &g.PromptTokens, &g.CompletionTokens); err != nil {
			return nil, fmt.Errorf("stats by %s: %w", expr, err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// saved prices the cache hits' tokens, exact and semantic hits apart.
// Cost is linear in the token counts, so pricing the sums per (kind,
// provider, model, response_model) equals the sum of per-row costs (except
// for rows whose cached counts exceed their prompt counts, which
// Price.Cost clamps per call).
func (q *Requests) saved(ctx context.Context, tbl, where string, args []any) (exact, semantic float64, err error) {
	rows, err := q.conn.Query(ctx, fmt.Sprintf(`SELECT toUInt8(cache_similarity > 0) AS semantic, provider, model, response_model,
 sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cache_write_tokens), sum(reasoning_tokens)
 FROM %s FINAL WHERE %s AND cache_hit = 1 GROUP BY semantic, provider, model, response_model`, tbl, where), args...)
	if err != nil {
		return 0, 0, fmt.Errorf("stats cache savings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r record.Record
		var sem uint8
		if err := rows.Scan(&sem, &r.Provider, &r.Model, &r.ResponseModel, &r.PromptTokens, &r.CompletionTokens,
			&r.CachedTokens, &r.CacheWriteTokens, &r.ReasoningTokens); err != nil {
			return 0, 0, fmt.Errorf("stats cache savings: %w", err)
		}
		cost, _ := q.prices.CallCost(r.Provider, r.Usage(), r.ResponseModel, r.Model)
		if sem == 1 {
			semantic += cost
		} else {
			exact += cost
		}
	}
	return exact, semantic, rows.Err()
}

func percentiles(v []float64) Percentiles {
	clean := func(i int) float64 {
		if i >= len(v) || math.IsNaN(v[i]) || math.IsInf(v[i], 0) {
			return 0
		}
		return v[i]
	}
	return Percentiles{P50: clean(0), P95: clean(1), P99: clean(2)}
}
