package chschema

import (
	"context"
	"fmt"
	"slices"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Serving processes do not migrate (that needs DDL rights, which only
// `tollgate migrate` should hold); they ask CheckVersion before writing,
// and again while the answer is no.

// BehindError says that a database's schema is older than this binary
// writes, or is not there at all. It names the fix.
type BehindError struct {
	Database string
	Found    uint32 // the newest version in schema_migrations; 0 when the tables are missing
	Needed   uint32 // SchemaVersion()
	Missing  []string
	// Mode, when set, says the database was created in the other mode
	// (single server or cluster) than the process's: its tables are not
	// the ones it would write, whatever their version.
	Mode string
}

func (e *BehindError) Error() string {
	if e.Mode != "" {
		return e.Mode
	}
	if len(e.Missing) > 0 {
		return fmt.Sprintf("clickhouse database %s has no Tollgate schema (missing tables %v); this binary needs schema version %d: run `tollgate migrate` (with a user allowed DDL)",
			e.Database, e.Missing, e.Needed)
	}
	return fmt.Sprintf("clickhouse database %s is at schema version %d, this binary needs %d: run `tollgate migrate` (with a user allowed DDL)",
		e.Database, e.Found, e.Needed)
}

// CheckVersion reads the schema version of database db on conn, for a
// process in cluster mode when cluster is set (--clickhouse-cluster). The error
// is nil when it is SchemaVersion() or newer: migrations only add, so
// during a rolling upgrade the older binary keeps writing the columns it
// knows. It is a *BehindError when the version is older, the tables the
// writer needs are missing, or the database is of the other mode (Mode,
// the check migrate makes too: modeMismatch), another error when the check could not be made
// (ClickHouse down, no SELECT right). It needs SELECT only.
func CheckVersion(ctx context.Context, conn driver.Conn, db, cluster string) (found uint32, err error) {
	need := []string{MigrationsTable, RequestsTable}
	rows, err := conn.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ? AND name IN (?, ?)", db, need[0], need[1])
	if err != nil {
		return 0, fmt.Errorf("clickhouse schema check: %w", err)
	}
	var have []string
	var requestsEngine string
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			rows.Close()
			return 0, fmt.Errorf("clickhouse schema check: %w", err)
		}
		have = append(have, name)
		if name == RequestsTable {
			requestsEngine = engine
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("clickhouse schema check: %w", err)
	}
	var missing []string
	for _, t := range need {
		if !slices.Contains(have, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return 0, &BehindError{Database: db, Needed: SchemaVersion(), Missing: missing}
	}
	if msg := modeMismatch(db, requestsEngine, cluster); msg != "" {
		return 0, &BehindError{Database: db, Needed: SchemaVersion(), Mode: "clickhouse schema check: " + msg}
	}
	// max() of an empty table is 0 (a migration interrupted before its
	// first step was recorded).
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT max(version) FROM %s.%s", db, MigrationsTable)).Scan(&found); err != nil {
		return 0, fmt.Errorf("clickhouse schema check: read %s.%s: %w", db, MigrationsTable, err)
	}
	if found < SchemaVersion() {
		return found, &BehindError{Database: db, Found: found, Needed: SchemaVersion()}
	}
	return found, nil
}
