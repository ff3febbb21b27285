package chschema

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// Every table a migration creates turns into its cluster form: the local
// table ON CLUSTER with the replicated engine, its version column kept;
// schema_migrations one replica set over the whole cluster.
func TestClusterCreate(t *testing.T) {
	m := &migrator{db: "tg", cluster: "prod"}
	for _, c := range []struct{ table, ddl, engine string }{
		{RequestsTable, createRequestsSQL("tg", features{}, 0), "ReplicatedReplacingMergeTree('/clickhouse/tables/prod/{shard}/tg/requests_local', '{replica}')"},
		{FeedbackTable, createFeedbackSQL("tg", features{modern: true}), "ReplicatedReplacingMergeTree('/clickhouse/tables/prod/{shard}/tg/feedback_local', '{replica}', created_at)"},
		{ScoresTable, createScoresSQL("tg", features{}), "ReplicatedReplacingMergeTree('/clickhouse/tables/prod/{shard}/tg/scores_local', '{replica}', created_at)"},
		{AlertRulesTable, createAlertRulesSQL("tg"), "ReplicatedReplacingMergeTree('/clickhouse/tables/prod/{shard}/tg/alert_rules_local', '{replica}', version)"},
		{AlertEventsTable, createAlertEventsSQL("tg"), "ReplicatedReplacingMergeTree('/clickhouse/tables/prod/{shard}/tg/alert_events_local', '{replica}', version)"},
		{ErasuresTable, createErasuresSQL("tg", features{}), "ReplicatedReplacingMergeTree('/clickhouse/tables/prod/{shard}/tg/erasures_local', '{replica}', version)"},
		{MigrationsTable, createMigrationsSQL("tg"), "ReplicatedReplacingMergeTree('/clickhouse/tables/prod/all/tg/schema_migrations', '{replica}')"},
	} {
		got, err := m.clusterCreate(c.table, c.ddl)
		if err != nil {
			t.Fatalf("%s: %v", c.table, err)
		}
		head := "CREATE TABLE IF NOT EXISTS tg." + m.local(c.table) + " ON CLUSTER prod ("
		if !strings.HasPrefix(got, head) || !strings.Contains(got, "ENGINE = "+c.engine+"\n") {
			t.Errorf("%s: cluster DDL\n%s\nwant it to start %q and use %s", c.table, got, head, c.engine)
		}
		// The columns, key and partitioning are the single-server ones.
		_, body, _ := strings.Cut(c.ddl, "(")
		body, _, _ = strings.Cut(body, "ENGINE")
		if !strings.Contains(got, body) {
			t.Errorf("%s: the cluster DDL lost the columns", c.table)
		}
		_, tail, _ := strings.Cut(c.ddl, "ReplacingMergeTree(")
		_, tail, _ = strings.Cut(tail, ")")
		if !strings.HasSuffix(got, tail) {
			t.Errorf("%s: the cluster DDL lost the key: %q", c.table, tail)
		}
	}
	// A table with no shard key is refused, not scattered at random.
	if _, err := m.clusterCreate("audit", "CREATE TABLE IF NOT EXISTS tg.audit (\n    id String\n) ENGINE = ReplacingMergeTree()\nORDER BY id"); err == nil ||
		!strings.Contains(err.Error(), "shard key") {
		t.Errorf("a table without a shard key: %v", err)
	}
}

func TestClusterURL(t *testing.T) {
	u, err := WithCluster("clickhouse://u:secret@h:9000/tg?dial_timeout=2s", "prod")
	if err != nil {
		t.Fatal(err)
	}
	tg, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	if tg.Cluster != "prod" || tg.DB != "tg" || tg.Options.Settings["insert_distributed_sync"] != 1 {
		t.Errorf("cluster %q, db %q, settings %v", tg.Cluster, tg.DB, tg.Options.Settings)
	}
	if _, ok := tg.Options.Settings[clusterParam]; ok {
		t.Error("the cluster parameter reached the server's settings")
	}
	if tg.Local(RequestsTable) != "requests_local" || tg.Local(MigrationsTable) != MigrationsTable || tg.OnCluster() != " ON CLUSTER prod" {
		t.Errorf("Local %q, OnCluster %q", tg.Local(RequestsTable), tg.OnCluster())
	}
	one, err := ParseURL("clickhouse://h:9000/tg")
	if err != nil {
		t.Fatal(err)
	}
	if one.Cluster != "" || one.Local(RequestsTable) != RequestsTable || one.OnCluster() != "" || one.Options.Settings["insert_distributed_sync"] != nil {
		t.Errorf("one server: %+v", one)
	}
	if same, _ := WithCluster("clickhouse://h:9000/tg", ""); same != "clickhouse://h:9000/tg" {
		t.Errorf("no cluster changed the URL: %s", same)
	}
	for _, bad := range []string{"prod; DROP", "a-b", "{x}"} {
		if _, err := WithCluster("clickhouse://h:9000/tg", bad); err == nil {
			t.Errorf("cluster %q accepted", bad)
		}
		if _, err := ParseURL("clickhouse://h:9000/tg?cluster=" + url.QueryEscape(bad)); err == nil {
			t.Errorf("?cluster=%q accepted", bad)
		}
	}
}

// A swap's temporary table is dropped as left over only once it is older
// than staleSwap: a younger one may be another migrator's, at work.
func TestStaleSwapName(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		name  string
		stale bool
	}{
		{"requests__next_1799990000_0a1b2c3d", true},
		{"alert_rules__old_1799990000_0a1b2c3d", true},
		{"requests__next_1799999000_0a1b2c3d", false},
		{"requests__next_x_0a1b2c3d", false},
		{"requests__next", false},
	} {
		if got := staleSwapName(c.name, now); got != c.stale {
			t.Errorf("%s: stale %v, want %v", c.name, got, c.stale)
		}
	}
}
