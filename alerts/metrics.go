package alerts

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/internal/promreg"
)

type metrics struct {
	evaluations      *prometheus.CounterVec
	fired            *prometheus.CounterVec
	deliveryFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_alert_evaluations_total",
			Help: "Alert rule evaluations, by outcome (ok, error: the metric query failed).",
		}, []string{"outcome"}),
		fired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_alerts_fired_total",
			Help: "Alert events fired by this replica (delivered or not; retries not counted), by metric.",
		}, []string{"metric"}),
		deliveryFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_alert_delivery_failures_total",
			Help: "Alert delivery tries the webhook did not accept after all attempts (a try cut short by a shutdown is not counted).",
		}),
	}
	// Export zeros so that rate() and absent() work from the start.
	for _, o := range []string{"ok", "error"} {
		m.evaluations.WithLabelValues(o)
	}
	for _, x := range []Metric{CostUSD, ErrorRate, LatencyP95} {
		m.fired.WithLabelValues(string(x))
	}
	if reg != nil {
		m.evaluations = promreg.Register(reg, m.evaluations)
		m.fired = promreg.Register(reg, m.fired)
		m.deliveryFailures = promreg.Register(reg, m.deliveryFailures)
	}
	return m
}
