package chschema

import (
	"fmt"
	"strconv"
	"strings"
)

// serverVersion is ClickHouse's SELECT version(), e.g. 18.16.1 or 24.8.4.13.
type serverVersion struct {
	major, minor int
	raw          string
}

func parseVersion(s string) (serverVersion, error) {
	v := serverVersion{raw: s}
	parts := strings.SplitN(strings.TrimSpace(s), ".", 3)
	if len(parts) < 2 {
		return v, fmt.Errorf("clickhouse version %q: want MAJOR.MINOR…", s)
	}
	var err error
	if v.major, err = strconv.Atoi(parts[0]); err != nil {
		return v, fmt.Errorf("clickhouse version %q: %w", s, err)
	}
	if v.minor, err = strconv.Atoi(parts[1]); err != nil {
		return v, fmt.Errorf("clickhouse version %q: %w", s, err)
	}
	return v, nil
}

func (v serverVersion) atLeast(major, minor int) bool {
	return v.major > major || (v.major == major && v.minor >= minor)
}

func (v serverVersion) String() string { return v.raw }

// features are the schema options a server supports. There are two
// variants, chosen once when a table is created:
//
//   - legacy (before 21.8; the Debian 18.16 the tests use): only types that
//     exist there — String, integers, Float32, Float64, DateTime, UUID, Nested.
//   - modern (21.8 LTS and later): created_at is DateTime64(3, 'UTC'),
//     low-cardinality strings are LowCardinality(String), columns carry
//     compression codecs, and the bodies can get a TTL.
//
// Column names and the shape of queries are the same in both. DateTime64,
// LowCardinality, codecs and column TTL all exist well before 21.8; the
// threshold is the first LTS where all of them (and DateTime64 as a
// ReplacingMergeTree version column) are mature, so intermediate releases
// get the plain, proven variant.
type features struct {
	modern bool
}

func featuresFor(v serverVersion) features {
	return features{modern: v.atLeast(21, 8)}
}

func (f features) variant() string {
	if f.modern {
		return "modern"
	}
	return "legacy"
}

// column is one column of a table in both variants.
type column struct {
	name   string
	legacy string // type on old servers
	modern string // type on new servers; "" = same as legacy
	codec  string // modern only, e.g. "CODEC(ZSTD(3))"
	body   bool   // gets the body TTL when one is configured (modern only)
}

func (c column) typ(f features) string {
	if f.modern && c.modern != "" {
		return c.modern
	}
	return c.legacy
}

// requestColumns is the requests table: DESIGN §5's columns (a public
// contract; users write SQL against these names) plus method, target_url,
// cache_write_tokens and the retry, workload and policy columns. Counters
// are signed Int64 so that SQL such as prompt_tokens - cached_tokens never
// wraps around.
var requestColumns = []column{
	{name: "request_id", legacy: "UUID"},
	{name: "created_at", legacy: "DateTime('UTC')", modern: "DateTime64(3, 'UTC')", codec: "CODEC(Delta, ZSTD(1))"},
	{name: "tenant", legacy: "String", modern: "LowCardinality(String)"},
	{name: "user_id", legacy: "String", codec: "CODEC(ZSTD(1))"},
	{name: "session_id", legacy: "String", codec: "CODEC(ZSTD(1))"},
	{name: "session_path", legacy: "String", codec: "CODEC(ZSTD(1))"},
	{name: "session_name", legacy: "String", codec: "CODEC(ZSTD(1))"},
	{name: "request_name", legacy: "String", modern: "LowCardinality(String)"},
	{name: "properties", legacy: "Nested(key String, value String)"},
	{name: "provider", legacy: "String", modern: "LowCardinality(String)"},
	{name: "model", legacy: "String", modern: "LowCardinality(String)"},
	{name: "response_model", legacy: "String", modern: "LowCardinality(String)"},
	{name: "method", legacy: "String", modern: "LowCardinality(String)"},
	{name: "path", legacy: "String", modern: "LowCardinality(String)"},
	{name: "target_url", legacy: "String", modern: "LowCardinality(String)"},
	{name: "status", legacy: "Int32"},
	{name: "stream", legacy: "UInt8"},
	{name: "prompt_tokens", legacy: "Int64", codec: "CODEC(T64, ZSTD(1))"},
	{name: "completion_tokens", legacy: "Int64", codec: "CODEC(T64, ZSTD(1))"},
	{name: "cached_tokens", legacy: "Int64", codec: "CODEC(T64, ZSTD(1))"},
	{name: "cache_write_tokens", legacy: "Int64", codec: "CODEC(T64, ZSTD(1))"},
	{name: "reasoning_tokens", legacy: "Int64", codec: "CODEC(T64, ZSTD(1))"},
	{name: "cost_usd", legacy: "Float64", codec: "CODEC(Gorilla, ZSTD(1))"},
	{name: "latency_ms", legacy: "Int64", codec: "CODEC(T64, ZSTD(1))"},
	{name: "ttft_ms", legacy: "Int64", codec: "CODEC(T64, ZSTD(1))"},
	{name: "cache_hit", legacy: "UInt8"},
	{name: "cache_reference_id", legacy: "String", codec: "CODEC(ZSTD(1))"},
	{name: "rate_limited", legacy: "UInt8"},
	{name: "prompt_id", legacy: "String", modern: "LowCardinality(String)"},
	{name: "prompt_version", legacy: "Int32"},
	{name: "fallback_index", legacy: "Int32"},
	// Migration 3 adds these to tables created before them
	// (requestColumnsV3): keep the two the same.
	{name: "attempts", legacy: "Int32"},
	{name: "retry_policy", legacy: "String", codec: "CODEC(ZSTD(1))"},
	{name: "workload_namespace", legacy: "String", modern: "LowCardinality(String)"},
	{name: "workload_service_account", legacy: "String", modern: "LowCardinality(String)"},
	{name: "workload_name", legacy: "String", modern: "LowCardinality(String)"},
	{name: "policy_rule", legacy: "String", modern: "LowCardinality(String)"},
	{name: "policy_decision", legacy: "String", codec: "CODEC(ZSTD(1))"},
	{name: "request_body", legacy: "String", codec: "CODEC(ZSTD(3))", body: true},
	{name: "response_body", legacy: "String", codec: "CODEC(ZSTD(3))", body: true},
	{name: "error", legacy: "String", codec: "CODEC(ZSTD(1))"},
	// Migration 6 adds these to tables created before them
	// (requestColumnsV6): keep the two the same.
	{name: "model_override", legacy: "String", modern: "LowCardinality(String)"},
	{name: "warnings", legacy: "String", codec: "CODEC(ZSTD(1))"},
	{name: "proxy_key_id", legacy: "String", modern: "LowCardinality(String)"},
	// Migration 7 adds this to tables created before it (requestColumnsV7).
	{name: "usage_source", legacy: "String", modern: "LowCardinality(String)"},
	// Migration 8 adds this to tables created before it (requestColumnsV8).
	{name: "cache_similarity", legacy: "Float32"},
}

// feedbackColumns is the feedback table: one rating per request, the last
// one wins.
var feedbackColumns = []column{
	{name: "request_id", legacy: "UUID"},
	{name: "created_at", legacy: "DateTime('UTC')", modern: "DateTime64(3, 'UTC')"},
	{name: "rating", legacy: "Int8"},
	{name: "tenant", legacy: "String", modern: "LowCardinality(String)"},
}

func columnDefs(cols []column, f features, bodyTTLDays int) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.WriteString("    ")
		b.WriteString(columnDef(c, f, bodyTTLDays))
	}
	return b.String()
}

func columnDef(c column, f features, bodyTTLDays int) string {
	def := c.name + " " + c.typ(f)
	if f.modern && c.codec != "" {
		def += " " + c.codec
	}
	if f.modern && c.body && bodyTTLDays > 0 {
		def += " " + bodyTTL(bodyTTLDays)
	}
	return def
}

func bodyTTL(days int) string {
	return fmt.Sprintf("TTL toDateTime(created_at) + toIntervalDay(%d)", days)
}

// createRequestsSQL is the requests table.
//
// Deduplication: ReplacingMergeTree collapses rows with the same sorting
// key (tenant, created_at, request_id) when parts merge. A batch that is
// inserted again — a retry after a lost acknowledgement, a spool file
// replayed after a crash — carries identical rows, so it never adds a row
// to what queries see, provided they read with FINAL:
//
//	SELECT count() FROM tollgate.requests FINAL WHERE tenant = 'acme' AND created_at >= …
//
// FINAL is the documented way (it works on 18.16 and current releases, and
// with monthly partitions newer servers merge partition by partition).
// Until a background merge has run, a query without FINAL may count a
// replayed row twice; `LIMIT 1 BY request_id` or uniqExact(request_id) are
// alternatives where FINAL is too slow.
//
// ORDER BY starts with tenant then time: the API always filters by tenant
// and a time range. Monthly partitions keep old months cheap to drop.
func createRequestsSQL(db string, f features, bodyTTLDays int) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (\n%s\n) ENGINE = ReplacingMergeTree()\nPARTITION BY toYYYYMM(created_at)\nORDER BY (tenant, created_at, request_id)",
		db, RequestsTable, columnDefs(requestColumns, f, bodyTTLDays))
}

// createFeedbackSQL is the feedback table: ReplacingMergeTree by request_id
// with created_at as the version, so the newest rating of a request wins
// (ties: the last inserted). Not partitioned: a rating changed months later
// must still replace the earlier one. Read it with FINAL, or
// argMax(rating, created_at) … GROUP BY request_id.
func createFeedbackSQL(db string, f features) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (\n%s\n) ENGINE = ReplacingMergeTree(created_at)\nORDER BY request_id",
		db, FeedbackTable, columnDefs(feedbackColumns, f, 0))
}

func createMigrationsSQL(db string) string {
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s (
    version UInt32,
    name String,
    applied_at DateTime('UTC'),
    server_version String,
    variant String
) ENGINE = ReplacingMergeTree()
ORDER BY version`, db, MigrationsTable)
}

// InsertColumnNames lists the columns an INSERT into requests names, in the
// order of requestColumnsBuf.values. Nested properties are two array
// columns. Naming them is required: on 18.16 clickhouse-go prepares zero
// columns for a plain INSERT INTO t.
func InsertColumnNames() []string {
	var names []string
	for _, c := range requestColumns {
		if c.name == "properties" {
			names = append(names, "properties.key", "properties.value")
			continue
		}
		names = append(names, c.name)
	}
	return names
}

// InsertRequestsSQL is the writer's INSERT into db.requests, columns named.
func InsertRequestsSQL(db string) string {
	return fmt.Sprintf("INSERT INTO %s.%s (%s)", db, RequestsTable, strings.Join(InsertColumnNames(), ", "))
}
