package chschema

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Cluster mode (--clickhouse-cluster NAME, or ?cluster=NAME in the URL).
//
// Every data table T is two tables on every node of the cluster:
//
//   - T_local: ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/DB/T_local',
//     '{replica}', …) with T's columns, key and partitioning; one replica set
//     per shard, the macros {shard} and {replica} from the server's config.
//   - T: Distributed(NAME, DB, T_local, cityHash64(<shard key>)), the same
//     columns: the table every reader and writer names.
//
// The public names (requests, feedback, …) are the Distributed tables
// because they are the contract: users' SQL, dashboards and every query of
// Tollgate's own read the whole cluster through them unchanged. The shard
// key is the row's identity (the request id, the rule or event id), so a
// replayed duplicate of a row lands on the shard that holds the original,
// where ReplacingMergeTree and FINAL (which collapse within one shard)
// still merge it away.
//
// schema_migrations is one replicated table over the whole cluster (its
// ZooKeeper path has no {shard}): every node sees every recorded step, so
// migrators connected to different nodes agree on what is applied.

// shardKeys is the sharding expression of each data table's Distributed
// table. A table created in cluster mode must be listed: there is no safe
// default (a random key would scatter a row's replays over the shards and
// FINAL would no longer collapse them).
var shardKeys = map[string]string{
	RequestsTable:    "cityHash64(toString(request_id))",
	FeedbackTable:    "cityHash64(toString(request_id))",
	ScoresTable:      "cityHash64(toString(request_id))",
	AlertRulesTable:  "cityHash64(id)",
	AlertEventsTable: "cityHash64(toString(event_id))",
	ErasuresTable:    "cityHash64(id)",
}

// LocalSuffix names a data table's replicated local table in cluster mode
// (requests_local beside the Distributed requests).
const LocalSuffix = "_local"

// Local is the table that holds table's rows on each node, for statements
// a Distributed table does not take (ALTER … DELETE, DROP PARTITION,
// OPTIMIZE): T_local in cluster mode, T on one server. Qualify it with
// t.DB and add t.OnCluster().
func (t *Target) Local(table string) string {
	if t.Cluster == "" || table == MigrationsTable {
		return table
	}
	return table + LocalSuffix
}

// OnCluster is the ON CLUSTER clause a DDL statement (or a mutation)
// needs to reach every node: " ON CLUSTER name", or "" on one server.
func (t *Target) OnCluster() string {
	if t.Cluster == "" {
		return ""
	}
	return " ON CLUSTER " + t.Cluster
}

// local is the table a migration's DDL changes: T_local in cluster mode,
// T on one server.
func (m *migrator) local(table string) string {
	if m.cluster == "" || table == MigrationsTable {
		return table
	}
	return table + LocalSuffix
}

// onCluster is the ON CLUSTER clause of every DDL statement, or "".
func (m *migrator) onCluster() string {
	if m.cluster == "" {
		return ""
	}
	return " ON CLUSTER " + m.cluster
}

// clusterCreate rewrites a single-server CREATE TABLE (as the create*SQL
// functions write it: "CREATE TABLE IF NOT EXISTS db.table (…) ENGINE =
// ReplacingMergeTree(args) …") into its cluster form: the local table,
// ON CLUSTER, the replicated engine. Migrations keep one definition of
// each table that way, whatever the deployment.
func (m *migrator) clusterCreate(table, ddl string) (string, error) {
	head := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (", m.db, table)
	if !strings.HasPrefix(ddl, head) {
		return "", fmt.Errorf("cluster mode: the DDL of %s does not start with %q", table, head)
	}
	const engine = "ENGINE = ReplacingMergeTree("
	i := strings.Index(ddl, engine)
	if i < 0 {
		return "", fmt.Errorf("cluster mode: the DDL of %s has no %q", table, engine)
	}
	rest := ddl[i+len(engine):]
	j := strings.IndexByte(rest, ')')
	if j < 0 {
		return "", fmt.Errorf("cluster mode: the DDL of %s: unclosed engine arguments", table)
	}
	local := m.local(table)
	shard := "{shard}"
	if table == MigrationsTable {
		shard = "all" // one replica set over the whole cluster
	} else if _, ok := shardKeys[table]; !ok {
		return "", fmt.Errorf("cluster mode: table %s has no shard key (add it to chschema.shardKeys)", table)
	}
	args := fmt.Sprintf("'/clickhouse/tables/%s/%s/%s', '{replica}'", shard, m.db, local)
	if v := strings.TrimSpace(rest[:j]); v != "" {
		args += ", " + v
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s (", m.db, local, m.onCluster()) +
		ddl[len(head):i] + "ENGINE = ReplicatedReplacingMergeTree(" + args + rest[j:], nil
}

// checkMode refuses to migrate a database created in the other mode: a
// single-server requests table (a ReplacingMergeTree holding rows) is not
// turned into a cluster's, and a cluster's Distributed requests is not
// altered as if it were one server's. Either way the fix is the setting,
// or for a move to a cluster a new database the rows are copied into.
func (m *migrator) checkMode(ctx context.Context) error {
	var engine string
	rows, err := m.conn.Query(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", m.db, RequestsTable)
	if err != nil {
		return fmt.Errorf("clickhouse migrate: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return rows.Err() // a new database
	}
	if err := rows.Scan(&engine); err != nil {
		return fmt.Errorf("clickhouse migrate: %w", err)
	}
	if msg := modeMismatch(m.db, engine, m.cluster); msg != "" {
		return errors.New("clickhouse migrate: " + msg)
	}
	return nil
}

// modeMismatch says why database db, whose requests table has engine, is
// not one a process in cluster mode (cluster set) or single-server mode
// may use; "" when it is. Migrate refuses to change such a database, and
// serving processes to write to it (CheckVersion).
func modeMismatch(db, engine, cluster string) string {
	switch {
	case cluster != "" && engine != "Distributed":
		return fmt.Sprintf("database %s holds a single-server requests table (%s); cluster mode needs a database of its own: migrate a new one with --clickhouse-cluster and copy the rows (INSERT INTO new.requests SELECT * FROM %s.requests)", db, engine, db)
	case cluster == "" && engine == "Distributed":
		return fmt.Sprintf("database %s was created on a ClickHouse cluster (requests is a Distributed table): set --clickhouse-cluster", db)
	}
	return ""
}

// syncDistributed makes each data table's Distributed table exist with the
// columns of its local table: created when missing; when a migration added
// columns to the local table, a new one is created beside it and swapped in
// with one RENAME (atomic on each node; 18.16 refuses ALTER … ON CLUSTER
// on a non-replicated table of a replicated cluster). With
// insert_distributed_sync (see ParseURL) a Distributed table holds no rows
// of its own, so replacing it loses nothing.
func (m *migrator) syncDistributed(ctx context.Context) error {
	if m.cluster == "" {
		return nil
	}
	tables := make([]string, 0, len(shardKeys))
	for t := range shardKeys {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	for _, t := range tables {
		if err := m.syncDistributedTable(ctx, t); err != nil {
			return fmt.Errorf("clickhouse migrate: distributed table %s: %w", t, err)
		}
	}
	return nil
}

func (m *migrator) syncDistributedTable(ctx context.Context, table string) error {
	want, err := m.columns(ctx, m.local(table))
	if err != nil || len(want) == 0 {
		return err // no local table (yet): nothing to distribute
	}
	matches := func(ctx context.Context) (bool, error) {
		have, err := m.columns(ctx, table)
		return err == nil && slices.Equal(have, want), err
	}
	if ok, err := matches(ctx); err != nil || ok {
		return err
	}
	create := func(name string) string {
		return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s (\n    %s\n) ENGINE = Distributed(%s, %s, %s, %s)",
			m.db, name, m.onCluster(), strings.Join(want, ",\n    "), m.cluster, m.db, m.local(table), shardKeys[table])
	}
	exists, err := m.exists(ctx, fmt.Sprintf("EXISTS TABLE %s.%s", m.db, table))
	if err != nil {
		return err
	}
	if !exists {
		return m.execTolerant(ctx, create(table), matches)
	}
	next, old := table+"__next", table+"__old"
	steps := []string{
		fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", m.db, next, m.onCluster()),
		create(next),
		fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", m.db, old, m.onCluster()),
		fmt.Sprintf("RENAME TABLE %s.%s TO %s.%s, %s.%s TO %s.%s%s", m.db, table, m.db, old, m.db, next, m.db, table, m.onCluster()),
		fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", m.db, old, m.onCluster()),
	}
	for _, ddl := range steps {
		if err := m.execTolerant(ctx, ddl, matches); err != nil {
			return err
		}
	}
	m.log.Info("clickhouse distributed table updated to its local table's columns", "table", table)
	return nil
}

// columns lists a table's columns on the node the migrator is connected
// to, as "`name` type", in order; none when the table does not exist.
func (m *migrator) columns(ctx context.Context, table string) ([]string, error) {
	rows, err := m.conn.Query(ctx, "SELECT name, type FROM system.columns WHERE database = ? AND table = ?", m.db, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		out = append(out, "`"+name+"` "+typ)
	}
	return out, rows.Err()
}
