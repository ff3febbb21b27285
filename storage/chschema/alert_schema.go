package chschema

import "fmt"

// Alert tables (migration 4), written and read by package alerts. Both use
// plain types that exist on 18.16, in both variants: they hold a few rows
// per rule, so codecs and LowCardinality would buy nothing.
const (
	AlertRulesTable  = "alert_rules"
	AlertEventsTable = "alert_events"
)

// alertRuleColumns are the alert rules created through the API. A change
// is a new row with a higher version (a nanosecond timestamp); a deletion
// is a row with deleted = 1. Durations are whole seconds.
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

// alertEventColumns are the alerts fired: one row per event (event_id),
// rewritten with a higher version as its delivery and its incident go on.
// Package alerts writes an event first (the claim: delivered = 0, no
// attempt yet), then decides between replicas that claimed the same
// incident (same rule_id, rule_generation and prev_event_id: the earliest
// fired_at, then event_id, wins; the others are rewritten with lost = 1),
// then delivers and rewrites the row with the outcome.
//
//   - rule_generation: a hash of the rule's metric, threshold, window,
//     scope and webhook URL; events of another generation do not count for
//     the rule's incident and cooldown.
//   - prev_event_id: the event the claimer saw as the rule's latest ("" for
//     none): claims with the same one are claims for the same incident.
//   - delivery_attempts: delivery tries that ended (an interrupted one does
//     not count); next_attempt_at: when a later evaluation may try again
//     (zero: never: delivered, rejected or out of tries).
//   - resolved_at: when the incident ended; zero (1970) while it is open.
//
// version is a nanosecond timestamp: the newest write of an event wins.
var alertEventColumns = []column{
	{name: "event_id", legacy: "UUID"},
	{name: "rule_id", legacy: "String"},
	{name: "rule_generation", legacy: "String"},
	{name: "rule_name", legacy: "String"},
	{name: "metric", legacy: "String"},
	{name: "value", legacy: "Float64"},
	{name: "threshold", legacy: "Float64"},
	{name: "window_seconds", legacy: "UInt32"},
	{name: "fired_at", legacy: "DateTime('UTC')"},
	{name: "prev_event_id", legacy: "String"},
	{name: "lost", legacy: "UInt8"},
	{name: "delivered", legacy: "UInt8"},
	{name: "delivery_attempts", legacy: "UInt16"},
	{name: "delivery_error", legacy: "String"},
	{name: "next_attempt_at", legacy: "DateTime('UTC')"},
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
// latest events of each rule. Every column of the key is the same in all
// versions of an event, so a WHERE on them is safe under FINAL.
func createAlertEventsSQL(db string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (\n%s\n) ENGINE = ReplacingMergeTree(version)\nORDER BY (rule_id, fired_at, event_id)",
		db, AlertEventsTable, columnDefs(alertEventColumns, features{}, 0))
}
