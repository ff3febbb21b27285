package chschema

import (
	"slices"
	"testing"
	"time"
)

// TestMigrateV9 creates the erasures audit table with its columns.
func TestMigrateV9(t *testing.T) {
	base := sharedURL(t)
	_, db, conn := testDB(t, base)
	ctx := ctxT(t, 30*time.Second)
	want := []string{"id String", "tenant String", "kind String", "subject String", "subject_key String",
		"requested_by String", "requested_at DateTime('UTC')", "status String", "step String", "detail String",
		"completed_at DateTime('UTC')", "version UInt64"}
	if got := tableColumns(t, conn, db, ErasuresTable); !slices.Equal(got, want) {
		t.Errorf("erasures columns\n got %v\nwant %v", got, want)
	}
	var engine string
	if err := conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", db, ErasuresTable).Scan(&engine); err != nil {
		t.Fatal(err)
	}
	if engine != "ReplacingMergeTree" {
		t.Errorf("engine %q, want ReplacingMergeTree", engine)
	}
}
