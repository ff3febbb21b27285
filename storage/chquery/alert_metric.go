package chquery

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/tollgate-dev/tollgate/alerts"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// alertMetricExprs compute each alert metric the way GET /v1/stats does
// (error_rate is divided by count() in Go: 0 with no requests).
var alertMetricExprs = map[alerts.Metric]string{
	alerts.CostUSD:    "sum(cost_usd)",
	alerts.ErrorRate:  "toFloat64(countIf(" + errorCond + "))",
	alerts.LatencyP95: "quantileExact(0.95)(toFloat64(latency_ms))",
}

// AlertMetric measures an alert metric over the requests of every tenant
// in scope with created_at in [from, to) (alerts.MetricSource). With no
// such requests every metric is 0.
func (q *Requests) AlertMetric(ctx context.Context, m alerts.Metric, s alerts.Scope, from, to time.Time) (float64, error) {
	expr, ok := alertMetricExprs[m]
	if !ok {
		return 0, fmt.Errorf("unknown alert metric %q", m)
	}
	f := Filter{Model: s.Model, User: s.User, From: from, To: to}
	if p := s.Property; p != nil {
		f.Properties = []record.Property{{Key: p.Name, Value: p.Value}}
	}
	where, args := f.where()
	var n uint64
	var v float64
	err := q.conn.QueryRow(ctx, fmt.Sprintf("SELECT count(), %s FROM %s FINAL WHERE %s",
		expr, q.table(chschema.RequestsTable), where), args...).Scan(&n, &v)
	if err != nil {
		return 0, fmt.Errorf("alert metric %s: %w", m, err)
	}
	if n == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, nil
	}
	if m == alerts.ErrorRate {
		v /= float64(n)
	}
	return v, nil
}
