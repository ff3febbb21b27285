package chschema

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// migration is one versioned step. apply must be idempotent: it may run
// again after a crash between applying and recording, and two processes may
// run it at the same time.
type migration struct {
	version uint32
	name    string
	apply   func(ctx context.Context, m *migrator) error
}

// migrations is the schema history, oldest first. Append new steps; never
// change or renumber released ones. A column added later is a new step
// using m.addColumn (it checks system.columns first: 18.16 has no
// ADD COLUMN IF NOT EXISTS).
var migrations = []migration{
	{1, "create requests", func(ctx context.Context, m *migrator) error {
		return m.createTable(ctx, RequestsTable, createRequestsSQL(m.db, m.f, m.bodyTTLDays))
	}},
	{2, "create feedback", func(ctx context.Context, m *migrator) error {
		return m.createTable(ctx, FeedbackTable, createFeedbackSQL(m.db, m.f))
	}},
	{3, "request attempts, retry policy, workload identity and policy decision", func(ctx context.Context, m *migrator) error {
		return m.addColumns(ctx, RequestsTable, requestColumnsV3, "fallback_index")
	}},
	{4, "create alert_rules and alert_events", func(ctx context.Context, m *migrator) error {
		if err := m.createTable(ctx, AlertRulesTable, createAlertRulesSQL(m.db)); err != nil {
			return err
		}
		return m.createTable(ctx, AlertEventsTable, createAlertEventsSQL(m.db))
	}},
	{5, "create scores", func(ctx context.Context, m *migrator) error {
		return m.createTable(ctx, ScoresTable, createScoresSQL(m.db, m.f))
	}},
	{6, "request model override and Helicone header warnings", migrateV6},
	{7, "request usage source", migrateV7},
	{8, "request cache similarity", migrateV8},
	{9, "create erasures", migrateV9},
}

// requestColumnsV3 are the columns migration 3 adds, as released (they are
// also in requestColumns, so a table created since has them already and
// the step does nothing).
var requestColumnsV3 = []column{
	{name: "attempts", legacy: "Int32"},
	{name: "retry_policy", legacy: "String", codec: "CODEC(ZSTD(1))"},
	{name: "workload_namespace", legacy: "String", modern: "LowCardinality(String)"},
	{name: "workload_service_account", legacy: "String", modern: "LowCardinality(String)"},
	{name: "workload_name", legacy: "String", modern: "LowCardinality(String)"},
	{name: "policy_rule", legacy: "String", modern: "LowCardinality(String)"},
	{name: "policy_decision", legacy: "String", codec: "CODEC(ZSTD(1))"},
}

// SchemaVersion is the version Migrate brings a database to.
func SchemaVersion() uint32 { return migrations[len(migrations)-1].version }

// Migrate creates the database (from the URL path, default "tollgate") and
// the tables requests, feedback, alert_rules, alert_events and scores, and
// upgrades them. Idempotent and
// versioned (table schema_migrations): safe to run twice or from two
// processes at once. The server version decides the schema variant (see
// features) when a table is created; an existing table is never rebuilt.
func Migrate(ctx context.Context, url string, log *slog.Logger) error {
	t, err := ParseURL(url)
	if err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := clickhouse.Open(t.Options)
	if err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	defer conn.Close()
	l := log.With("clickhouse", t.Redacted, "database", t.DB)
	if t.Cluster != "" {
		l = l.With("cluster", t.Cluster)
	}
	m := &migrator{conn: conn, db: t.DB, cluster: t.Cluster, bodyTTLDays: t.BodyTTLDays, log: l}
	return m.run(ctx, migrations)
}

type migrator struct {
	conn        driver.Conn
	db          string
	cluster     string // --clickhouse-cluster; "" = one server (see cluster.go)
	bodyTTLDays int
	log         *slog.Logger

	version serverVersion
	f       features

	// Cluster mode: how system.columns of every node is read, and how
	// many nodes there are (allNodes).
	nodesFrom string
	nodes     int
}

func (m *migrator) run(ctx context.Context, steps []migration) error {
	var raw string
	if err := m.conn.QueryRow(ctx, "SELECT version()").Scan(&raw); err != nil {
		return fmt.Errorf("clickhouse migrate: SELECT version(): %w", err)
	}
	v, err := parseVersion(raw)
	if err != nil {
		return err
	}
	m.version, m.f = v, featuresFor(v)

	if err := m.execTolerant(ctx, "CREATE DATABASE IF NOT EXISTS "+m.db+m.onCluster(), func(ctx context.Context) (bool, error) {
		return m.exists(ctx, "EXISTS DATABASE "+m.db)
	}); err != nil {
		return fmt.Errorf("clickhouse migrate: create database %s: %w", m.db, err)
	}
	if err := m.checkMode(ctx); err != nil {
		return err
	}
	if err := m.createTable(ctx, MigrationsTable, createMigrationsSQL(m.db)); err != nil {
		return fmt.Errorf("clickhouse migrate: %w", err)
	}
	applied, err := m.applied(ctx)
	if err != nil {
		return err
	}
	var latest uint32
	for v := range applied {
		latest = max(latest, v)
	}
	if known := steps[len(steps)-1].version; latest > known {
		m.log.Warn("clickhouse schema is newer than this binary knows; continuing (migrations only add)",
			"schema_version", latest, "binary_version", known)
	}
	recorded := 0
	for _, s := range steps {
		if applied[s.version] {
			continue
		}
		start := time.Now()
		if err := s.apply(ctx, m); err != nil {
			return fmt.Errorf("clickhouse migrate: step %d (%s): %w", s.version, s.name, err)
		}
		// Before the step is recorded: CheckVersion lets writers through
		// once it is, and they insert its columns into the Distributed
		// tables.
		if err := m.syncDistributed(ctx); err != nil {
			return err
		}
		if err := m.record(ctx, s); err != nil {
			return fmt.Errorf("clickhouse migrate: record step %d: %w", s.version, err)
		}
		recorded++
		m.log.Info("clickhouse migration applied", "version", s.version, "name", s.name,
			"server", m.version.raw, "variant", m.f.variant(), "took", time.Since(start).Round(time.Millisecond))
	}
	if recorded > 0 {
		// Two processes migrating at once may both record a step; merge the
		// duplicates away now (readers use FINAL anyway).
		if err := m.conn.Exec(ctx, fmt.Sprintf("OPTIMIZE TABLE %s.%s FINAL", m.db, MigrationsTable)); err != nil {
			m.log.Debug("optimize schema_migrations", "err", err)
		}
	}
	if err := m.reconcileBodyTTL(ctx); err != nil {
		return err
	}
	// Again when nothing was applied: it finishes a swap an earlier
	// migration left half done on some node.
	if err := m.syncDistributed(ctx); err != nil {
		return err
	}
	if recorded == 0 {
		m.log.Debug("clickhouse schema up to date", "version", latest)
	}
	return nil
}

func (m *migrator) applied(ctx context.Context) (map[uint32]bool, error) {
	rows, err := m.conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT version FROM %s.%s FINAL", m.db, MigrationsTable))
	if err != nil {
		return nil, fmt.Errorf("clickhouse migrate: read %s: %w", MigrationsTable, err)
	}
	defer rows.Close()
	out := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out[v] = true
	}
	return out, rows.Err()
}

func (m *migrator) record(ctx context.Context, s migration) error {
	batch, err := m.conn.PrepareBatch(ctx, fmt.Sprintf(
		"INSERT INTO %s.%s (version, name, applied_at, server_version, variant)", m.db, MigrationsTable))
	if err != nil {
		return err
	}
	defer batch.Close()
	if err := batch.Append(s.version, s.name, time.Now().UTC(), m.version.raw, m.f.variant()); err != nil {
		return err
	}
	return batch.Send()
}

// createTable runs a CREATE TABLE IF NOT EXISTS. Two processes racing can
// still make the loser fail with "already exists" on old servers; that is
// success. In cluster mode it creates the replicated local table on every
// node instead (clusterCreate); its Distributed table follows at the end
// of the migration (syncDistributed).
func (m *migrator) createTable(ctx context.Context, table, ddl string) error {
	if m.cluster != "" {
		var err error
		if ddl, err = m.clusterCreate(table, ddl); err != nil {
			return err
		}
	}
	if m.f.modern {
		// A profile with flatten_nested = 0 would turn properties into one
		// Array(Tuple) column; the contract is properties.key /
		// properties.value. (18.16 has no such setting and always
		// flattens.)
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"flatten_nested": 1}))
	}
	return m.execTolerant(ctx, ddl, func(ctx context.Context) (bool, error) {
		return m.exists(ctx, fmt.Sprintf("EXISTS TABLE %s.%s", m.db, m.local(table)))
	})
}

// addColumn adds a column unless it exists (for later migrations).
func (m *migrator) addColumn(ctx context.Context, table string, c column, after string) error {
	has := func(ctx context.Context) (bool, error) {
		var n uint64
		err := m.conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
			m.db, m.local(table), c.name).Scan(&n)
		return n > 0, err
	}
	if ok, err := has(ctx); err != nil || ok {
		return err
	}
	ddl := fmt.Sprintf("ALTER TABLE %s.%s%s ADD COLUMN %s", m.db, m.local(table), m.onCluster(), columnDef(c, m.f, m.bodyTTLDays))
	if after != "" {
		ddl += " AFTER " + after
	}
	return m.execTolerant(ctx, ddl, has)
}

// addColumns adds cols in order, the first after column after, each next
// one after the previous: an upgraded table keeps the column order of a
// new one. A step interrupted half way resumes where it stopped.
func (m *migrator) addColumns(ctx context.Context, table string, cols []column, after string) error {
	for _, c := range cols {
		if err := m.addColumn(ctx, table, c, after); err != nil {
			return fmt.Errorf("add column %s: %w", c.name, err)
		}
		after = c.name
	}
	return nil
}

// execTolerant runs ddl; if it fails but done reports the goal reached (a
// concurrent migrator got there first), that is success.
func (m *migrator) execTolerant(ctx context.Context, ddl string, done func(context.Context) (bool, error)) error {
	err := m.conn.Exec(ctx, ddl)
	if err == nil {
		return nil
	}
	if ok, derr := done(ctx); derr == nil && ok {
		m.log.Debug("clickhouse DDL raced with another migrator; target already there", "err", err)
		return nil
	}
	return err
}

func (m *migrator) exists(ctx context.Context, q string) (bool, error) {
	var n uint8
	if err := m.conn.QueryRow(ctx, q).Scan(&n); err != nil {
		return false, err
	}
	return n == 1, nil
}

// reconcileBodyTTL applies body_ttl_days from the URL to an existing
// modern requests table (it is already in the CREATE for a new one).
// Without the parameter nothing is changed; remove a TTL by hand with
// ALTER TABLE … MODIFY COLUMN request_body REMOVE TTL.
func (m *migrator) reconcileBodyTTL(ctx context.Context) error {
	if m.bodyTTLDays == 0 {
		return nil
	}
	var createdAtType string
	err := m.conn.QueryRow(ctx, "SELECT type FROM system.columns WHERE database = ? AND table = ? AND name = 'created_at'",
		m.db, m.local(RequestsTable)).Scan(&createdAtType)
	if err != nil {
		return fmt.Errorf("clickhouse migrate: read requests.created_at: %w", err)
	}
	if !m.f.modern || createdAtType == "DateTime('UTC')" {
		m.log.Warn("clickhouse: body_ttl_days ignored: the requests table uses the legacy schema (server or table predates 21.8)",
			"server", m.version.raw)
		return nil
	}
	for _, c := range requestColumns {
		if !c.body {
			continue
		}
		ddl := fmt.Sprintf("ALTER TABLE %s.%s%s MODIFY COLUMN %s", m.db, m.local(RequestsTable), m.onCluster(), columnDef(c, m.f, m.bodyTTLDays))
		if err := m.conn.Exec(ctx, ddl); err != nil {
			return fmt.Errorf("clickhouse migrate: set TTL on %s: %w", c.name, err)
		}
	}
	return nil
}
