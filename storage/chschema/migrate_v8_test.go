package chschema

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestV8ColumnsMatchCreate: migration 8 adds exactly the column a new
// requests table ends with, so an upgraded table and a new one agree.
func TestV8ColumnsMatchCreate(t *testing.T) {
	n := len(requestColumns) - len(requestColumnsV8)
	if n < 1 || requestColumns[n-1].name != "usage_source" || !slices.Equal(requestColumns[n:], requestColumnsV8) {
		t.Errorf("requestColumns should end with usage_source then %+v", requestColumnsV8)
	}
	if i := slices.IndexFunc(migrations, func(m migration) bool { return m.version == 8 }); i < 0 || migrations[i].name == "" {
		t.Error("no migration 8 (cache_similarity)")
	}
}

// TestMigrateV8 upgrades a requests table as migrations 1–7 left it: the
// column is added after usage_source, as a new table has it.
func TestMigrateV8(t *testing.T) {
	base := sharedURL(t)
	_, fresh, conn := testDB(t, base)
	ctx := ctxT(t, 60*time.Second)
	log, _ := testLogger(t)
	want := tableColumns(t, conn, fresh, RequestsTable)

	old := fresh + "_v7"
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+old) })
	dl := &ddlLog{Conn: openURL(t, base+"/"+old)}
	m := &migrator{conn: dl, db: old, log: log}
	v7Cols := requestColumns[:len(requestColumns)-len(requestColumnsV8)]
	v7 := slices.Clone(migrations[:7])
	v7[0].apply = func(ctx context.Context, m *migrator) error {
		ddl := strings.Replace(createRequestsSQL(m.db, m.f, 0),
			columnDefs(requestColumns, m.f, 0), columnDefs(v7Cols, m.f, 0), 1)
		return m.createTable(ctx, RequestsTable, ddl)
	}
	if err := m.run(ctx, v7); err != nil {
		t.Fatal(err)
	}
	if err := m.run(ctx, migrations); err != nil {
		t.Fatal(err)
	}
	if n := dl.addColumns(); n != len(requestColumnsV8) {
		t.Errorf("%d ADD COLUMN statements, want %d:\n%s", n, len(requestColumnsV8), strings.Join(dl.ddl, "\n"))
	}
	if got := tableColumns(t, conn, old, RequestsTable); !slices.Equal(got, want) {
		t.Errorf("upgraded columns\n got %v\nwant %v", got, want)
	}
}
