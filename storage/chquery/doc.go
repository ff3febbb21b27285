// Package chquery is Tollgate's SQL for reading ClickHouse, and for the
// alert rules and events kept there: the query API's list, detail and
// stats (Requests, for package api), Helicone's request query and the
// scores (helicone.go, scores.go, also for package api), the alerts'
// metrics (Requests, for package alerts) and the alert store (Alerts). The tables are chschema's
// (its migrations create them; chstore writes the request log), so a new
// column touches chschema, chstore and chquery only; api and alerts know these
// types through the small interfaces they define (api.Queries,
// alerts.MetricSource, alerts.Store).
//
// Every read uses FINAL (ReplacingMergeTree: a replayed batch is never
// counted twice, the newest version of a rule or event wins) and passes
// values as bound parameters (clickhouse-go's client-side `?` binding,
// which works with 18.16 and current servers). Times are bound as Unix
// seconds and compared through toDateTime, so the same SQL works on the
// legacy DateTime and the modern DateTime64 schema.
package chquery
