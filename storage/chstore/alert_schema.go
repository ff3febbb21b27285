package chstore

import "fmt"

// Alert tables (migration 4), written and read by package alerts. Both use
// plain types that exist on 18.16, in both variants: they hold a few rows
// per rule, so codecs and LowCardinality would buy nothing.
const (
	AlertRulesTable  = "alert_rules"
	AlertEventsTable = "alert_events"
)

// alertRuleColumns are the alert rules created through the API. A change
// is a new row with a higher version; a deletion is a row with deleted = 1.
// Durations are whole seconds.
var alertRuleColumns = []column{
	{name: "id", legacy: "String"},
	{name: "name", legacy: "String"},
	{name: "metric", legacy: "String"},
	{name: "threshold", legacy: "Float64"},
	{name: "window_seconds", legacy: "UInt32"},
	{name: "scope_model", legacy: "String"},
	{name: "scope_user", legacy: "String"},
	{name: "scope_property_name", legacy: "String"},
	{name: "scope_property_value", legacy: "String"},
	{name: "webhook_url", legacy: "String"},
	{name: "cooldown_seconds", legacy: "UInt32"},
	{name: "enabled", legacy: "UInt8"},
	{name: "created_at", legacy: "DateTime('UTC')"},
	{name: "version", legacy: "UInt64"},
	{name: "deleted", legacy: "UInt8"},
}

// alertEventColumns are the alerts fired: one row per notification. The
// row is written again (higher version) when its incident ends, with
// resolved_at set; zero (1970) means the incident is still open.
var alertEventColumns = []column{
	{name: "event_id", legacy: "UUID"},
	{name: "rule_id", legacy: "String"},
	{name: "rule_name", legacy: "String"},
	{name: "metric", legacy: "String"},
	{name: "value", legacy: "Float64"},
	{name: "threshold", legacy: "Float64"},
	{name: "window_seconds", legacy: "UInt32"},
	{name: "fired_at", legacy: "DateTime('UTC')"},
	{name: "delivered", legacy: "UInt8"},
	{name: "delivery_error", legacy: "String"},
	{name: "resolved_at", legacy: "DateTime('UTC')"},
	{name: "version", legacy: "UInt64"},
}

// createAlertRulesSQL: the highest version of a rule id wins. Not
// partitioned, like feedback: a rule may change years after it was made.
// Read with FINAL and filter deleted rows after the merge, not in the
// WHERE of the FINAL query (a WHERE on a non-key column may be applied
// before FINAL picks the newest row).
func createAlertRulesSQL(db string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (\n%s\n) ENGINE = ReplacingMergeTree(version)\nORDER BY id",
		db, AlertRulesTable, columnDefs(alertRuleColumns, features{}, 0))
}

// createAlertEventsSQL: one row per event (its id), the highest version
// wins. The key starts with rule_id and fired_at: the evaluator reads the
// latest event of each rule.
func createAlertEventsSQL(db string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (\n%s\n) ENGINE = ReplacingMergeTree(version)\nORDER BY (rule_id, fired_at, event_id)",
		db, AlertEventsTable, columnDefs(alertEventColumns, features{}, 0))
}
