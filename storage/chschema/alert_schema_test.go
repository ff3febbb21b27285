package chschema

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestAlertSchemaUsesOldTypes(t *testing.T) {
	for _, ddl := range []string{createAlertRulesSQL("tollgate"), createAlertEventsSQL("tollgate")} {
		for _, forbidden := range []string{"DateTime64", "LowCardinality", "CODEC", "TTL", "Nullable"} {
			if strings.Contains(ddl, forbidden) {
				t.Errorf("alert table uses %s (not on 18.16):\n%s", forbidden, ddl)
			}
		}
		if !strings.Contains(ddl, "ENGINE = ReplacingMergeTree(version)") {
			t.Errorf("not versioned:\n%s", ddl)
		}
	}
	// What package alerts needs for claims, retries and rule generations.
	events := createAlertEventsSQL("tollgate")
	for _, col := range []string{"rule_generation String", "prev_event_id String", "lost UInt8", "delivery_attempts UInt16",
		"next_attempt_at DateTime('UTC')", "ORDER BY (rule_id, fired_at, event_id)"} {
		if !strings.Contains(events, col) {
			t.Errorf("alert_events lacks %q:\n%s", col, events)
		}
	}
}

// TestMigrateV4 upgrades a database that migrations 1–3 made: step 4 adds
// the alert tables, and a rule's newest row wins under FINAL, deleted or
// not, on the test server (18.16).
func TestMigrateV4(t *testing.T) {
	base := sharedURL(t)
	_, fresh, conn := testDB(t, base)
	ctx := ctxT(t, 60*time.Second)
	log, _ := testLogger(t)

	old := fresh + "_v3"
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+old) })
	mconn := openURL(t, base+"/"+old)
	m := &migrator{conn: mconn, db: old, log: log}
	if err := m.run(ctx, migrations[:3]); err != nil {
		t.Fatal(err)
	}
	if got := tableColumns(t, conn, old, AlertRulesTable); len(got) != 0 {
		t.Fatalf("alert_rules before step 4: %v", got)
	}
	m = &migrator{conn: mconn, db: old, log: log}
	if err := m.run(ctx, migrations); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{AlertRulesTable, AlertEventsTable} {
		if got, want := tableColumns(t, conn, old, table), tableColumns(t, conn, fresh, table); len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s: upgraded %v, fresh %v", table, got, want)
		}
	}

	insert := func(version uint64, deleted uint8, name string) {
		t.Helper()
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+old+".alert_rules (id, name, version, deleted, created_at)")
		if err != nil {
			t.Fatal(err)
		}
		if err := batch.Append("r1", name, version, deleted, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
	newest := func() (string, uint8) {
		t.Helper()
		var name string
		var deleted uint8
		if err := conn.QueryRow(ctx, "SELECT name, deleted FROM "+old+".alert_rules FINAL WHERE id = 'r1'").Scan(&name, &deleted); err != nil {
			t.Fatal(err)
		}
		return name, deleted
	}
	insert(2, 0, "second")
	insert(1, 0, "first") // an older version arriving late loses
	if name, del := newest(); name != "second" || del != 0 {
		t.Errorf("newest %q deleted=%d, want second", name, del)
	}
	insert(3, 1, "second")
	if _, del := newest(); del != 1 {
		t.Error("deletion row did not win")
	}

	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+old+".alert_events (event_id, rule_id, fired_at, resolved_at, version)")
	if err != nil {
		t.Fatal(err)
	}
	id, fired := uuid.New(), time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for v, resolved := range []time.Time{time.Unix(0, 0).UTC(), fired.Add(time.Hour)} {
		if err := batch.Append(id, "r1", fired, resolved, uint64(v+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	var n uint64
	var resolved time.Time
	if err := conn.QueryRow(ctx, "SELECT count(), max(resolved_at) FROM "+old+".alert_events FINAL").Scan(&n, &resolved); err != nil ||
		n != 1 || !resolved.Equal(fired.Add(time.Hour)) {
		t.Errorf("events FINAL: %d rows, resolved %v (%v)", n, resolved, err)
	}
}
