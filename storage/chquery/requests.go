package chquery

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// Requests reads the requests and feedback tables: the query API's list,
// detail and stats (api.Queries), and the alerts' metrics
// (alerts.MetricSource).
type Requests struct {
	conn   driver.Conn
	db     string
	prices *provider.PriceTable
}

// NewRequests queries database db (chschema.Connect returns both). prices
// values the cache hits' savings; nil: provider.DefaultPrices().
func NewRequests(conn driver.Conn, db string, prices *provider.PriceTable) *Requests {
	if prices == nil {
		prices = provider.DefaultPrices()
	}
	return &Requests{conn: conn, db: db, prices: prices}
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

const summaryColumns = `toString(request_id), created_at, tenant, user_id, session_id, session_path, session_name,
 request_name, properties.key, properties.value, provider, model, response_model, method, path, target_url,
 status, stream, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
 cost_usd, latency_ms, ttft_ms, cache_hit, cache_reference_id, cache_similarity, rate_limited, prompt_id, prompt_version,
 fallback_index, attempts, retry_policy, workload_namespace, workload_service_account, workload_name,
 policy_rule, policy_decision, error, model_override, warnings, toUInt32(toDateTime(created_at)) AS ts`

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
		&r.CostUSD, &r.LatencyMs, &r.TTFTMs, &s.cacheHit, &r.CacheReferenceID, &r.CacheSimilarity, &s.rateLimitd, &r.PromptID, &r.PromptVersion,
		&r.FallbackIndex, &r.Attempts, &r.RetryPolicy, &r.WorkloadNamespace, &r.WorkloadServiceAccount, &r.WorkloadName,
		&r.PolicyRule, &r.PolicyDecision, &r.Error, &r.ModelOverride, &r.Warnings, &s.ts}
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

func (q *Requests) table(name string) string { return q.db + "." + name }

// List returns up to limit requests matching f, newest first, after the
// cursor; next is nil on the last page.
func (q *Requests) List(ctx context.Context, f Filter, limit int, after *Cursor) ([]*record.Record, *Cursor, error) {
	where, args := f.where()
	if after != nil {
		where += " AND (ts < ? OR (ts = ? AND toString(request_id) < ?))"
		args = append(args, after.Second, after.Second, after.RequestID)
	}
	sql := fmt.Sprintf("SELECT %s FROM %s FINAL WHERE %s ORDER BY ts DESC, toString(request_id) DESC LIMIT %d",
		summaryColumns, q.table(chschema.RequestsTable), where, limit+1)
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

// Detail is one request with its bodies, its feedback rating, if any, and
// its scores.
type Detail struct {
	*record.Record
	Rating *bool   `json:"rating"` // feedback: true good, false bad, null none
	Scores []Score `json:"scores"` // by name; a boolean score is 1 or 0
}

// Get returns one request with bodies; nil when unknown. A non-empty
// tenant restricts the lookup to that tenant.
func (q *Requests) Get(ctx context.Context, id, tenant string) (*Detail, error) {
	where := "request_id = toUUID(?)"
	args := []any{id}
	if tenant != "" {
		where += " AND tenant = ?"
		args = append(args, tenant)
	}
	sql := fmt.Sprintf("SELECT %s, request_body, response_body FROM %s FINAL WHERE %s LIMIT 1",
		summaryColumns, q.table(chschema.RequestsTable), where)
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

	// The feedback table is keyed by request_id alone (migration 2): should
	// two tenants log the same id (Helicone-Request-Id is the client's),
	// the other tenant's rating is never shown (at worst, once merged, none
	// is).
	fr, err := q.conn.Query(ctx, fmt.Sprintf("SELECT rating FROM %s FINAL WHERE request_id = toUUID(?) AND tenant = ? LIMIT 1",
		q.table(chschema.FeedbackTable)), id, d.Tenant)
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
	if err := fr.Err(); err != nil {
		return nil, err
	}
	fr.Close()
	row := &HeliconeRow{Record: d.Record}
	if err := q.attachScores(ctx, d.Tenant, map[string]*HeliconeRow{d.RequestID: row}); err != nil {
		return nil, err
	}
	d.Scores = row.Scores
	if d.Scores == nil {
		d.Scores = []Score{}
	}
	return d, nil
}
