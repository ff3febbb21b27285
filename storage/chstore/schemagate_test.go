package chstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// TestRequireSchema: a writer that does not migrate, started on a database
// nobody has migrated, writes nothing there and says why (error, log line,
// metric); once `tollgate migrate` has run, the records that waited arrive,
// each exactly once.
func TestRequireSchema(t *testing.T) {
	base := sharedURL(t)
	db := fmt.Sprintf("chstore_gate_%d_%04x", time.Now().UnixNano()%1e9, rand.N(1<<16))
	url := base + "/" + db
	conn := chConn(t, strings.TrimPrefix(base, "clickhouse://"))
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	ctx := ctxT(t, 120*time.Second)

	reg := prometheus.NewRegistry()
	w, logs := openWriter(t, Options{URL: url, RequireSchema: true, Registerer: reg})
	const n = 40
	for i := range n {
		w.Write(testRecord("gate", i, true))
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Behind: the error, the log line and the metric say so and name the
	// fix; nothing reached the server (not even the database).
	testenv.Eventually(t, 30*time.Second, func() error {
		var b *chschema.BehindError
		if err := w.SchemaBehind(); !errors.As(err, &b) || b.Database != db || b.Needed != chschema.SchemaVersion() {
			return fmt.Errorf("SchemaBehind() = %v", err)
		}
		if v := gauge(t, reg, "tollgate_clickhouse_schema_behind"); v != 1 {
			return fmt.Errorf("tollgate_clickhouse_schema_behind = %v", v)
		}
		if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "tollgate migrate") || !strings.Contains(out, db) {
			return fmt.Errorf("no error line naming the database and the fix:\n%s", out)
		}
		return nil
	})
	var exists uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", db).Scan(&exists); err != nil || exists != 0 {
		t.Fatalf("the writer created database %s (%d, %v)", db, exists, err)
	}
	if got := metric(w.m.written) + metric(w.m.replayed); got != 0 {
		t.Fatalf("%d rows reported written while the schema was missing", got)
	}
	if got := metric(w.m.spooled); got != n {
		t.Errorf("%d rows spooled, want %d", got, n)
	}

	log, _ := testLogger(t)
	if err := chschema.Migrate(ctx, url, log); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if final, _, _ := counts(t, conn, db, ""); final != n {
			return fmt.Errorf("%d rows in %s.requests, want %d", final, db, n)
		}
		return nil
	})
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if final, distinct, raw := counts(t, conn, db, ""); final != n || distinct != n || raw != n {
		t.Errorf("after migration: FINAL %d, distinct ids %d, raw rows %d; want %d each (exactly once)", final, distinct, raw, n)
	}
	if err := w.SchemaBehind(); err != nil {
		t.Errorf("SchemaBehind() after migration: %v", err)
	}
	if v := gauge(t, reg, "tollgate_clickhouse_schema_behind"); v != 0 {
		t.Errorf("tollgate_clickhouse_schema_behind after migration = %v", v)
	}
	if !strings.Contains(logs.String(), "the schema is migrated") {
		t.Errorf("no line saying writing resumed:\n%s", logs)
	}
}

// gauge reads one unlabelled gauge from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestSchemaBehindLogs: while the schema is behind the writer says so at
// error level once (then every logEvery, in other words), not at every
// check; when the cause turns into an outage that is news at once; once
// both are over, the records that waited arrive.
func TestSchemaBehindLogs(t *testing.T) {
	f := &fakeSender{}
	var behind atomic.Bool
	behind.Store(true)
	var checks atomic.Int32
	check := func(context.Context) (uint32, error) {
		checks.Add(1)
		if behind.Load() {
			return 3, &chschema.BehindError{Database: "tollgate", Found: 3, Needed: chschema.SchemaVersion()}
		}
		return chschema.SchemaVersion(), nil
	}
	log, logs := testLogger(t)
	o := Options{SpoolDir: t.TempDir(), FlushInterval: 20 * time.Millisecond, Logger: log}
	w, err := newWriter(o, newSchemaGate(f, check, nil, log))
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, w)
	const n = 10
	for i := range n {
		w.Write(testRecord("logs", i, false))
	}
	const first = "records wait in the spool until `tollgate migrate` has run"
	testenv.Eventually(t, 30*time.Second, func() error {
		if c := checks.Load(); c < 4 {
			return fmt.Errorf("%d schema checks so far", c)
		}
		return nil
	})
	if got := strings.Count(logs.String(), first); got != 1 {
		t.Errorf("%d error lines over %d checks, want 1:\n%s", got, checks.Load(), logs)
	}
	if f.count() != 0 {
		t.Fatalf("%d rows inserted while the schema was behind", f.count())
	}
	if !strings.Contains(logs.String(), "schema_version=3") {
		t.Errorf("the error line does not name the version found:\n%s", logs)
	}

	// Migrated, but ClickHouse is now down: the outage is logged at once.
	f.setDown(true)
	behind.Store(false)
	testenv.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(logs.String(), "ClickHouse unavailable") {
			return fmt.Errorf("no outage line yet")
		}
		return nil
	})
	f.setDown(false)
	testenv.Eventually(t, 60*time.Second, func() error {
		if got := f.count(); got != n {
			return fmt.Errorf("%d of %d rows inserted", got, n)
		}
		return nil
	})
	if err := w.SchemaBehind(); err != nil {
		t.Errorf("SchemaBehind() = %v after the schema caught up", err)
	}
}
