package chschema

import "fmt"

// ScoresTable holds the named scores of requests (Helicone's
// POST /v1/request/{id}/score), written and read by package chquery.
const ScoresTable = "scores"

// scoreColumns: one row per (tenant, request, name); the newest wins.
// value_type is "number" or "boolean" (stored as 1 or 0), as the caller
// sent it, so a query can answer booleans as Helicone does.
var scoreColumns = []column{
	{name: "tenant", legacy: "String", modern: "LowCardinality(String)"},
	{name: "request_id", legacy: "UUID"},
	{name: "name", legacy: "String"},
	{name: "value", legacy: "Float64"},
	{name: "value_type", legacy: "String", modern: "LowCardinality(String)"},
	{name: "created_at", legacy: "DateTime('UTC')", modern: "DateTime64(3, 'UTC')"},
}

// createScoresSQL: ReplacingMergeTree with created_at as the version, like
// feedback, so scoring a name again replaces the earlier value (ties: the
// last inserted). The key starts with the tenant because every read is a
// tenant's; not partitioned, so a score given months later still replaces
// the earlier one.
func createScoresSQL(db string, f features) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (\n%s\n) ENGINE = ReplacingMergeTree(created_at)\nORDER BY (tenant, request_id, name)",
		db, ScoresTable, columnDefs(scoreColumns, f, 0))
}
