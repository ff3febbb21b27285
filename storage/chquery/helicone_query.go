// Running a Helicone query: its sort keys, the query and its rows, and
// attaching bodies, ratings and scores to them.

package chquery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// sortExprs are the columns the query may sort on.
var sortExprs = map[Field]string{
	FieldCreatedAt:        "created_at",
	FieldLatency:          "latency_ms",
	FieldTotalTokens:      "(prompt_tokens + completion_tokens)",
	FieldCompletionTokens: "completion_tokens",
	FieldPromptTokens:     "prompt_tokens",
	FieldUserID:           "user_id",
	FieldModel:            "model",
	FieldCacheHit:         "cache_hit",
	FieldCost:             "cost_usd",
}

// Sortable reports whether the query can sort on f.
func Sortable(f Field) bool { _, ok := sortExprs[f]; return ok }

// HeliconeQuery is a parsed POST /v1/request/query.
type HeliconeQuery struct {
	Filter *Cond
	// Sort is the field and direction (Desc); zero: created_at, newest
	// first. Ties are broken by request id, so pages do not overlap.
	Sort          Field
	Desc          bool
	Limit, Offset int
	CachedOnly    bool  // isCached: only cache hits
	Scored        *bool // isScored: only requests with (or without) a score or rating
	// BodyBudget bounds the bytes of bodies one answer holds (a thousand
	// rows of megabyte bodies would be gigabytes): past it, rows come
	// without bodies, BodiesOmitted set. Zero: no bound.
	BodyBudget int
}

// HeliconeRow is one request of a Helicone query with its scores and
// feedback.
type HeliconeRow struct {
	*record.Record
	Scores        []Score
	Rating        *bool     // feedback: nil for none
	RatedAt       time.Time // when Rating was given
	BodiesOmitted bool      // over HeliconeQuery.BodyBudget
}

// What one Helicone query may cost ClickHouse. The API runs at most
// eight at once (two a tenant), so 1 GiB each keeps the worst case at
// 8 GiB of a server that also takes the log's inserts; a filter that needs
// more (contains over months of bodies) fails rather than starve them.
const (
	heliconeQuerySeconds = 30
	heliconeQueryMemory  = 1 << 30 // bytes
)

// QueryHelicone runs q over tenant's requests. Tenant isolation is this
// function's: it is always the first condition, whatever the filter says.
func (q *Requests) QueryHelicone(ctx context.Context, tenant string, hq HeliconeQuery) ([]*HeliconeRow, error) {
	// A client writes the filter: bound what one query may cost the server.
	// The values stay plain ints: to a server too old to read settings as
	// strings, clickhouse-go sends them as varints and takes only int and
	// bool, so an int64 or a string would fail every query there. The
	// API's ClickHouse user needs readonly=2 (or 0): readonly=1 refuses
	// any setting.
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"max_execution_time": heliconeQuerySeconds,
		"max_memory_usage":   heliconeQueryMemory,
	}))
	where, args, err := HeliconeWhere(hq.Filter, q.db, tenant)
	if err != nil {
		return nil, err
	}
	if hq.Limit < 0 || hq.Offset < 0 {
		return nil, errors.New("negative limit or offset")
	}
	conds := "tenant = ? AND (" + where + ")"
	args = append([]any{tenant}, args...)
	if hq.CachedOnly {
		conds += " AND cache_hit = 1"
	}
	if hq.Scored != nil {
		// GLOBAL: see the feedback filter in helicone.go.
		in := "GLOBAL IN"
		if !*hq.Scored {
			in = "GLOBAL NOT IN"
		}
		conds += fmt.Sprintf(" AND toString(request_id) %s (SELECT toString(request_id) FROM %s WHERE tenant = ? UNION ALL SELECT toString(request_id) FROM %s WHERE tenant = ?)",
			in, q.table(chschema.ScoresTable), q.table(chschema.FeedbackTable))
		args = append(args, tenant, tenant)
	}
	sortExpr := "created_at"
	if hq.Sort != "" {
		e, ok := sortExprs[hq.Sort]
		if !ok {
			return nil, fmt.Errorf("cannot sort on %q", hq.Sort)
		}
		sortExpr = e
	}
	dir := "ASC"
	if hq.Desc || hq.Sort == "" {
		dir = "DESC"
	}
	// The rows first with their bodies' sizes, then the bodies of those
	// that fit the budget: ClickHouse never sends more body bytes than the
	// answer may hold.
	sql := fmt.Sprintf("SELECT %s, length(request_body), length(response_body) FROM %s FINAL WHERE %s ORDER BY %s %s, toString(request_id) %s LIMIT %d, %d",
		summaryColumns, q.table(chschema.RequestsTable), conds, sortExpr, dir, dir, hq.Offset, hq.Limit)
	rows, err := q.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("query requests: %w", err)
	}
	defer rows.Close()
	var out []*HeliconeRow
	byID := map[string]*HeliconeRow{}
	withBodies := map[string]*HeliconeRow{}
	var from, to time.Time
	bodyBytes := uint64(0)
	for rows.Next() {
		var s scanned
		var reqLen, respLen uint64
		if err := rows.Scan(append(s.dest(), &reqLen, &respLen)...); err != nil {
			return nil, fmt.Errorf("scan requests: %w", err)
		}
		r := s.record()
		row := &HeliconeRow{Record: r}
		if n := reqLen + respLen; hq.BodyBudget > 0 && bodyBytes+n > uint64(hq.BodyBudget) {
			row.BodiesOmitted = true
		} else {
			bodyBytes += n
			withBodies[r.RequestID] = row
			if from.IsZero() || r.CreatedAt.Before(from) {
				from = r.CreatedAt
			}
			if r.CreatedAt.After(to) {
				to = r.CreatedAt
			}
		}
		out = append(out, row)
		byID[r.RequestID] = row
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if len(out) == 0 {
		return out, nil
	}
	if err := q.attachBodies(ctx, tenant, withBodies, from, to); err != nil {
		return nil, err
	}
	if err := q.attachRatings(ctx, tenant, byID); err != nil {
		return nil, err
	}
	return out, q.attachScores(ctx, tenant, byID)
}

// attachBodies reads the bodies of rows, all created from from to to (the
// time range keeps the lookup on the table's sort key).
func (q *Requests) attachBodies(ctx context.Context, tenant string, byID map[string]*HeliconeRow, from, to time.Time) error {
	if len(byID) == 0 {
		return nil
	}
	rows, err := q.conn.Query(ctx, fmt.Sprintf(
		"SELECT toString(request_id), request_body, response_body FROM %s FINAL WHERE tenant = ? AND created_at >= toDateTime(?) AND created_at < toDateTime(?) AND has(?, toString(request_id))",
		q.table(chschema.RequestsTable)), tenant, from.Unix(), to.Unix()+1, ids(byID))
	if err != nil {
		return fmt.Errorf("query bodies: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, reqBody, respBody string
		if err := rows.Scan(&id, &reqBody, &respBody); err != nil {
			return fmt.Errorf("scan bodies: %w", err)
		}
		if row := byID[id]; row != nil {
			row.RequestBody, row.ResponseBody = reqBody, respBody
		}
	}
	return rows.Err()
}

func ids(byID map[string]*HeliconeRow) []string {
	out := make([]string, 0, len(byID))
	for id := range byID {
		out = append(out, id)
	}
	return out
}

func (q *Requests) attachRatings(ctx context.Context, tenant string, byID map[string]*HeliconeRow) error {
	rows, err := q.conn.Query(ctx, fmt.Sprintf(
		"SELECT toString(request_id), rating, toDateTime(created_at) FROM %s FINAL WHERE tenant = ? AND has(?, toString(request_id))",
		q.table(chschema.FeedbackTable)), tenant, ids(byID))
	if err != nil {
		return fmt.Errorf("query feedback: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var rating int8
		var at time.Time
		if err := rows.Scan(&id, &rating, &at); err != nil {
			return fmt.Errorf("scan feedback: %w", err)
		}
		if row := byID[id]; row != nil {
			good := rating == 1
			row.Rating, row.RatedAt = &good, at.UTC()
		}
	}
	return rows.Err()
}

func (q *Requests) attachScores(ctx context.Context, tenant string, byID map[string]*HeliconeRow) error {
	rows, err := q.conn.Query(ctx, fmt.Sprintf(
		"SELECT toString(request_id), name, value, value_type FROM %s FINAL WHERE tenant = ? AND has(?, toString(request_id)) ORDER BY name",
		q.table(chschema.ScoresTable)), tenant, ids(byID))
	if err != nil {
		return fmt.Errorf("query scores: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name, typ string
		var v float64
		if err := rows.Scan(&id, &name, &v, &typ); err != nil {
			return fmt.Errorf("scan scores: %w", err)
		}
		if row := byID[id]; row != nil {
			row.Scores = append(row.Scores, Score{Name: name, Value: v, Bool: typ == "boolean"})
		}
	}
	return rows.Err()
}
