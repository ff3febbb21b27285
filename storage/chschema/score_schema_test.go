package chschema

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The scores table holds what Helicone's score API takes, numbers and
// booleans (as 1/0), per tenant. Helicone:
// valhalla/jawn/src/managers/score/ScoreManager.ts (mapScores: a boolean
// becomes 1 or 0 with value type "boolean") and
// valhalla/jawn/src/lib/stores/ScoreStore.ts (scores per organization and
// request; a new score of a name replaces the old).
func TestScoreSchemaVariants(t *testing.T) {
	legacy := createScoresSQL("tollgate", features{})
	for _, forbidden := range []string{"DateTime64", "LowCardinality", "CODEC", "TTL", "Nullable"} {
		if strings.Contains(legacy, forbidden) {
			t.Errorf("legacy scores table uses %s (not on 18.16):\n%s", forbidden, legacy)
		}
	}
	for _, want := range []string{"ReplacingMergeTree(created_at)", "ORDER BY (tenant, request_id, name)", "value Float64", "value_type String"} {
		if !strings.Contains(legacy, want) {
			t.Errorf("scores table lacks %q:\n%s", want, legacy)
		}
	}
	if modern := createScoresSQL("tollgate", features{modern: true}); !strings.Contains(modern, "created_at DateTime64(3, 'UTC')") {
		t.Errorf("modern scores table:\n%s", modern)
	}
}

// TestMigrateV5 upgrades a database that migrations 1–4 made: step 5 adds
// the scores table, the same as a new database's, and on the test server
// (18.16) the newest score of a (tenant, request, name) wins under FINAL
// (Helicone: valhalla/jawn/src/lib/stores/ScoreStore.ts merges a new score
// over the request's earlier ones).
func TestMigrateV5(t *testing.T) {
	base := sharedURL(t)
	_, fresh, conn := testDB(t, base)
	ctx := ctxT(t, 60*time.Second)
	log, _ := testLogger(t)

	old := fresh + "_v4"
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+old) })
	mconn := openURL(t, base+"/"+old)
	if err := (&migrator{conn: mconn, db: old, log: log}).run(ctx, migrations[:4]); err != nil {
		t.Fatal(err)
	}
	if got := tableColumns(t, conn, old, ScoresTable); len(got) != 0 {
		t.Fatalf("scores before step 5: %v", got)
	}
	if err := (&migrator{conn: mconn, db: old, log: log}).run(ctx, migrations); err != nil {
		t.Fatal(err)
	}
	if got, want := tableColumns(t, conn, old, ScoresTable), tableColumns(t, conn, fresh, ScoresTable); len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("scores: upgraded %v, fresh %v", got, want)
	}

	id := uuid.New()
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+old+".scores (tenant, request_id, name, value, value_type, created_at)")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, s := range []struct {
		tenant string
		value  float64
		at     time.Time
	}{{"acme", 2, at.Add(time.Hour)}, {"acme", 1, at}, {"other", 9, at}} {
		if err := batch.Append(s.tenant, id, "quality", s.value, "number", s.at); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	var v float64
	if err := conn.QueryRow(ctx, "SELECT value FROM "+old+".scores FINAL WHERE tenant = 'acme' AND request_id = ? AND name = 'quality'", id).Scan(&v); err != nil || v != 2 {
		t.Errorf("newest acme score %v (%v), want 2", v, err)
	}
}
