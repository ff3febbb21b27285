package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

// Querier runs the read API against ClickHouse. Every query reads with
// FINAL (ReplacingMergeTree: a replayed batch is never counted twice) and
// passes values as bound parameters (clickhouse-go's client-side `?`
// binding, which works with 18.16 and current servers). Times are bound as
// Unix seconds and compared through toDateTime, so the same SQL works on
// the legacy DateTime and the modern DateTime64 schema.
type Querier struct {
	conn   driver.Conn
	db     string
	prices *provider.PriceTable
}

// NewQuerier queries database db (chstore.Connect returns both). prices
// values the cache hits' savings; nil: provider.DefaultPrices().
func NewQuerier(conn driver.Conn, db string, prices *provider.PriceTable) *Querier {
	if prices == nil {
		prices = provider.DefaultPrices()
	}
	return &Querier{conn: conn, db: db, prices: prices}
}

// Filter selects requests; zero fields do not filter.
type Filter struct {
	Tenant, User, Session, Model, Provider string
	WorkloadNamespace, WorkloadName        string
	Properties                             []record.Property
	Status                                 *int32
	CacheHit                               *bool
	From, To                               time.Time // From inclusive, To exclusive
}

func (f *Filter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, a ...any) {
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if f.Tenant != "" {
		add("tenant = ?", f.Tenant)
	}
	if !f.From.IsZero() {
		add("created_at >= toDateTime(?)", f.From.Unix())
	}
	if !f.To.IsZero() {
		add("created_at < toDateTime(?)", f.To.Unix())
	}
	if f.User != "" {
		add("user_id = ?", f.User)
	}
	if f.Session != "" {
		add("session_id = ?", f.Session)
	}
	if f.Model != "" {
		add("model = ?", f.Model)
	}
	if f.Provider != "" {
		add("provider = ?", f.Provider)
	}
	if f.WorkloadNamespace != "" {
		add("workload_namespace = ?", f.WorkloadNamespace)
	}
	if f.WorkloadName != "" {
		add("workload_name = ?", f.WorkloadName)
	}
	for _, p := range f.Properties {
		add("has(properties.key, ?) AND properties.value[indexOf(properties.key, ?)] = ?", p.Key, p.Key, p.Value)
	}
	if f.Status != nil {
		add("status = ?", *f.Status)
	}
	if f.CacheHit != nil {
		add("cache_hit = ?", b2u(*f.CacheHit))
	}
	if len(conds) == 0 {
		return "1", nil
	}
	return strings.Join(conds, " AND "), args
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Cursor is a position in the newest-first order: the second of created_at
// and the request id of the last row returned. Rows are ordered by
// (second, request id text) descending, the same on both schema variants.
type Cursor struct {
	Second    uint32
	RequestID string
}

func (c Cursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatUint(uint64(c.Second), 10) + ":" + c.RequestID))
}

func decodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not a cursor returned by this API")
	}
	sec, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseUint(sec, 10, 32)
	if !ok || err != nil {
		return nil, errors.New("not a cursor returned by this API")
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return nil, errors.New("not a cursor returned by this API")
	}
	return &Cursor{Second: uint32(n), RequestID: u.String()}, nil
}

const summaryColumns = `toString(request_id), created_at, tenant, user_id, session_id, session_path, session_name,
 request_name, properties.key, properties.value, provider, model, response_model, method, path, target_url,
 status, stream, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
 cost_usd, latency_ms, ttft_ms, cache_hit, cache_reference_id, rate_limited, prompt_id, prompt_version,
 fallback_index, attempts, retry_policy, workload_namespace, workload_service_account, workload_name,
 policy_rule, policy_decision, error, toUInt32(toDateTime(created_at)) AS ts`

type scanned struct {
	rec                          record.Record
	keys, values                 []string
	stream, cacheHit, rateLimitd uint8
	ts                           uint32
}

func (s *scanned) dest() []any {
	r := &s.rec
	return []any{&r.RequestID, &r.CreatedAt, &r.Tenant, &r.UserID, &r.SessionID, &r.SessionPath, &r.SessionName,
		&r.RequestName, &s.keys, &s.values, &r.Provider, &r.Model, &r.ResponseModel, &r.Method, &r.Path, &r.TargetURL,
		&r.Status, &s.stream, &r.PromptTokens, &r.CompletionTokens, &r.CachedTokens, &r.CacheWriteTokens, &r.ReasoningTokens,
		&r.CostUSD, &r.LatencyMs, &r.TTFTMs, &s.cacheHit, &r.CacheReferenceID, &s.rateLimitd, &r.PromptID, &r.PromptVersion,
		&r.FallbackIndex, &r.Attempts, &r.RetryPolicy, &r.WorkloadNamespace, &r.WorkloadServiceAccount, &r.WorkloadName,
		&r.PolicyRule, &r.PolicyDecision, &r.Error, &s.ts}
}

func (s *scanned) record() *record.Record {
	r := s.rec
	r.CreatedAt = r.CreatedAt.UTC()
	r.Stream, r.CacheHit, r.RateLimited = s.stream == 1, s.cacheHit == 1, s.rateLimitd == 1
	r.Properties = make([]record.Property, 0, len(s.keys))
	for i, k := range s.keys {
		if i < len(s.values) {
			r.Properties = append(r.Properties, record.Property{Key: k, Value: s.values[i]})
		}
	}
	return &r
}

func (q *Querier) table(name string) string { return q.db + "." + name }

// List returns up to limit requests matching f, newest first, after the
// cursor; next is nil on the last page.
func (q *Querier) List(ctx context.Context, f Filter, limit int, after *Cursor) ([]*record.Record, *Cursor, error) {
	where, args := f.where()
	if after != nil {
		where += " AND (ts < ? OR (ts = ? AND toString(request_id) < ?))"
		args = append(args, after.Second, after.Second, after.RequestID)
	}
	sql := fmt.Sprintf("SELECT %s FROM %s FINAL WHERE %s ORDER BY ts DESC, toString(request_id) DESC LIMIT %d",
		summaryColumns, q.table(chstore.RequestsTable), where, limit+1)
	rows, err := q.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("query requests: %w", err)
	}
	defer rows.Close()
	var out []*record.Record
	var last Cursor
	for rows.Next() {
		var s scanned
		if err := rows.Scan(s.dest()...); err != nil {
			return nil, nil, fmt.Errorf("scan requests: %w", err)
		}
		if len(out) == limit {
			return out, &last, rows.Err()
		}
		out = append(out, s.record())
		last = Cursor{Second: s.ts, RequestID: s.rec.RequestID}
	}
	return out, nil, rows.Err()
}

// Detail is one request with its bodies and its feedback rating, if any.
type Detail struct {
	*record.Record
	Rating *bool `json:"rating"` // feedback: true good, false bad, null none
}

// Get returns one request with bodies; nil when unknown. A non-empty
// tenant restricts the lookup to that tenant.
func (q *Querier) Get(ctx context.Context, id, tenant string) (*Detail, error) {
	where := "request_id = toUUID(?)"
	args := []any{id}
	if tenant != "" {
		where += " AND tenant = ?"
		args = append(args, tenant)
	}
	sql := fmt.Sprintf("SELECT %s, request_body, response_body FROM %s FINAL WHERE %s LIMIT 1",
		summaryColumns, q.table(chstore.RequestsTable), where)
	rows, err := q.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query request: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var s scanned
	var reqBody, respBody string
	if err := rows.Scan(append(s.dest(), &reqBody, &respBody)...); err != nil {
		return nil, fmt.Errorf("scan request: %w", err)
	}
	rows.Close()
	d := &Detail{Record: s.record()}
	d.RequestBody, d.ResponseBody = reqBody, respBody

	fr, err := q.conn.Query(ctx, fmt.Sprintf("SELECT rating FROM %s FINAL WHERE request_id = toUUID(?) LIMIT 1",
		q.table(chstore.FeedbackTable)), id)
	if err != nil {
		return nil, fmt.Errorf("query feedback: %w", err)
	}
	defer fr.Close()
	if fr.Next() {
		var rating int8
		if err := fr.Scan(&rating); err != nil {
			return nil, fmt.Errorf("scan feedback: %w", err)
		}
		good := rating == 1
		d.Rating = &good
	}
	return d, fr.Err()
}

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
	CostSavedUSD     float64     `json:"cost_saved_usd"`
	Latency          Percentiles `json:"latency_ms"`
	TTFT             Percentiles `json:"ttft_ms"` // over requests with a first chunk (ttft_ms > 0)
	ByModel          []Group     `json:"by_model"`
	ByUser           []Group     `json:"by_user"`
	GroupProperty    string      `json:"group_property,omitempty"`
	ByProperty       []Group     `json:"by_property,omitempty"`
	Volume           []Bucket    `json:"volume"`
	PromptTokens     int64       `json:"prompt_tokens"`
	CompletionTokens int64       `json:"completion_tokens"`
}

const errorCond = "(status >= 400 OR status < 0)"

// Stats aggregates the requests matching f (From and To set) in buckets
// of bucket seconds; groupProperty (optional) adds a cost breakdown by
// that property's value.
func (q *Querier) Stats(ctx context.Context, f Filter, bucket int64, groupProperty string) (*Stats, error) {
	where, args := f.where()
	tbl := q.table(chstore.RequestsTable)
	st := &Stats{From: f.From.UTC(), To: f.To.UTC(), BucketSeconds: bucket, GroupProperty: groupProperty,
		ByModel: []Group{}, ByUser: []Group{}, Volume: []Bucket{}}

	var lat, ttft []float64
	row := q.conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(), sum(cost_usd), countIf(%s), countIf(cache_hit = 1),
 quantilesExact(0.5, 0.95, 0.99)(toFloat64(latency_ms)),
 quantilesExactIf(0.5, 0.95, 0.99)(toFloat64(ttft_ms), ttft_ms > 0),
 sum(prompt_tokens), sum(completion_tokens)
 FROM %s FINAL WHERE %s`, errorCond, tbl, where), args...)
	if err := row.Scan(&st.Requests, &st.CostUSD, &st.Errors, &st.CacheHits, &lat, &ttft,
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
	if st.CostSavedUSD, err = q.saved(ctx, tbl, where, args); err != nil {
		return nil, err
	}
	return st, nil
}

// buckets are the figures per time bucket of bucket seconds, in time
// order; empty buckets are left out.
func (q *Querier) buckets(ctx context.Context, tbl, where string, args []any, bucket int64) ([]Bucket, error) {
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
func (q *Querier) groups(ctx context.Context, expr, where string, args []any) ([]Group, error) {
	rows, err := q.conn.Query(ctx, fmt.Sprintf(`SELECT %s AS k, count(), sum(cost_usd), sum(prompt_tokens), sum(completion_tokens)
 FROM %s FINAL WHERE %s GROUP BY k ORDER BY sum(cost_usd) DESC, k LIMIT 1000`, expr, q.table(chstore.RequestsTable), where), args...)
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

// saved prices the cache hits' tokens. Cost is linear in the token counts,
// so pricing the sums per (provider, model, response_model) equals the sum
// of per-row costs (except for rows whose cached counts exceed their
// prompt counts, which Price.Cost clamps per call).
func (q *Querier) saved(ctx context.Context, tbl, where string, args []any) (float64, error) {
	rows, err := q.conn.Query(ctx, fmt.Sprintf(`SELECT provider, model, response_model, sum(prompt_tokens), sum(completion_tokens),
 sum(cached_tokens), sum(cache_write_tokens), sum(reasoning_tokens)
 FROM %s FINAL WHERE %s AND cache_hit = 1 GROUP BY provider, model, response_model`, tbl, where), args...)
	if err != nil {
		return 0, fmt.Errorf("stats cache savings: %w", err)
	}
	defer rows.Close()
	var total float64
	for rows.Next() {
		var r record.Record
		if err := rows.Scan(&r.Provider, &r.Model, &r.ResponseModel, &r.PromptTokens, &r.CompletionTokens,
			&r.CachedTokens, &r.CacheWriteTokens, &r.ReasoningTokens); err != nil {
			return 0, fmt.Errorf("stats cache savings: %w", err)
		}
		total += priceRecord(q.prices, r.Provider, &r)
	}
	return total, rows.Err()
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
