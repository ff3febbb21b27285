package chschema

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestV6ColumnsMatchCreate: migration 6 adds exactly the columns a new
// requests table has after error, before migrations 7's and 8's, so an upgraded
// table and a new one agree.
func TestV6ColumnsMatchCreate(t *testing.T) {
	v6End := len(requestColumns) - len(requestColumnsV7) - len(requestColumnsV8)
	n := v6End - len(requestColumnsV6)
	if n < 1 || requestColumns[n-1].name != "error" || !slices.Equal(requestColumns[n:v6End], requestColumnsV6) {
		t.Errorf("requestColumns should have error then %+v", requestColumnsV6)
	}
	if i := slices.IndexFunc(migrations, func(m migration) bool { return m.version == 6 }); i < 0 || migrations[i].name == "" {
		t.Error("no migration 6 (model_override, warnings, proxy_key_id)")
	}
}

// TestMigrateV6 upgrades a requests table as migrations 1–5 left it: the
// three columns are added after error (and migrations 7's and 8's after
// them), as a new table has them.
func TestMigrateV6(t *testing.T) {
	base := sharedURL(t)
	_, fresh, conn := testDB(t, base)
	ctx := ctxT(t, 60*time.Second)
	log, _ := testLogger(t)
	want := tableColumns(t, conn, fresh, RequestsTable)

	old := fresh + "_v5"
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+old) })
	dl := &ddlLog{Conn: openURL(t, base+"/"+old)}
	m := &migrator{conn: dl, db: old, log: log}
	added := len(requestColumnsV6) + len(requestColumnsV7) + len(requestColumnsV8)
	v5Cols := requestColumns[:len(requestColumns)-added]
	v5 := slices.Clone(migrations[:5])
	v5[0].apply = func(ctx context.Context, m *migrator) error {
		ddl := strings.Replace(createRequestsSQL(m.db, m.f, 0),
			columnDefs(requestColumns, m.f, 0), columnDefs(v5Cols, m.f, 0), 1)
		return m.createTable(ctx, RequestsTable, ddl)
	}
	if err := m.run(ctx, v5); err != nil {
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
