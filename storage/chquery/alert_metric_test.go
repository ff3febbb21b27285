package chquery_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/alerts"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chquery"
	"github.com/tollgate-dev/tollgate/storage/chstore/chtest"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// env is a private, migrated database on the shared ClickHouse, dropped
// at the end.
type env struct {
	q     *chquery.Requests
	write func(t *testing.T, recs ...*record.Record)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dsn, conn, db := chtest.FreshDatabase(t, "tollgate_chquery")
	w := chtest.Writer(t, dsn)
	// write stores request rows and waits until ClickHouse has them.
	write := func(t *testing.T, recs ...*record.Record) {
		t.Helper()
		for _, r := range recs {
			if r.RequestID == "" {
				r.RequestID = uuid.NewString()
			}
			if r.Tenant == "" {
				r.Tenant = "acme"
			}
			if r.Status == 0 {
				r.Status = 200
			}
			w.Write(r)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return &env{q: chquery.NewRequests(conn, db, nil), write: write}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestMetricValues checks each metric over each scope against values
// worked out by hand (p95: the value at rank floor(0.95 × n), from 0).
func TestMetricValues(t *testing.T) {
	e := newEnv(t)
	e.write(t, chtest.AlertScopeRows(t0)...)
	prod := &alerts.Property{Name: "env", Value: "prod"}
	for _, c := range []struct {
		scope                 alerts.Scope
		cost, errRate, p95Lat float64
	}{
		{alerts.Scope{}, 47, 2.0 / 5, 400},                // lat 50 100 200 300 400
		{alerts.Scope{Model: "gpt-4o"}, 35, 1.0 / 3, 200}, // lat 50 100 200
		{alerts.Scope{User: "alice"}, 5, 1.0 / 2, 300},    // lat 100 300
		{alerts.Scope{Property: prod}, 37, 1.0 / 3, 300},  // lat 50 100 300
		{alerts.Scope{Model: "mini", User: "alice", Property: prod}, 4, 1, 300},
		{alerts.Scope{Model: "nobody"}, 0, 0, 0},
	} {
		for _, mv := range []struct {
			m    alerts.Metric
			want float64
		}{{alerts.CostUSD, c.cost}, {alerts.ErrorRate, c.errRate}, {alerts.LatencyP95, c.p95Lat}} {
			got, err := e.q.AlertMetric(ctx(t), mv.m, c.scope, t0.Add(-15*time.Minute), t0.Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if got != mv.want {
				t.Errorf("%s over %+v: %v, want %v", mv.m, c.scope, got, mv.want)
			}
		}
	}
}
