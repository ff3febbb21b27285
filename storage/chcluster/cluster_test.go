package chcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// TestCluster starts one private cluster (2 shards × 2 replicas and
// ZooKeeper) and runs the cluster tests on it, each in a database of its
// own: starting it costs a few seconds, so it is started once.
func TestCluster(t *testing.T) {
	start := time.Now()
	c := testenv.StartClickHouseCluster(t, 2, 2)
	t.Logf("cluster of %d ClickHouse nodes and ZooKeeper up in %v", len(c.Nodes), time.Since(start).Round(time.Millisecond))

	t.Run("Schema", func(t *testing.T) { testSchema(t, c) })
	t.Run("SameAnswers", func(t *testing.T) { testSameAnswers(t, c) })
	t.Run("KillReplica", func(t *testing.T) { testKillReplica(t, c) })
	t.Run("KillShard", func(t *testing.T) { testKillShard(t, c) })
	t.Run("ErasureAndRetention", func(t *testing.T) { testErasureAndRetention(t, c) })
}

// clusterDB names a new database and returns its cluster-mode URL (on the
// first node) and the database name. It is not dropped: the cluster's
// folders go when the test ends.
func clusterDB(t *testing.T, c *testenv.ClickHouseCluster, prefix string) (string, string) {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	db := prefix + "_" + hex.EncodeToString(b[:])
	url, err := chschema.WithCluster(c.URL()+"/"+db, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	return url, db
}

// nodeConn is a plain connection to one node (no cluster settings), for
// looking at what that node holds.
func nodeConn(t *testing.T, n *testenv.ClickHouseServer) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{n.Addr()}, DialTimeout: 5 * time.Second,
		Auth: clickhouse.Auth{Username: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func migrate(t *testing.T, url string) { migrateLogged(t, url, slog.DiscardHandler) }

func migrateLogged(t *testing.T, url string, h slog.Handler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := chschema.Migrate(ctx, url, slog.New(h)); err != nil {
		t.Fatalf("migrate on the cluster: %v", err)
	}
}

// onApplied calls check when a migrator logs that it recorded step
// version: what CheckVersion shows writers from then on must be there.
type onApplied struct {
	slog.Handler
	version uint64
	check   func()
}

func (h onApplied) Enabled(context.Context, slog.Level) bool { return true }

func (h onApplied) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "clickhouse migration applied" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "version" && a.Value.Resolve().Uint64() == h.version {
			h.check()
		}
		return true
	})
	return nil
}

func (h onApplied) WithAttrs([]slog.Attr) slog.Handler { return h }

// dataTables are the tables every node must hold as a replicated local
// table and a Distributed one.
var dataTables = []string{chschema.RequestsTable, chschema.FeedbackTable, chschema.ScoresTable,
	chschema.AlertRulesTable, chschema.AlertEventsTable, chschema.ErasuresTable}

// testSchema: two migrators at once (from two nodes) create the schema on
// every node, each data table as a replicated local table and a
// Distributed one over it, and every node sees every applied step.
func testSchema(t *testing.T, c *testenv.ClickHouseCluster) {
	url, db := clusterDB(t, c, "schema")
	other := strings.Replace(url, c.Nodes[0].Addr(), c.Node(1, 1).Addr(), 1)
	var wg sync.WaitGroup
	for _, u := range []string{url, other} {
		wg.Add(1)
		go func() { defer wg.Done(); migrate(t, u) }()
	}
	wg.Wait()
	migrate(t, url) // again: nothing to do
	// The database as migration 8 found it (version 7, requests without
	// cache_similarity), with a row in it: the step adds the column to
	// requests_local and the Distributed requests must be swapped for one
	// with it before the step is recorded.
	conn := nodeConn(t, c.Nodes[0])
	ctx := context.Background()
	ins, _, err := chschema.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Close()
	batch, err := ins.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (request_id, tenant, created_at)", db, chschema.RequestsTable))
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Append(uuid.MustParse("00000000-0000-4000-8000-000000000001"), "t", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	const added = "cache_similarity" // migration 8's column
	if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s%s ON CLUSTER %s DROP COLUMN %s",
		db, chschema.RequestsTable, chschema.LocalSuffix, c.Name, added)); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes { // a Distributed table is altered node by node
		if err := nodeConn(t, n).Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s DROP COLUMN %s", db, chschema.RequestsTable, added)); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s DELETE WHERE version >= 8", db, chschema.MigrationsTable)); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		testenv.Eventually(t, time.Minute, func() error {
			var v uint32
			if err := nodeConn(t, n).QueryRow(ctx, "SELECT max(version) FROM "+db+"."+chschema.MigrationsTable).Scan(&v); err != nil || v != 7 {
				return fmt.Errorf("schema version %d (%v), want 7", v, err)
			}
			return nil
		})
	}
	// Two migrators take it to the last version at once, from two nodes:
	// both swap, neither drops the other's new table, and every node ends
	// with the new column. Each has swapped it in before it records step
	// 8 (the moment writers may insert the column).
	hasAdded := func() {
		for i, n := range c.Nodes {
			var have uint64
			if err := nodeConn(t, n).QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
				db, chschema.RequestsTable, added).Scan(&have); err != nil {
				t.Errorf("node %d: %v", i, err)
			} else if have != 1 {
				t.Errorf("node %d: the Distributed requests table did not get the local table's new column", i)
			}
		}
	}
	recorded := onApplied{version: 8, check: hasAdded}
	for _, u := range []string{url, other} {
		wg.Add(1)
		go func() { defer wg.Done(); migrateLogged(t, u, recorded) }()
	}
	wg.Wait()
	hasAdded()
	var left uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND position(name, '__') > 0", db).Scan(&left); err != nil || left != 0 {
		t.Errorf("after the swaps: %d temporary tables left (%v)", left, err)
	}
	// A migration that stopped half way: one node lost its Distributed
	// table, another has it without the new column. The next migration,
	// though the node it talks to is fine, repairs both.
	if err := nodeConn(t, c.Node(1, 1)).Exec(ctx, fmt.Sprintf("DROP TABLE %s.%s", db, chschema.RequestsTable)); err != nil {
		t.Fatal(err)
	}
	if err := nodeConn(t, c.Node(1, 0)).Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s DROP COLUMN %s", db, chschema.RequestsTable, added)); err != nil {
		t.Fatal(err)
	}
	migrate(t, url)
	hasAdded()
	var rows uint64
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s FINAL WHERE cache_similarity = 0", db, chschema.RequestsTable)).Scan(&rows); err != nil || rows != 1 {
		t.Errorf("after the swap: %d rows, %v", rows, err)
	}

	// The same database without the cluster setting is refused, not
	// altered as one server's; a single-server database is refused in
	// cluster mode.
	plain := strings.Replace(url, "?cluster="+c.Name, "", 1)
	if err := chschema.Migrate(context.Background(), plain, nil); err == nil || !strings.Contains(err.Error(), "--clickhouse-cluster") {
		t.Errorf("migrating a cluster database as one server: %v", err)
	}
	single := strings.Replace(url, db, db+"_single", 1)
	migrate(t, strings.Replace(single, "?cluster="+c.Name, "", 1)) // on node 1 alone
	if err := chschema.Migrate(context.Background(), single, nil); err == nil || !strings.Contains(err.Error(), "single-server") {
		t.Errorf("migrating a single-server database in cluster mode: %v", err)
	}
	for i, n := range c.Nodes {
		conn := nodeConn(t, n)
		for _, table := range dataTables {
			var local, dist string
			if err := conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", db, table+chschema.LocalSuffix).Scan(&local); err != nil {
				t.Fatalf("node %d: %s%s: %v", i, table, chschema.LocalSuffix, err)
			}
			if err := conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", db, table).Scan(&dist); err != nil {
				t.Fatalf("node %d: %s: %v", i, table, err)
			}
			if local != "ReplicatedReplacingMergeTree" || dist != "Distributed" {
				t.Errorf("node %d: %s is %s over %s, want Distributed over ReplicatedReplacingMergeTree", i, table, dist, local)
			}
		}
		var versions uint64
		if err := conn.QueryRow(ctx, "SELECT uniqExact(version) FROM "+db+"."+chschema.MigrationsTable).Scan(&versions); err != nil {
			t.Fatal(err)
		}
		if versions != uint64(chschema.SchemaVersion()) {
			t.Errorf("node %d sees %d applied steps, want %d", i, versions, chschema.SchemaVersion())
		}
		if _, err := chschema.CheckVersion(ctx, conn, db, c.Name); err != nil {
			t.Errorf("node %d: %v", i, err)
		}
		// A process without the cluster setting does not write there.
		if _, err := chschema.CheckVersion(ctx, conn, db, ""); err == nil || !strings.Contains(err.Error(), "--clickhouse-cluster") {
			t.Errorf("node %d, single-server check of a cluster database: %v", i, err)
		}
	}
}

// syncReplicas waits until every replica of every local table of db has
// fetched what its shard's other replica holds.
func syncReplicas(t *testing.T, c *testenv.ClickHouseCluster, db string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, n := range c.Nodes {
		conn := nodeConn(t, n)
		for _, table := range dataTables {
			if err := conn.Exec(ctx, fmt.Sprintf("SYSTEM SYNC REPLICA %s.%s%s", db, table, chschema.LocalSuffix)); err != nil {
				t.Fatalf("sync replica %s: %v", n.Addr(), err)
			}
		}
	}
}
