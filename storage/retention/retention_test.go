package retention_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chquery"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/chstore"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
	"github.com/tollgate-dev/tollgate/storage/retention"
)

func freshDB(t *testing.T) (string, string, driver.Conn) {
	t.Helper()
	url, conn, db := chtest.FreshDatabase(t, "retention")
	return url, db, conn
}

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t.Add(12 * time.Hour)
}

// TestRetentionLegacy (ClickHouse 18.16, no TTL): with 90 days of
// retention on 2026-12-07, the partitions of May and August 2026 go
// (every day of them is older than 2026-09-08), September stays (part
// of it is younger), feedback and scores older than the cutoff day go;
// with 30 days of body retention the bodies of calls before 2026-11-07
// are blanked and the others kept. A second pass changes nothing.
func TestRetentionLegacy(t *testing.T) {
	url, db, conn := freshDB(t)
	ctx := context.Background()
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if chschema.SupportsTTL(version) {
		t.Skipf("ClickHouse %s uses TTLs, not partition drops", version)
	}
	w, err := chstore.Open(ctx, chstore.Options{URL: url, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dates := []string{"2026-05-15", "2026-08-20", "2026-09-05", "2026-11-01", "2026-11-20", "2026-12-07"}
	ids := map[string]string{}
	for _, d := range dates {
		r := &record.Record{RequestID: record.NewID(), CreatedAt: day(d), Tenant: "a", UserID: "u",
			RequestBody: "prompt " + d, ResponseBody: "answer " + d, Status: 200}
		ids[d] = r.RequestID
		w.Write(r)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Close(cctx); err != nil {
		t.Fatal(err)
	}
	q := chquery.NewRequests(conn, db, nil)
	for _, d := range []string{"2026-08-01", "2026-10-01"} {
		if err := chstore.InsertFeedback(ctx, conn, db, chstore.Feedback{RequestID: record.NewID(), Tenant: "a", Rating: true, CreatedAt: day(d)}); err != nil {
			t.Fatal(err)
		}
		if err := q.InsertScores(ctx, "a", record.NewID(), day(d), []chquery.Score{{Name: "q", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}

	r := retention.New(retention.Options{Conn: conn, DB: db, Retention: 90 * 24 * time.Hour, BodyRetention: 30 * 24 * time.Hour,
		Now: func() time.Time { return day("2026-12-07") }})
	// Mutations are asynchronous: a pass while one runs says so; passes
	// go on until the data is as it should be.
	testenv.Eventually(t, 60*time.Second, func() error {
		_ = r.Pass(ctx)
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", db).Scan(&n); err != nil || n > 0 {
			return fmt.Errorf("%d mutations running (%v)", n, err)
		}
		return nil
	})
	if err := r.Pass(ctx); err != nil {
		t.Errorf("a pass with nothing left to do: %v", err)
	}

	var parts []string
	rows, err := conn.Query(ctx, "SELECT DISTINCT partition FROM system.parts WHERE database = ? AND table = 'requests' AND active ORDER BY partition", db)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	rows.Close()
	if want := []string{"202609", "202611", "202612"}; !slices.Equal(parts, want) {
		t.Errorf("partitions %v, want %v", parts, want)
	}
	bodies := map[string]string{}
	rows, err = conn.Query(ctx, fmt.Sprintf("SELECT toString(request_id), request_body, response_body FROM %s.requests FINAL", db))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, req, resp string
		if err := rows.Scan(&id, &req, &resp); err != nil {
			t.Fatal(err)
		}
		bodies[id] = req + "|" + resp
	}
	rows.Close()
	want := map[string]string{
		ids["2026-09-05"]: "|", ids["2026-11-01"]: "|",
		ids["2026-11-20"]: "prompt 2026-11-20|answer 2026-11-20", ids["2026-12-07"]: "prompt 2026-12-07|answer 2026-12-07",
	}
	if len(bodies) != len(want) {
		t.Errorf("%d rows left, want %d", len(bodies), len(want))
	}
	for id, b := range want {
		if bodies[id] != b {
			t.Errorf("row %s bodies %q, want %q", id, bodies[id], b)
		}
	}
	for _, table := range []string{"feedback", "scores"} {
		var n uint64
		var oldest time.Time
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(), min(created_at) FROM %s.%s", db, table)).Scan(&n, &oldest); err != nil {
			t.Fatal(err)
		}
		if n != 1 || !oldest.Equal(day("2026-10-01")) {
			t.Errorf("%s: %d rows from %v, want the one of 2026-10-01", table, n, oldest)
		}
	}
}
