package chschema

import (
	"context"
	"fmt"
)

// ErasuresTable is the audit log of erasures (DELETE /v1/users/{id} and
// the like, package storage/erasure): who asked, for which subject, when,
// and when it was done. The log writer also reads it (every row, ever) to
// drop a subject's records that were still on their way to ClickHouse
// when the erasure was asked for, however long they wait in a spool.
const ErasuresTable = "erasures"

// erasureColumns: one erasure per (tenant, id); each step of its progress
// is a newer row with a higher version, read with FINAL.
//
//   - kind is user, request, session or property; subject the user id,
//     request id, session id or property value; subject_key the property
//     name ("" for the other kinds).
//   - requested_by names the credential that asked (a key's hash prefix,
//     never the key).
//   - requested_at is the cutoff: records created before it are erased.
//   - status is pending, then done; step and detail say how far it got.
//   - completed_at is 1970-01-01 until done.
//
// Plain types in both variants: a few rows per erasure.
var erasureColumns = []column{
	{name: "id", legacy: "String"},
	{name: "tenant", legacy: "String"},
	{name: "kind", legacy: "String"},
	{name: "subject", legacy: "String"},
	{name: "subject_key", legacy: "String"},
	{name: "requested_by", legacy: "String"},
	{name: "requested_at", legacy: "DateTime('UTC')"},
	{name: "status", legacy: "String"},
	{name: "step", legacy: "String"},
	{name: "detail", legacy: "String"},
	{name: "completed_at", legacy: "DateTime('UTC')"},
	{name: "version", legacy: "UInt64"},
}

func createErasuresSQL(db string, f features) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (\n%s\n) ENGINE = ReplacingMergeTree(version)\nORDER BY (tenant, id)",
		db, ErasuresTable, columnDefs(erasureColumns, f, 0))
}

func migrateV9(ctx context.Context, m *migrator) error {
	return m.createTable(ctx, ErasuresTable, createErasuresSQL(m.db, m.f))
}
