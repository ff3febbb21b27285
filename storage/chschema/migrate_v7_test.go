package chschema

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestV7ColumnsMatchCreate: migration 7 adds exactly the column a new
// requests table has after proxy_key_id, before migration 8's, so an
// upgraded table and a new one agree.
func TestV7ColumnsMatchCreate(t *testing.T) {
	v7End := len(requestColumns) - len(requestColumnsV8)
	n := v7End - len(requestColumnsV7)
	if n < 1 || requestColumns[n-1].name != "proxy_key_id" || !slices.Equal(requestColumns[n:v7End], requestColumnsV7) {
		t.Errorf("requestColumns should have proxy_key_id then %+v", requestColumnsV7)
	}
	if i := slices.IndexFunc(migrations, func(m migration) bool { return m.version == 7 }); i < 0 || migrations[i].name == "" {
		t.Error("no migration 7 (usage_source)")
	}
}

// TestMigrateV7 upgrades a requests table as migrations 1–6 left it: the
// column is added after proxy_key_id (and migration 8's after it), as a
// new table has them.
func TestMigrateV7(t *testing.T) {
	base := sharedURL(t)
	_, fresh, conn := testDB(t, base)
	ctx := ctxT(t, 60*time.Second)
	log, _ := testLogger(t)
	want := tableColumns(t, conn, fresh, RequestsTable)

	old := fresh + "_v6"
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+old) })
	dl := &ddlLog{Conn: openURL(t, base+"/"+old)}
	m := &migrator{conn: dl, db: old, log: log}
	added := len(requestColumnsV7) + len(requestColumnsV8)
	v6Cols := requestColumns[:len(requestColumns)-added]
	v6 := slices.Clone(migrations[:6])
	v6[0].apply = func(ctx context.Context, m *migrator) error {
		ddl := strings.Replace(createRequestsSQL(m.db, m.f, 0),
			columnDefs(requestColumns, m.f, 0), columnDefs(v6Cols, m.f, 0), 1)
		return m.createTable(ctx, RequestsTable, ddl)
	}
	if err := m.run(ctx, v6); err != nil {
		t.Fatal(err)
	}
	if err := m.run(ctx, migrations); err != nil {
		t.Fatal(err)
	}
	if n := dl.addColumns(); n != added {
		t.Errorf("%d ADD COLUMN statements, want %d:\n%s", n, added, strings.Join(dl.ddl, "\n"))
	}
	if got := tableColumns(t, conn, old, RequestsTable); !slices.Equal(got, want) {
		t.Errorf("upgraded columns\n got %v\nwant %v", got, want)
	}
}
