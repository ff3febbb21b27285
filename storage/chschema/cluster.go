package chschema

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Cluster mode (--clickhouse-cluster NAME, or ?cluster=NAME in the URL).
//
// Every data table T is two tables on every node of the cluster:
//
//   - T_local: ReplicatedReplacingMergeTree('/clickhouse/tables/NAME/{shard}/DB/T_local',
//     '{replica}', …) with T's columns, key and partitioning; one replica set
//     per shard, the macros {shard} and {replica} from the server's config.
//     The cluster's name in the path keeps two clusters that share one
//     ZooKeeper (and a database name) out of each other's replica sets.
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
// ZooKeeper path has "all" for {shard}): every node sees every recorded step, so
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
	args := fmt.Sprintf("'/clickhouse/tables/%s/%s/%s/%s', '{replica}'", m.cluster, shard, m.db, local)
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
		return fmt.Sprintf("database %s holds a single-server requests table (%s); cluster mode needs a database of its own: migrate a new one with --clickhouse-cluster and copy the rows (INSERT INTO new.requests SELECT * FROM %s.requests SETTINGS insert_distributed_sync = 1)", db, engine, db)
	case cluster == "" && engine == "Distributed":
		return fmt.Sprintf("database %s was created on a ClickHouse cluster (requests is a Distributed table): set --clickhouse-cluster", db)
	}
	return ""
}

// syncDistributed makes each data table's Distributed table exist, on
// every node, with the columns of its local table: created where missing;
// when a migration added columns to the local table, a new one is created
// beside it and swapped in (swapDistributed). It runs after every step,
// before the step is recorded (see run), so a writer that CheckVersion lets
// through finds the new columns in the tables it inserts into. With
// insert_distributed_sync (see ParseURL) a Distributed table holds no rows
// of its own, so replacing it loses nothing; its queue is flushed anyway
// where the server can (flushDistributed).
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
	matches := func(ctx context.Context) (bool, error) { return m.columnsEverywhere(ctx, table, want) }
	if ok, err := matches(ctx); err != nil || ok {
		return err
	}
	create := func(name string) string {
		return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s (\n    %s\n) ENGINE = Distributed(%s, %s, %s, %s)",
			m.db, name, m.onCluster(), strings.Join(want, ",\n    "), m.cluster, m.db, m.local(table), shardKeys[table])
	}
	// Created on the nodes that lack it (a new table, or a node an earlier
	// migration did not finish on); a no-op where it exists.
	if err := m.execTolerant(ctx, create(table), matches); err != nil {
		return err
	}
	if ok, err := matches(ctx); err != nil || ok {
		return err
	}
	if err := m.swapDistributed(ctx, table, create); err != nil {
		return err
	}
	m.log.Info("clickhouse distributed table updated to its local table's columns", "table", table)
	return nil
}

// swapDistributed replaces table with a Distributed table of the local
// table's columns. The new table gets a name of this migrator's own
// (T__next_<unix time>_<random>), so two migrators swapping at once never
// drop each other's: each swaps its own in (the DDL queue runs them one
// after the other on each node) and drops what it swapped out, and the
// last one in has the right columns too. On an Atomic database (the
// default since 20.10) EXCHANGE TABLES swaps the two names atomically; an
// Ordinary one (18.16) has no EXCHANGE, and its two-table RENAME leaves
// the name missing for a moment, so an insert in that moment fails and
// waits in the writer's spool.
func (m *migrator) swapDistributed(ctx context.Context, table string, create func(string) string) error {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	suffix := fmt.Sprintf("_%d_%s", time.Now().Unix(), hex.EncodeToString(rnd[:]))
	next, old := table+swapNext+suffix, table+swapOld+suffix
	if err := m.conn.Exec(ctx, create(next)); err != nil {
		return err
	}
	atomic, err := m.atomicDatabase(ctx)
	if err != nil {
		return err
	}
	if atomic {
		// After the exchange, next names the table swapped out.
		if err := m.conn.Exec(ctx, fmt.Sprintf("EXCHANGE TABLES %s.%s AND %s.%s%s", m.db, table, m.db, next, m.onCluster())); err != nil {
			return err
		}
		old = next
	} else if err := m.conn.Exec(ctx, fmt.Sprintf("RENAME TABLE %s.%s TO %s.%s, %s.%s TO %s.%s%s",
		m.db, table, m.db, old, m.db, next, m.db, table, m.onCluster())); err != nil {
		return err
	}
	if err := m.flushDistributed(ctx, old); err != nil {
		return err
	}
	if err := m.conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", m.db, old, m.onCluster())); err != nil {
		return err
	}
	return m.dropStaleSwaps(ctx, table)
}

// The infixes of a swap's temporary tables (T__next_…, T__old_…).
const swapNext, swapOld = "__next", "__old"

// staleSwap is how old a swap's temporary table must be before a later
// migration drops it as left over by a migrator that died half way.
const staleSwap = time.Hour

// dropStaleSwaps drops the temporary tables of table's swaps that are
// older than staleSwap (their name holds their creation time): a
// migrator that died between creating and dropping one left it behind.
// A younger one may belong to a migrator still at work.
func (m *migrator) dropStaleSwaps(ctx context.Context, table string) error {
	rows, err := m.conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND (startsWith(name, ?) OR startsWith(name, ?))",
		m.db, table+swapNext+"_", table+swapOld+"_")
	if err != nil {
		return err
	}
	var stale []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		if staleSwapName(name, time.Now()) {
			stale = append(stale, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, name := range stale {
		if err := m.conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", m.db, name, m.onCluster())); err != nil {
			return err
		}
	}
	return nil
}

// staleSwapName says whether name, a swap's temporary table
// (T__next_<unix time>_<random>), was created more than staleSwap before
// now. A name without a time is never stale: it is not one of ours.
func staleSwapName(name string, now time.Time) bool {
	parts := strings.Split(name, "_")
	if len(parts) < 3 {
		return false
	}
	at, err := strconv.ParseInt(parts[len(parts)-2], 10, 64)
	return err == nil && now.Sub(time.Unix(at, 0)) > staleSwap
}

// atomicDatabase says whether the database's engine is Atomic (or
// Shared), the engines that take EXCHANGE TABLES.
func (m *migrator) atomicDatabase(ctx context.Context) (bool, error) {
	var engine string
	if err := m.conn.QueryRow(ctx, "SELECT engine FROM system.databases WHERE name = ?", m.db).Scan(&engine); err != nil {
		return false, err
	}
	return engine == "Atomic" || engine == "Shared", nil
}

// flushDistributed sends what a Distributed table still queues for its
// shards (asynchronous inserts by someone without insert_distributed_sync)
// before it is dropped, on every node. Servers without SYSTEM FLUSH
// DISTRIBUTED (18.16: a syntax error) cannot: there the queue of a dropped
// table is lost, which is why the writer inserts synchronously.
func (m *migrator) flushDistributed(ctx context.Context, table string) error {
	err := m.conn.Exec(ctx, fmt.Sprintf("SYSTEM FLUSH DISTRIBUTED %s.%s%s", m.db, table, m.onCluster()))
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == codeSyntaxError {
		m.log.Debug("clickhouse: no SYSTEM FLUSH DISTRIBUTED on this server", "server", m.version.raw)
		return nil
	}
	return err
}

// ClickHouse error codes the migrator tells apart.
const (
	codeSyntaxError          = 62
	codeUnknownTableFunction = 46
)

// columnsEverywhere says whether table exists with exactly the columns
// want on every node of the cluster, not only the one the migrator is
// connected to: a migration that stopped half way (a node down, a
// migrator killed) is then finished by the next one. Each node's
// system.columns is read through clusterAllReplicas, or, on servers
// without it (18.16), remote() over every host of system.clusters.
func (m *migrator) columnsEverywhere(ctx context.Context, table string, want []string) (bool, error) {
	from, nodes, err := m.allNodes(ctx)
	if err != nil {
		return false, err
	}
	var total, good uint64
	q := fmt.Sprintf("SELECT count(), countIf(has(?, concat('`', name, '` ', type))) FROM %s WHERE database = ? AND table = ?", from)
	if err := m.conn.QueryRow(ctx, q, want, m.db, table).Scan(&total, &good); err != nil {
		return false, fmt.Errorf("read the columns of every node: %w", err)
	}
	return total == good && good == uint64(nodes*len(want)), nil
}

// allNodes is the table function that reads system.columns on every node
// of the cluster, and the number of nodes, found once per migration.
func (m *migrator) allNodes(ctx context.Context) (string, int, error) {
	if m.nodesFrom != "" {
		return m.nodesFrom, m.nodes, nil
	}
	rows, err := m.conn.Query(ctx, "SELECT host_name, port FROM system.clusters WHERE cluster = ?", m.cluster)
	if err != nil {
		return "", 0, err
	}
	var hosts []string
	for rows.Next() {
		var host string
		var port uint16
		if err := rows.Scan(&host, &port); err != nil {
			rows.Close()
			return "", 0, err
		}
		hosts = append(hosts, net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", 0, err
	}
	if len(hosts) == 0 {
		return "", 0, fmt.Errorf("cluster %s is not in system.clusters (the server's remote_servers)", m.cluster)
	}
	from := fmt.Sprintf("clusterAllReplicas('%s', system, columns)", m.cluster)
	var n uint64
	err = m.conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM clusterAllReplicas('%s', system, one)", m.cluster)).Scan(&n)
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == codeUnknownTableFunction {
		// remote() takes shards separated by commas: each host one shard.
		// It connects as the default user, as 18.16 has no other way.
		from = fmt.Sprintf("remote('%s', system, columns)", strings.Join(hosts, ","))
	} else if err != nil {
		return "", 0, err
	}
	m.nodesFrom, m.nodes = from, len(hosts)
	return from, len(hosts), nil
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
