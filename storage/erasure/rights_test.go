package erasure_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/erasure"
)

// TestErasureWithoutAlterRights: a runner whose ClickHouse user may not
// change rows (readonly=2: reads only, as a user without ALTER DELETE)
// leaves the erasure pending, its rows in place, and says so in its
// metrics: pending, the oldest's age, and failed steps.
func TestErasureWithoutAlterRights(t *testing.T) {
	url, db, conn := freshDB(t)
	ctx := context.Background()
	w := openWriter(t, url, t.TempDir(), nil)
	w.Write(rec("a", "u1", 0, time.Now().UTC().Add(-time.Hour)))
	closeWriter(t, w)
	store := erasure.NewStore(conn, db, nil)
	e, err := store.Request(ctx, "a", erasure.Subject{Kind: erasure.User, Value: "u1"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	ro, _, err := chschema.Connect(url + "?readonly=2")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	reg := prometheus.NewRegistry()
	runner := erasure.NewRunner(erasure.Options{Conn: ro, DB: db, Registerer: reg,
		Now: func() time.Time { return time.Now().Add(time.Hour) }})
	for range 2 {
		if err := runner.Pass(ctx); err == nil {
			t.Fatal("a pass without the rights to delete succeeded")
		}
	}
	if got, err := store.Get(ctx, "a", e.ID); err != nil || got.Status != erasure.Pending {
		t.Errorf("erasure %+v, %v; want pending", got, err)
	}
	if n := count(t, conn, "SELECT count() FROM "+db+".requests WHERE user_id = 'u1'"); n != 1 {
		t.Errorf("%d rows of u1, want 1 (untouched)", n)
	}
	for name, ok := range map[string]func(float64) bool{
		"tollgate_erasures_pending":               func(v float64) bool { return v == 1 },
		"tollgate_erasure_oldest_pending_seconds": func(v float64) bool { return v > 3000 },
		"tollgate_erasure_step_errors_total":      func(v float64) bool { return v == 2 },
	} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			found = true
			m := mf.GetMetric()[0]
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			if !ok(v) {
				t.Errorf("%s = %v", name, v)
			}
		}
		if !found {
			t.Errorf("%s not exported", name)
		}
	}
}
