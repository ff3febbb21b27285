package chschema

// Migration tests against the shared ClickHouse of scripts/testenv.sh (moved
// from chstore with the migrations).

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
)

// allVersions are the versions of every migration, in order: what a
// migrated database records.
var allVersions = func() []uint32 {
	var v []uint32
	for _, m := range migrations {
		v = append(v, m.version)
	}
	return v
}()

func TestMigrateTwice(t *testing.T) {
	base := sharedURL(t)
	url, db, conn := testDB(t, base) // the first run
	ctx := ctxT(t, 60*time.Second)
	log, _ := testLogger(t)
	if err := Migrate(ctx, url, log); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	// Two processes at once on a fresh database.
	db2 := db + "_race"
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db2) })
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = Migrate(ctx, base+"/"+db2, log) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate %d: %v", i, err)
		}
	}
	for _, d := range []string{db, db2} {
		rows, err := conn.Query(ctx, "SELECT version, count() FROM "+d+".schema_migrations FINAL GROUP BY version ORDER BY version")
		if err != nil {
			t.Fatal(err)
		}
		var versions []uint32
		for rows.Next() {
			var v uint32
			var n uint64
			if err := rows.Scan(&v, &n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%s: version %d recorded %d times", d, v, n)
			}
			versions = append(versions, v)
		}
		rows.Close()
		if !slices.Equal(versions, allVersions) || SchemaVersion() != allVersions[len(allVersions)-1] {
			t.Errorf("%s: versions %v", d, versions)
		}
	}
	// Sequential runs leave exactly one row per version even without FINAL.
	var raw uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".schema_migrations").Scan(&raw); err != nil || raw != uint64(len(allVersions)) {
		t.Errorf("schema_migrations has %d rows (%v), want %d", raw, err, len(allVersions))
	}
	// The tables have the contract's columns.
	var cols []string
	rows, err := conn.Query(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = 'requests'", db) // table order (18.16 has no position column)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		rows.Scan(&c)
		cols = append(cols, c)
	}
	rows.Close()
	if want := InsertColumnNames(); !slices.Equal(cols, want) {
		t.Errorf("requests columns\n got %v\nwant %v", cols, want)
	}
}

// TestMigrateUpgrade runs a later (test-only) step that adds a column:
// applied once, idempotent when its record is missing.
func TestMigrateUpgrade(t *testing.T) {
	url, db, conn := testDB(t, sharedURL(t))
	ctx := ctxT(t, 60*time.Second)
	mconn := openURL(t, url)
	log, _ := testLogger(t)
	next := SchemaVersion() + 1
	steps := append(slices.Clone(migrations), migration{next, "add test_extra", func(ctx context.Context, m *migrator) error {
		return m.addColumn(ctx, RequestsTable, column{name: "test_extra", legacy: "String"}, "error")
	}})
	for range 2 {
		m := &migrator{conn: mconn, db: db, log: log}
		if err := m.run(ctx, steps); err != nil {
			t.Fatal(err)
		}
	}
	// Lose the record of the new step: it runs again without harm.
	if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.schema_migrations DELETE WHERE version = %d", db, next)); err != nil {
		t.Logf("ALTER DELETE unsupported here (%v); skipping the re-run check", err)
	} else {
		// ALTER … DELETE returns once the mutation is queued; it is applied
		// in the background.
		testenv.Eventually(t, 30*time.Second, func() error {
			var pending uint64
			err := conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND table = 'schema_migrations' AND is_done = 0", db).Scan(&pending)
			if err == nil && pending > 0 {
				err = fmt.Errorf("%d mutations of %s.schema_migrations not done", pending, db)
			}
			return err
		})
		m := &migrator{conn: mconn, db: db, log: log}
		if err := m.run(ctx, steps); err != nil {
			t.Fatalf("re-run of an applied step: %v", err)
		}
	}
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = 'requests' AND name = 'test_extra'", db).Scan(&n); err != nil || n != 1 {
		t.Errorf("test_extra columns: %d, %v", n, err)
	}
}

// ddlLog is a connection that remembers the statements Exec ran.
type ddlLog struct {
	driver.Conn
	mu  sync.Mutex
	ddl []string
}

func (c *ddlLog) Exec(ctx context.Context, q string, args ...any) error {
	c.mu.Lock()
	c.ddl = append(c.ddl, q)
	c.mu.Unlock()
	return c.Conn.Exec(ctx, q, args...)
}

func (c *ddlLog) addColumns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, q := range c.ddl {
		if strings.Contains(q, " ADD COLUMN ") {
			n++
		}
	}
	return n
}

// tableColumns lists db.table's columns in table order as "name type".
func tableColumns(t *testing.T, conn driver.Conn, db, table string) []string {
	t.Helper()
	rows, err := conn.Query(ctxT(t, 30*time.Second),
		"SELECT name, type FROM system.columns WHERE database = ? AND table = ?", db, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			t.Fatal(err)
		}
		out = append(out, name+" "+typ)
	}
	return out
}

// TestMigrateV3 runs migration 3 on a table created now (it has the
// columns already: nothing to do) and on tables the previous binary
// created with migrations 1–2, one of them with step 3 cut short after
// two columns. The upgraded tables end up like a new one, old rows read
// the new columns as zero, and the writer fills them.
func TestMigrateV3(t *testing.T) {
	base := sharedURL(t)
	_, fresh, conn := testDB(t, base)
	ctx := ctxT(t, 60*time.Second)
	log, _ := testLogger(t)
	newMigrator := func(db string) (*migrator, *ddlLog) {
		c := openURL(t, base+"/"+db)
		dl := &ddlLog{Conn: c}
		return &migrator{conn: dl, db: db, log: log}, dl
	}
	want := tableColumns(t, conn, fresh, RequestsTable)

	// A new database: step 3 recorded without any ALTER.
	fresh2 := fresh + "_new"
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+fresh2) })
	m, dl := newMigrator(fresh2)
	if err := m.run(ctx, migrations); err != nil {
		t.Fatal(err)
	}
	if n := dl.addColumns(); n != 0 {
		t.Errorf("fresh database: %d ADD COLUMN statements, want none:\n%s", n, strings.Join(dl.ddl, "\n"))
	}
	if got := tableColumns(t, conn, fresh2, RequestsTable); !slices.Equal(got, want) {
		t.Errorf("fresh database columns\n got %v\nwant %v", got, want)
	}

	// The requests table as migrations 1–2 created it.
	var v2Cols []column
	for _, c := range requestColumns {
		if !slices.Contains(requestColumnsV3, c) {
			v2Cols = append(v2Cols, c)
		}
	}
	v2Steps := []migration{
		{1, migrations[0].name, func(ctx context.Context, m *migrator) error {
			ddl := strings.Replace(createRequestsSQL(m.db, m.f, 0),
				columnDefs(requestColumns, m.f, 0), columnDefs(v2Cols, m.f, 0), 1)
			return m.createTable(ctx, RequestsTable, ddl)
		}},
		migrations[1],
	}
	for _, c := range []struct {
		name    string
		done    int // step-3 columns added before the interruption
		wantAdd int
	}{{"from v2", 0, 7}, {"step 3 interrupted", 2, 5}} {
		t.Run(c.name, func(t *testing.T) {
			old := fmt.Sprintf("%s_old%d", fresh, c.done)
			t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+old) })
			m, _ := newMigrator(old)
			if err := m.run(ctx, v2Steps); err != nil {
				t.Fatal(err)
			}
			if got := tableColumns(t, conn, old, RequestsTable); len(got) != len(want)-len(requestColumnsV3) {
				t.Fatalf("v2 table has %d columns: %v", len(got), got)
			}
			// A row written by the previous binary. (A batch: on 18.16 the
			// driver's Exec of INSERT … VALUES waits for a data block.)
			oldID := testID("v2", c.done)
			batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+old+".requests (request_id, created_at, tenant, fallback_index)")
			if err != nil {
				t.Fatal(err)
			}
			if err := batch.Append(uuid.MustParse(oldID), time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC), "acme", int32(1)); err != nil {
				t.Fatal(err)
			}
			if err := batch.Send(); err != nil {
				t.Fatal(err)
			}
			if c.done > 0 {
				if err := m.addColumns(ctx, RequestsTable, requestColumnsV3[:c.done], "fallback_index"); err != nil {
					t.Fatal(err)
				}
			}

			m, dl := newMigrator(old)
			if err := m.run(ctx, migrations); err != nil {
				t.Fatal(err)
			}
			if n := dl.addColumns(); n != c.wantAdd {
				t.Errorf("%d ADD COLUMN statements, want %d:\n%s", n, c.wantAdd, strings.Join(dl.ddl, "\n"))
			}
			if got := tableColumns(t, conn, old, RequestsTable); !slices.Equal(got, want) {
				t.Errorf("upgraded columns\n got %v\nwant %v", got, want)
			}

			// A row written now fills the new columns. (The writer names
			// every column, InsertColumnNames; that it fills them all is
			// chstore's TestRowsRoundTrip, on a table equal to this one.)
			rec := record.Record{RequestID: testID("v3", c.done), FallbackIndex: -1, Attempts: 3,
				RetryPolicy: "num=5 factor=2", WorkloadNamespace: "team-a", WorkloadServiceAccount: "chatbot",
				WorkloadName: "chatbot-7d9f", PolicyRule: "openai-only", PolicyDecision: "deny: model gpt-4o not allowed"}
			batch, err = conn.PrepareBatch(ctx, "INSERT INTO "+old+".requests (request_id, created_at, tenant, fallback_index, "+
				"attempts, retry_policy, workload_namespace, workload_service_account, workload_name, policy_rule, policy_decision)")
			if err != nil {
				t.Fatal(err)
			}
			if err := batch.Append(uuid.MustParse(rec.RequestID), time.Date(2025, 11, 26, 12, 0, 0, 0, time.UTC), "acme",
				rec.FallbackIndex, rec.Attempts, rec.RetryPolicy, rec.WorkloadNamespace, rec.WorkloadServiceAccount,
				rec.WorkloadName, rec.PolicyRule, rec.PolicyDecision); err != nil {
				t.Fatal(err)
			}
			if err := batch.Send(); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{oldID, rec.RequestID} {
				var g record.Record
				if err := conn.QueryRow(ctx, "SELECT fallback_index, attempts, retry_policy, workload_namespace, workload_service_account, "+
					"workload_name, policy_rule, policy_decision FROM "+old+".requests FINAL WHERE request_id = toUUID(?)", id).Scan(
					&g.FallbackIndex, &g.Attempts, &g.RetryPolicy, &g.WorkloadNamespace, &g.WorkloadServiceAccount,
					&g.WorkloadName, &g.PolicyRule, &g.PolicyDecision); err != nil {
					t.Fatal(err)
				}
				e := record.Record{FallbackIndex: 1}
				if id == rec.RequestID {
					e = record.Record{FallbackIndex: rec.FallbackIndex, Attempts: rec.Attempts, RetryPolicy: rec.RetryPolicy,
						WorkloadNamespace: rec.WorkloadNamespace, WorkloadServiceAccount: rec.WorkloadServiceAccount,
						WorkloadName: rec.WorkloadName, PolicyRule: rec.PolicyRule, PolicyDecision: rec.PolicyDecision}
				}
				if !reflect.DeepEqual(g, e) {
					t.Errorf("row %s:\n got %+v\nwant %+v", id, g, e)
				}
			}
		})
	}
}
