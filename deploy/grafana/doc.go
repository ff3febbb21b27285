// Package grafana holds Tollgate's Grafana dashboards (the JSON files
// beside this one, embedded as Dashboards) and what their tests need to
// read them the way Grafana does: Load decodes a dashboard strictly, and
// Expand turns a ClickHouse panel's SQL into the statement the
// grafana-clickhouse-datasource plugin sends, so that the tests can run
// every panel against a real server. See docs/grafana.md.
package grafana
