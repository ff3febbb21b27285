// Package chtest gives tests a ClickHouse database of their own on the test
// environment's server (internal/testenv): migrated, and dropped at the
// end. For the packages that read what chstore writes (api, alerts,
// dashboard); chstore's own tests have their helpers inside the package.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

// FreshDatabase migrates a new database named prefix_<random> and drops it
// when the test ends (the test is skipped, or failed under `make test`,
// when there is no ClickHouse).
func FreshDatabase(t testing.TB, prefix string) (dsn string, conn driver.Conn, db string) {
	t.Helper()
	dsn, conn, db = EmptyDatabase(t, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := chschema.Migrate(ctx, dsn, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return dsn, conn, db
}

// EmptyDatabase names a new database prefix_<random> without creating it,
// for a test of what creates or migrates it (tollgate migrate, dev, a
// writer waiting for its schema), and drops it when the test ends.
func EmptyDatabase(t testing.TB, prefix string) (dsn string, conn driver.Conn, db string) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	dsn = strings.TrimSuffix(testenv.ClickHouseURL(t), "/") + "/" + prefix + "_" + hex.EncodeToString(b[:])
	conn, db, err := chschema.Connect(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("drop %s: %v", db, err)
		}
		_ = conn.Close()
	})
	return dsn, conn, db
}

// Writer opens the processor's log writer on dsn with a short flush
// interval; it is closed (flushed) before the database is dropped.
func Writer(t testing.TB, dsn string) *chstore.Writer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, err := chstore.Open(ctx, chstore.Options{URL: dsn, SpoolDir: t.TempDir(), FlushInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = w.Close(ctx)
	})
	return w
}

// AlertScopeRows are the calls the alert tests evaluate scoped rules over
// (alerts' TestScopedRules, chquery's TestMetricValues): five in the 15
// minutes before now, over two tenants and two env properties, and one
// older.
func AlertScopeRows(now time.Time) []*record.Record {
	prod := []record.Property{{Key: "env", Value: "prod"}}
	dev := []record.Property{{Key: "env", Value: "dev"}}
	at := now.Add(-2 * time.Minute)
	return []*record.Record{
		{CreatedAt: at, Model: "gpt-4o", UserID: "alice", Properties: prod, Status: 200, LatencyMs: 100, CostUSD: 1},
		{CreatedAt: at, Model: "gpt-4o", UserID: "bob", Properties: dev, Status: 500, LatencyMs: 200, CostUSD: 2},
		{CreatedAt: at, Model: "mini", UserID: "alice", Properties: prod, Status: 429, LatencyMs: 300, CostUSD: 4},
		{CreatedAt: at, Model: "mini", UserID: "carol", Status: 200, LatencyMs: 400, CostUSD: 8},
		{CreatedAt: at, Model: "gpt-4o", UserID: "dave", Properties: prod, Status: 200, LatencyMs: 50, CostUSD: 32, Tenant: "t2"},
		{CreatedAt: now.Add(-20 * time.Minute), Model: "gpt-4o", UserID: "alice", Properties: prod, Status: 500, LatencyMs: 9999, CostUSD: 16},
	}
}
