package app

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/otelspan"
)

// openSpans starts the OpenTelemetry exporter when --otel-endpoint is set
// (nil otherwise: the processor then does no span work at all).
func openSpans(cfg *Config, reg prometheus.Registerer, log *slog.Logger) (*otelspan.Exporter, error) {
	e, err := otelspan.New(otelspan.Options{
		Endpoint:    cfg.OTelEndpoint,
		SampleRatio: cfg.OTelSampleRatio,
		QueueSize:   cfg.OTelQueueSize,
		Registerer:  reg,
		Logger:      log,
	})
	if e != nil {
		log.Info("exporting a span per call over OTLP/HTTP", "endpoint", cfg.OTelEndpoint, "sample_ratio", cfg.OTelSampleRatio)
	}
	return e, err
}

// otelEndpoint: empty, or an http(s) URL (otelspan.TracesURL).
func otelEndpoint(v string) error {
	if v == "" {
		return nil
	}
	_, err := otelspan.TracesURL(v)
	return err
}

// ratio: a share from 0 to 1 (NaN refused).
func ratio(v float64) error {
	if !(v >= 0 && v <= 1) {
		return errors.New("want a ratio from 0 to 1")
	}
	return nil
}
