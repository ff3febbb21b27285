package otelspan

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tollgate-dev/tollgate/internal/promreg"
)

// Results of tollgate_otel_spans_total.
const (
	resultExported  = "exported"  // the receiver took it
	resultFailed    = "failed"    // the export failed after the SDK's retries
	resultDropped   = "dropped"   // the queue was full at Offer
	resultUnsampled = "unsampled" // not sampled: no span made
)

type metrics struct {
	exported, failed, dropped, unsampled prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	spans := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_otel_spans_total",
		Help: "Calls offered to the OpenTelemetry exporter by result (exported, failed: the receiver refused or was unreachable, dropped: queue full, unsampled).",
	}, []string{"result"})
	if reg != nil {
		spans = promreg.Register(reg, spans)
	}
	return &metrics{
		exported:  spans.WithLabelValues(resultExported),
		failed:    spans.WithLabelValues(resultFailed),
		dropped:   spans.WithLabelValues(resultDropped),
		unsampled: spans.WithLabelValues(resultUnsampled),
	}
}

// countingExporter counts what the OTLP exporter sends and logs its
// failures, at most once per failureLogEvery: a receiver that is down
// must not log at the rate of the batches.
type countingExporter struct {
	sdktrace.SpanExporter
	m   *metrics
	log *slog.Logger

	mu     sync.Mutex
	logged time.Time
}

const failureLogEvery = time.Minute

func (c *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := c.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		c.m.exported.Add(float64(len(spans)))
		return nil
	}
	c.m.failed.Add(float64(len(spans)))
	c.mu.Lock()
	now := time.Now()
	if now.Sub(c.logged) >= failureLogEvery {
		c.logged = now
		c.mu.Unlock()
		c.log.Warn("exporting spans failed; the spans are lost (counted in tollgate_otel_spans_total{result=\"failed\"})", "spans", len(spans), "err", err)
	} else {
		c.mu.Unlock()
	}
	return nil // counted and logged here: the SDK would log every failed batch again
}
