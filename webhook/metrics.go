package webhook

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/internal/promreg"
)

// Delivery results (label "result" of tollgate_webhook_deliveries_total).
const (
	resultDelivered = "delivered" // a 2xx answer
	resultFailed    = "failed"    // attempts used up, or a final answer (4xx other than 429, 3xx)
	resultDropped   = "dropped"   // the destination's queue was full at Submit
	resultAbandoned = "abandoned" // shutdown ended the drain before it was delivered
)

type metrics struct {
	deliveries *prometheus.CounterVec
	retries    *prometheus.CounterVec
	depth      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_webhook_deliveries_total",
			Help: "Webhook deliveries by destination and result (delivered, failed, dropped: queue full, abandoned: at shutdown).",
		}, []string{"webhook", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_webhook_retries_total",
			Help: "Webhook attempts that failed and were retried (connection error, timeout, 5xx, 429).",
		}, []string{"webhook"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_webhook_queue_depth",
			Help: "Webhook deliveries waiting in each destination's queue.",
		}, []string{"webhook"}),
	}
	if reg != nil {
		m.deliveries = promreg.Register(reg, m.deliveries)
		m.retries = promreg.Register(reg, m.retries)
		m.depth = promreg.Register(reg, m.depth)
	}
	return m
}

// bind gives t its series, exported at zero from the start so that alerts
// can use rate() at once.
func (m *metrics) bind(t *target) {
	n := t.d.Name
	t.delivered = m.deliveries.WithLabelValues(n, resultDelivered)
	t.failed = m.deliveries.WithLabelValues(n, resultFailed)
	t.dropped = m.deliveries.WithLabelValues(n, resultDropped)
	t.abandoned = m.deliveries.WithLabelValues(n, resultAbandoned)
	t.retries = m.retries.WithLabelValues(n)
	t.depth = m.depth.WithLabelValues(n)
}

// logThrottle writes at most one line per destination every 10 seconds: a
// receiver that is down fails at the call rate, and so would the log.
type logThrottle struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *logThrottle) warn(log *slog.Logger, msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < 10*time.Second {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	l.last, args = now, append(args, "suppressed", l.suppressed)
	l.suppressed = 0
	l.mu.Unlock()
	log.Warn(msg, args...)
}
