package otelspan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate-dev/tollgate/record"
)

// Options configure an Exporter.
type Options struct {
	// Endpoint is the OTLP/HTTP receiver, e.g. http://collector:4318
	// (/v1/traces is appended unless the path already ends with it).
	// Empty: no Exporter (New returns nil).
	Endpoint string
	// SampleRatio is the share of calls without a sampled W3C parent that
	// get a span (0 to 1). A call whose traceparent is sampled always
	// gets one, and one whose traceparent is not never does.
	SampleRatio float64
	// QueueSize bounds the calls waiting to become spans; past it they are
	// dropped and counted. Default 2048.
	QueueSize int
	// Interval is the longest a call waits in the queue. Default 1 s.
	Interval   time.Duration
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Exporter turns finished calls into spans and exports them. Offer is all
// the request side does: a copy of the record's fields (made before the
// lock) appended to a bounded queue under a mutex, without waking anything; a goroutine of its own
// builds the spans every Interval (or when the queue is half full) and
// hands them to the SDK's batch span processor, which exports them.
type Exporter struct {
	ratio    float64
	capacity int
	interval time.Duration
	tp       *sdktrace.TracerProvider
	tracer   trace.Tracer
	m        *metrics
	log      *slog.Logger

	mu    sync.Mutex
	queue []spanData
	spare []spanData

	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New starts an Exporter; nil without an Endpoint.
func New(o Options) (*Exporter, error) {
	if o.Endpoint == "" {
		return nil, nil
	}
	endpoint, err := TracesURL(o.Endpoint)
	if err != nil {
		return nil, err
	}
	if !(o.SampleRatio >= 0 && o.SampleRatio <= 1) {
		return nil, fmt.Errorf("otel sample ratio %v: must be from 0 to 1", o.SampleRatio)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 2048
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// Headers (OTEL_EXPORTER_OTLP_HEADERS), TLS files and compression
	// come from the SDK's standard environment variables.
	client, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(endpoint), otlptracehttp.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("otel exporter: %w", err)
	}
	// No schema URL: the SDK's own detectors use a newer one than the
	// GenAI conventions followed here, and resources of two schemas do
	// not merge.
	res, err := resource.New(context.Background(),
		resource.WithAttributes(semconv.ServiceName("tollgate")),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
		resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	m := newMetrics(o.Registerer)
	e := &Exporter{
		ratio: o.SampleRatio, capacity: o.QueueSize, interval: o.Interval,
		m: m, log: o.Logger,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	e.tp = sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		// Offer decided already (parent-based, SampleRatio for new traces).
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		// Blocking: a full SDK queue holds up the building goroutine, so
		// that calls back up into Offer's queue, where drops are counted.
		sdktrace.WithBatcher(&countingExporter{SpanExporter: client, m: m, log: o.Logger},
			sdktrace.WithBlocking(), sdktrace.WithBatchTimeout(o.Interval)),
	)
	e.tracer = e.tp.Tracer(ScopeName)
	go e.run()
	return e, nil
}

// TracesURL is the OTLP/HTTP traces URL of an endpoint given as a base
// URL (OTEL_EXPORTER_OTLP_ENDPOINT's convention) or as the full URL.
func TracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("otel endpoint: want an http(s) URL such as http://collector:4318, got %q", endpoint)
	}
	if !strings.HasSuffix(u.Path, "/v1/traces") {
		u.Path = strings.TrimRight(u.Path, "/") + "/v1/traces"
	}
	return u.String(), nil
}

// Offer queues a span for the finished call rec, continuing the caller's
// W3C trace context when traceparent holds a valid one. It never blocks
// and keeps nothing of rec's bodies; call it after the reply.
func (e *Exporter) Offer(rec *record.Record, traceparent, tracestate string) {
	var parent trace.SpanContext
	if traceparent != "" {
		parent = remoteParent(traceparent, tracestate)
	}
	if parent.IsValid() {
		if !parent.IsSampled() {
			e.m.unsampled.Inc()
			return
		}
	} else if e.ratio < 1 && !(rand.Float64() < e.ratio) {
		e.m.unsampled.Inc()
		return
	}
	// The copy and the body scans (up to maxScannedBody) run here, on the
	// stream's own goroutine; the lock covers only the append, so streams
	// ending together do not wait on one another's scans.
	var d spanData
	d.fill(rec, parent)
	e.mu.Lock()
	if len(e.queue) >= e.capacity {
		e.mu.Unlock()
		e.m.dropped.Inc()
		return
	}
	e.queue = append(e.queue, d)
	n := len(e.queue)
	e.mu.Unlock()
	if n == e.capacity/2 {
		select { // a burst: build before the next tick
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// remoteParent reads a traceparent (and tracestate) as the W3C Trace
// Context propagator does; invalid: the zero SpanContext.
func remoteParent(traceparent, tracestate string) trace.SpanContext {
	carrier := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		carrier["tracestate"] = tracestate
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), carrier)
	return trace.SpanContextFromContext(ctx)
}

func (e *Exporter) run() {
	defer close(e.done)
	tick := time.NewTicker(e.interval)
	defer tick.Stop()
	for {
		select {
		case <-e.wake:
		case <-tick.C:
		case <-e.stop:
			e.build()
			return
		}
		e.build()
	}
}

// build turns what is queued into spans. The two slices swap so that the
// queue's storage is reused, and the records it copied are let go.
func (e *Exporter) build() {
	e.mu.Lock()
	batch := e.queue
	e.queue = e.spare[:0]
	e.mu.Unlock()
	for i := range batch {
		e.emit(&batch[i])
		batch[i] = spanData{}
	}
	e.mu.Lock()
	e.spare = batch[:0]
	e.mu.Unlock()
}

// Close builds what is queued, then flushes and stops the SDK's exporter,
// all within ctx.
func (e *Exporter) Close(ctx context.Context) error {
	var err error
	e.closeOnce.Do(func() {
		close(e.stop)
		select {
		case <-e.done:
		case <-ctx.Done():
			err = fmt.Errorf("otel: building the last spans: %w", ctx.Err())
		}
		err = errors.Join(err, e.tp.Shutdown(ctx))
	})
	return err
}
