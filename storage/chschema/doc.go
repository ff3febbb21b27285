// Package chschema is Tollgate's ClickHouse schema: the tables, their
// migrations (Migrate, run by `tollgate migrate`, and at the start of dev
// or serve --migrate), the check serving processes make before they write
// (CheckVersion), and the --clickhouse URL (ParseURL, Connect). Package chstore
// writes the request log into these tables; package chquery reads them.
//
// # Tables
//
// Database "tollgate" unless the URL's path names another. Column names are
// a public contract (DESIGN §5): users write SQL and dashboards against them.
//
//   - requests: one row per call, ReplacingMergeTree, PARTITION BY
//     toYYYYMM(created_at), ORDER BY (tenant, created_at, request_id).
//   - feedback: request_id, created_at, rating (Int8: 1 good, 0 bad), tenant;
//     ReplacingMergeTree(created_at) ORDER BY request_id: the newest rating
//     of a request wins.
//   - alert_rules: the alert rules created through the API (package
//     alerts); ReplacingMergeTree(version) ORDER BY id, a deletion is a
//     newer row with deleted = 1.
//   - alert_events: one row per alert notification (rule, value, threshold,
//     window, fired_at, delivered, delivery_error, resolved_at);
//     ReplacingMergeTree(version) ORDER BY (rule_id, fired_at, event_id).
//   - scores: tenant, request_id, name, value (Float64), value_type
//     ("number" or "boolean"), created_at; ReplacingMergeTree(created_at)
//     ORDER BY (tenant, request_id, name): the newest score of a name wins.
//   - erasures: the audit log of erasures (package storage/erasure): who
//     asked to erase which subject, when, and when it was done;
//     ReplacingMergeTree(version) ORDER BY (tenant, id). Log writers read it
//     to drop erased subjects' records before inserting them.
//   - schema_migrations: version, name, applied_at, server_version, variant.
//
// With a cluster (?cluster=NAME in the URL, --clickhouse-cluster) every
// DDL runs ON CLUSTER and each table above (but schema_migrations) is a
// ReplicatedReplacingMergeTree T_local behind a Distributed table T of the
// same name and columns, sharded by the row's id: see cluster.go.
//
// Two schema variants share the column names (see features): "legacy" for
// servers before 21.8 (the Debian 18.16 of the tests: DateTime, String) and
// "modern" (DateTime64(3, 'UTC'), LowCardinality(String), codecs, optional
// TTL on bodies via ?body_ttl_days=N in the URL).
package chschema
